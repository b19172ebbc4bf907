"""Where the bundled models are, however the project was installed.

The models live in the top-level ``resources/`` folder of the source tree.  ``pip install .`` and
a wheel install that folder as package data of ``cae.resources`` (see ``pyproject.toml``), found
here with ``importlib.resources`` wherever site-packages is.  A checkout run as ``python main.py``
and an editable install (which maps only folders with an ``__init__.py``) use the folder beside
the package.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import CAEError

SOURCE_TREE = Path(__file__).resolve().parents[1] / "resources"


def bundled_file_name(name: str) -> str:
    """The file name of the bundled model for dataset ``name`` ("fashion-mnist" ->
    fashion_mnist.safetensors); MNIST's keeps the name it has had from the start."""
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"bad dataset name {name!r}: use letters, digits, '-' and '_'")
    return "model.safetensors" if name == "mnist" else f"{name.replace('-', '_')}.safetensors"


def bundled_model_path(name: str = "mnist") -> Path | None:
    """The bundled model trained on dataset ``name``, or None when this install has none."""
    file_name = bundled_file_name(name)
    try:  # installed: package data of cae.resources (a namespace package: it has no __init__)
        installed = resources.files("cae.resources").joinpath(file_name)
    except ModuleNotFoundError:  # a checkout, or an editable install
        installed = None
    for path in (installed, SOURCE_TREE / file_name):
        if isinstance(path, Path) and path.is_file():
            return path
    return None


def model_or_bundled(model: str | None, dataset: str) -> str:
    """``model`` when one is named, else the bundled model for ``dataset`` (the commands'
    default, as the window's); CAEError where this install has none for that data."""
    if model:
        return model
    try:
        path = bundled_model_path(dataset)
    except ValueError:  # a folder's name that no bundled file could have
        path = None
    if path is None:
        raise CAEError(f"no bundled model for {dataset} data; name a model file with --model")
    return str(path)
