"""Help ▸ About: what this is, its version and the versions it runs on, and where it keeps its
files (settings, autosave, cached codes), for a bug report or a clean slate."""
from __future__ import annotations

import os
import platform
import sys
from html import escape

import numpy as np
import pyqtgraph as pg
import PySide6
import torch
from PySide6.QtCore import QSettings, qVersion
from PySide6.QtWidgets import QMessageBox, QWidget

from cae import __version__
from cae.code_cache import cache_dir

from . import autosave

ARCHITECTURE = ("conv 3x3x32 SAME ReLU, max-pool 2/2, conv 3x3x64 SAME ReLU, max-pool 2/2, "
                "conv 7x7x2 VALID = a 2-D code; transposed convs 7x7x64 VALID ReLU, 14x14x32 "
                "stride 2 SAME ReLU, 28x28x1 stride 2 SAME")


def about_html(settings: QSettings) -> str:
    """The About box's text."""
    gpu = (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none found")
    rows = [
        ("Version", __version__),
        ("Python", f"{platform.python_version()} ({sys.platform})"),
        ("PyTorch", f"{torch.__version__} on {os.cpu_count()} CPU cores; GPU: {gpu}"),
        ("Qt", f"{qVersion()} (PySide6 {PySide6.__version__}), pyqtgraph {pg.__version__}, "
               f"NumPy {np.__version__}"),
        ("Settings", settings.fileName()),
        ("Autosave", str(autosave.data_dir())),
        ("Cached codes", str(cache_dir())),
    ]
    table = "".join(f"<tr><td><b>{escape(k)}</b>&nbsp;</td><td>{escape(v)}</td></tr>"
                    for k, v in rows)
    return (f"<h3>CAE Latent Explorer</h3><p>A convolutional autoencoder with a 2-D code, "
            f"trained on MNIST, its codes as a map to explore.<br><small>{ARCHITECTURE}"
            f"</small></p><table>{table}</table>")


def show_about(parent: QWidget, settings: QSettings) -> None:
    QMessageBox.about(parent, "About CAE Latent Explorer", about_html(settings))
