"""The training-timeline animation (cae/animate.py) on a really trained model with a timeline."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from cae.animate import AnimationOptions, animate_model, animation_frames, frame_count
from cae.checkpoint import load_checkpoint
from cae.cli_exports import add_export_commands
from cae.errors import CAEError
from cae.palette import POINT_ALPHA
from cae.render import PALETTE, rgb
from cae.timeline import Timeline
from tests.export_models import train_with_timeline
from tests.helpers import make_dataset

BUNDLED = Path(__file__).resolve().parent.parent / "resources" / "model.safetensors"
SMALL = AnimationOptions(size=(160, 120), frames_per_epoch=3)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """Two epochs on 128 synthetic digits: a timeline of epochs 0, 1, 2 (initial weights first)."""
    path = tmp_path_factory.mktemp("animate") / "run.safetensors"
    return train_with_timeline(make_dataset(128, 48), path, epochs=2, batch_size=64)


@pytest.fixture(scope="module")
def run(model_path):
    ckpt = load_checkpoint(model_path)
    timeline = Timeline.from_extras(ckpt.extras, ckpt.model.config)
    return ckpt, timeline


def frames_of(path: Path) -> list[np.ndarray]:
    with Image.open(path) as gif:
        return [np.asarray(f.convert("RGB"), np.int16) for f in ImageSequence.Iterator(gif)]


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cae")
    add_export_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_gif_has_every_epoch_and_the_in_between_frames(model_path, run, tmp_path):
    _, timeline = run
    assert timeline.epochs == [0, 1, 2]
    out = tmp_path / "run.gif"
    seen = []
    n = animate_model(model_path, out, SMALL, progress=seen.append)
    assert n == frame_count(3, 3) == 7
    frames = frames_of(out)
    assert len(frames) == 7
    assert all(f.shape == (120, 160, 3) for f in frames)
    with Image.open(out) as gif:
        assert gif.info.get("loop") == 0
    # Epoch frames (0, 3, 6) differ from each other, and so does each in-between frame from both
    # of its neighbours: the codes move (and the view follows) from one epoch to the next.
    for a, b in [(0, 3), (3, 6), (0, 6)]:
        assert np.abs(frames[a] - frames[b]).mean() > 1.0, (a, b)
    for k in range(1, 6):
        assert (
            np.abs(frames[k] - frames[k - 1]).sum() > 0
            and np.abs(frames[k] - frames[k + 1]).sum() > 0
        )
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 7 + 1  # frames, then the file


def test_in_between_frames_interpolate_the_codes(run):
    """Halfway from one epoch to the next, a digit's dot is halfway between its two places."""
    ckpt, timeline = run
    # Two class-0 digits stay at opposite corners (so the view stays put); a class-4 digit moves
    # across the middle from (0, 1) to (2, 1).
    moving = Timeline(labels=np.array([0, 0, 4]))
    for e, x in enumerate((0.0, 2.0)):
        moving.epochs.append(e)
        moving.codes.append(np.array([[0.0, 0.0], [2.0, 2.0], [x, 1.0]]))
        moving.decoders.append(timeline.decoders[e])
    opts = AnimationOptions(size=(200, 200), frames_per_epoch=2)
    frames = list(animation_frames(moving, ckpt.model.config, [str(c) for c in range(10)], opts))
    assert len(frames) == 3
    centres = []
    for f in frames:
        band = np.asarray(f, np.int16)[70:130]  # the middle rows: clear of the legend's dots
        dot = POINT_ALPHA / 255 * np.array(rgb(PALETTE[4])) + (1 - POINT_ALPHA / 255) * 255
        hits = np.argwhere(np.abs(band - dot).max(-1) <= 12)  # the dot, over white
        assert len(hits)
        centres.append(hits.mean(0))
    assert abs(centres[2][1] - centres[0][1]) > 50  # it really moved
    assert np.allclose(centres[1], (centres[0] + centres[2]) / 2, atol=1.5)


def test_mosaic_and_loss_panel(model_path, run, tmp_path):
    opts = AnimationOptions(
        size=(300, 160), frames_per_epoch=2, mosaic=True, mosaic_tiles=6, loss=True
    )
    out = tmp_path / "full.gif"
    assert animate_model(model_path, out, opts) == 5
    frames = frames_of(out)
    assert all(f.shape == (160, 300, 3) for f in frames)
    plain = frames_of(
        animate_model_to(
            model_path,
            tmp_path / "plain.gif",
            AnimationOptions(size=(300, 160), frames_per_epoch=2),
        )
    )
    right = slice(200, 300)  # the loss panel's side of the frame
    assert np.abs(frames[-1][:, right] - plain[-1][:, right]).sum() > 0
    # The test-loss curve (orange) grows from nothing at epoch 0 (only its legend's line) to
    # its full length by the last frame.
    orange = [(np.abs(f[:, right] - rgb("#D55E00")).max(-1) <= 20).sum() for f in frames]
    assert orange[-1] > orange[0] + 5


def animate_model_to(model_path: Path, out: Path, options: AnimationOptions) -> Path:
    animate_model(model_path, out, options)
    return out


def test_cancel_leaves_no_file_and_keeps_an_old_one(model_path, tmp_path):
    out = tmp_path / "run.gif"
    out.write_bytes(b"old")
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(CAEError, match="cancelled"):
        animate_model(model_path, out, SMALL, cancel=cancel)
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["run.gif"]


def test_mp4_needs_ffmpeg(model_path, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CAEError, match="ffmpeg"):
        animate_model(model_path, tmp_path / "run.mp4", SMALL)
    assert not (tmp_path / "run.mp4").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="a shell-script stand-in for ffmpeg")
def test_mp4_pipes_every_raw_frame_to_ffmpeg(model_path, tmp_path, monkeypatch):
    """A stand-in ffmpeg that records its arguments and counts the bytes piped to it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ffmpeg"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "data = sys.stdin.buffer.read()\n"
        "open(sys.argv[-1], 'w').write(' '.join(sys.argv[1:]) + '\\n' + str(len(data)))\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ.get("PATH", ""))
    opts = AnimationOptions(size=(160, 120), frames_per_epoch=3, fps=10, hold_s=1.0)
    out = tmp_path / "run.mp4"
    assert animate_model(model_path, out, opts) == 7
    args, size = out.read_text().splitlines()
    assert "-s 160x120" in args and "-pix_fmt rgb24" in args and "-r 10" in args
    # 7 frames, then the last repeated to make up one second at 10 fps.
    assert int(size) == (7 + 9) * 160 * 120 * 3


def test_a_model_without_a_timeline_is_refused(tmp_path):
    with pytest.raises(CAEError, match="no training timeline"):
        animate_model(BUNDLED, tmp_path / "run.gif")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "options, message",
    [
        (AnimationOptions(size=(10, 10)), "frame size"),
        (AnimationOptions(frames_per_epoch=0), "frames per epoch"),
        (AnimationOptions(fps=0), "frames per second"),
        (AnimationOptions(mosaic_tiles=1), "mosaic tiles"),
        (AnimationOptions(hidden=frozenset({12})), "no class 12 to leave out"),
    ],
)
def test_bad_options_are_refused(model_path, tmp_path, options, message):
    with pytest.raises(CAEError, match=message):
        animate_model(model_path, tmp_path / "run.gif", options)


def test_bad_suffix_is_refused(model_path, tmp_path):
    with pytest.raises(CAEError, match="use .gif or .mp4"):
        animate_model(model_path, tmp_path / "run.avi", SMALL)


def test_cae_animate_command(model_path, tmp_path):
    out = tmp_path / "cli.gif"
    assert (
        run_cli(
            [
                "animate",
                "--model",
                str(model_path),
                "--out",
                str(out),
                "--size",
                "200x100",
                "--frames-per-epoch",
                "2",
                "--mosaic",
                "--mosaic-tiles",
                "4",
                "--loss",
            ]
        )
        == 0
    )
    with Image.open(out) as gif:
        assert gif.size == (200, 100) and gif.n_frames == 5


def test_the_loss_panel_takes_the_steps_alone(run):
    """A run stopped in its first epoch has no per-epoch losses, only the training loss every
    few steps: enough for the loss panel (it was refused as "no loss history")."""
    ckpt, timeline = run
    opts = AnimationOptions(size=(300, 160), frames_per_epoch=1, loss=True)
    steps = np.array([[0.1, 0.09], [0.5, 0.07], [0.9, 0.06]])
    frames = list(animation_frames(timeline, ckpt.model.config, [str(c) for c in range(10)],
                                   opts, None, steps=steps))
    assert len(frames) == len(timeline)
    with pytest.raises(CAEError, match="no loss history"):
        list(animation_frames(timeline, ckpt.model.config, [str(c) for c in range(10)], opts))
