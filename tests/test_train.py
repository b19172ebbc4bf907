"""The trainer's protocol: records, determinism, stop/pause within a batch, faults keep weights."""
import dataclasses
import math
import threading

import numpy as np
import pytest
import torch

from cae.errors import TrainingError
from cae.train import (
    CLAMPED_RAW_WEIGHT,
    RECIPES,
    EpochEnd,
    Finished,
    Progress,
    Snapshot,
    TrainConfig,
    Trainer,
    _lr_factor,
    build_model,
    resolve_device,
)
from tests.helpers import make_dataset


def run_all(trainer):
    return list(trainer.run())


def test_run_yields_records_and_learns():
    ds = make_dataset(512, 128)
    trainer = Trainer(ds, TrainConfig(epochs=3, batch_size=32, lr=3e-3, report_every=4,
                                      device="cpu", snapshot_size=50))
    records = run_all(trainer)
    assert isinstance(records[0], Snapshot) and records[0].epoch == 0
    assert isinstance(records[-1], Finished) and not records[-1].stopped
    ends = [r for r in records if isinstance(r, EpochEnd)]
    assert [e.epoch for e in ends] == [1, 2, 3]
    assert ends[-1].test_loss < ends[0].test_loss
    progress = [r for r in records if isinstance(r, Progress)]
    assert progress[-1].global_step == progress[-1].total_steps == 3 * 16
    assert all(p.images_per_s > 0 and p.eta_s >= 0 for p in progress)
    snaps = [r for r in records if isinstance(r, Snapshot)]
    assert snaps[-1].codes.shape == (50, 2) and snaps[-1].labels.shape == (50,)
    assert set(snaps[-1].model_state) == set(trainer.model.state_dict())
    # Records are copies: later training does not change an earlier snapshot.
    assert not np.array_equal(snaps[0].codes, snaps[-1].codes)
    assert trainer.epochs_done == 3 and not trainer.model.training


@pytest.mark.parametrize("n, steps", [(84, [21]), (128, [20, 32])])
def test_an_epoch_does_not_end_on_a_report_of_a_step_or_two(n, steps):
    """21 steps an epoch (1,290 pictures in batches of 64) reported step 21 alone, one partial
    batch, which stood out of the loss curve as a spike: a report leaving under half the
    interval to the epoch's end waits for it.  At 32 steps, 20 and 32 are both reported."""
    trainer = Trainer(make_dataset(n, 16), TrainConfig(epochs=1, batch_size=4, report_every=20,
                                                       device="cpu", snapshot_size=8))
    reported = [r.step for r in run_all(trainer) if isinstance(r, Progress)]
    assert reported == steps


def test_deterministic_on_cpu_for_a_seed():
    ds = make_dataset(128, 32)
    cfg = TrainConfig(epochs=1, batch_size=16, device="cpu", seed=7)
    a, b = Trainer(ds, cfg), Trainer(ds, cfg)
    run_all(a), run_all(b)
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    c = Trainer(ds, dataclasses.replace(cfg, seed=8))
    run_all(c)
    assert not torch.equal(a.model.decoder[0].weight, c.model.decoder[0].weight)


def test_stop_takes_effect_within_one_batch():
    ds = make_dataset(512, 32)
    trainer = Trainer(ds, TrainConfig(epochs=5, batch_size=8, report_every=1, device="cpu"))
    steps = 0
    last = None
    for record in trainer.run():
        if isinstance(record, Progress):
            steps = record.global_step
            if steps == 3:
                trainer.stop()
        last = record
    assert isinstance(last, Finished) and last.stopped and steps == 3


def test_pause_blocks_and_resume_continues():
    ds = make_dataset(64, 16)
    trainer = Trainer(ds, TrainConfig(epochs=1, batch_size=8, report_every=1, device="cpu"))
    gen = trainer.run()
    next(gen)  # initial snapshot
    next(gen)  # first step done
    trainer.pause()
    assert trainer.paused
    got = []
    worker = threading.Thread(target=lambda: got.append(next(gen)))
    worker.start()
    worker.join(0.3)
    assert worker.is_alive() and not got  # paused: no further step
    trainer.resume()
    worker.join(5)
    assert isinstance(got[0], Progress) and got[0].global_step == 2
    assert isinstance(list(gen)[-1], Finished)


def test_stop_while_paused_ends_the_run():
    ds = make_dataset(64, 16)
    trainer = Trainer(ds, TrainConfig(epochs=1, batch_size=8, report_every=1, device="cpu"))
    gen = trainer.run()
    next(gen), next(gen)
    trainer.pause()
    trainer.stop()
    assert isinstance(next(gen), Finished)


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_weights():
    ds = make_dataset(64, 16)
    trainer = Trainer(ds, TrainConfig(epochs=2, batch_size=8, report_every=2, device="cpu"))
    gen = trainer.run()
    good = None
    for record in gen:
        if isinstance(record, Progress) and record.global_step == 4:
            good = {k: v.clone() for k, v in trainer.model.state_dict().items()}
            with torch.no_grad():  # sabotage: the next steps produce NaN
                trainer.model.decoder[4].bias.fill_(float("nan"))
            break
    with pytest.raises(TrainingError, match="loss became nan.*last good weights"):
        for _ in gen:
            pass
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, good[k]), k


def test_out_of_memory_says_lower_the_batch_size_and_keeps_the_last_good_weights(monkeypatch):
    # Reports every 3 steps; the fifth forward pass runs out of memory.  The model must hold
    # the weights of the last report (after step 3), not those after step 4, nor the average.
    ds = make_dataset(64, 16)
    trainer = Trainer(ds, TrainConfig(epochs=1, batch_size=8, device="cpu", report_every=3))
    seen = []
    real = trainer.model.decoder[2].forward

    def forward(x):
        if torch.is_grad_enabled():  # a training step (snapshots and test loss run without)
            seen.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
            if len(seen) == 5:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(x)

    monkeypatch.setattr(trainer.model.decoder[2], "forward", forward)  # mid-step, as a real OOM
    with pytest.raises(TrainingError, match="lower the batch size"):
        run_all(trainer)
    after_3, after_4 = seen[3], seen[4]
    state = trainer.model.state_dict()
    assert all(torch.equal(state[k], after_3[k]) for k in state)
    assert not all(torch.equal(state[k], after_4[k]) for k in state)


@pytest.mark.parametrize("field, value", [("epochs", 0), ("batch_size", -1), ("lr", 0.0),
                                          ("lr", float("nan")), ("schedule", "step")])
def test_bad_settings_are_refused(field, value):
    with pytest.raises(TrainingError):
        TrainConfig(**{field: value})


def test_fast_precision_asks_about_the_given_cuda_device_without_emulation(monkeypatch):
    import contextlib

    import cae.train as T
    native = {0: True, 1: False}  # device 1: a pre-Ampere card that only emulates bf16
    current = [0]

    @contextlib.contextmanager
    def on_device(index):
        saved, current[0] = current[0], index
        yield
        current[0] = saved

    def is_bf16_supported(including_emulation=True):
        return True if including_emulation else native[current[0]]

    monkeypatch.setattr(T.torch.cuda, "device", on_device)
    monkeypatch.setattr(T.torch.cuda, "current_device", lambda: current[0])
    monkeypatch.setattr(T.torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert T.fast_precision(torch.device("cuda:1")) == "fp32"
    assert T.fast_precision(torch.device("cuda:0")) == "bf16"
    assert T.fast_precision(torch.device("cuda")) == "bf16"  # the current device, 0
    current[0] = 1
    assert T.fast_precision(torch.device("cuda")) == "fp32"
    assert T.fast_precision(torch.device("cuda:0")) == "bf16"


def test_devices():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(TrainingError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(TrainingError, match="no CUDA"):
            resolve_device("cuda")


# --------------------------------------------------------------------- recipes and their levers


def test_recipes_fill_the_settings_and_overrides_win():
    lecture = TrainConfig.recipe_config("lecture")
    assert (lecture.recipe, lecture.schedule, lecture.ema, lecture.optimizer) == (
        "lecture", "constant", 0.0, "adam")
    assert lecture.weight_init == "tf" and TrainConfig.recipe_config("best").weight_init == "torch"
    best = TrainConfig.recipe_config("best", epochs=3, lr=None)
    assert best.epochs == 3 and best.lr == RECIPES["best"]["lr"]
    for key, value in RECIPES["best"].items():  # TrainConfig's defaults are the best recipe
        if key != "epochs":
            assert getattr(TrainConfig(), key) == value, key
    with pytest.raises(TrainingError, match="unknown recipe 'fancy'"):
        TrainConfig.recipe_config("fancy")


@pytest.mark.parametrize("field, value", [("ema", 1.0), ("warmup", 0.9), ("weight_decay", -1),
                                          ("augment_shift", 20), ("optimizer", "sgd"),
                                          ("loss", "l1"), ("precision", "fp16"),
                                          ("weight_init", "he")])
def test_bad_lever_settings_are_refused_in_one_line(field, value):
    with pytest.raises(TrainingError, match=field.split("_")[0]) as info:
        TrainConfig(**{field: value})
    assert "\n" not in str(info.value)


def test_tf_weight_init_is_the_lectures_glorot_uniform_with_zero_biases():
    torch_init, tf_init = build_model(seed=2), build_model(seed=2, weight_init="tf")
    for (name, a), b in zip(torch_init.named_parameters(), tf_init.parameters()):
        if name.endswith("bias"):
            assert a.abs().sum() > 0 and b.abs().sum() == 0, name
            continue
        fan_sum = (b.shape[0] + b.shape[1]) * b[0, 0].numel()  # in + out channels, x kernel size
        bound = math.sqrt(6 / fan_sum)
        assert b.abs().max() <= bound and b.abs().max() > 0.95 * bound, name  # fills its range
        assert not torch.allclose(a, b), name
    assert torch.equal(build_model(seed=2, weight_init="tf").decoder[2].weight,
                       tf_init.decoder[2].weight)  # the seed decides it
    trainer = Trainer(make_dataset(16, 8), TrainConfig(device="cpu", seed=2, weight_init="tf"))
    assert torch.equal(trainer.model.encoder[0].weight, tf_init.encoder[0].weight)
    with pytest.raises(TrainingError, match="unknown weight_init"):
        build_model(weight_init="he")


def test_warmup_then_cosine_learning_rate():
    factor = _lr_factor(TrainConfig(warmup=0.1, schedule="cosine"), 100)
    assert [factor(s) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert factor(10) == pytest.approx(1.0) and factor(55) == pytest.approx(0.5)
    assert factor(100) == pytest.approx(0.0, abs=1e-12)
    constant = _lr_factor(TrainConfig(warmup=0.1, schedule="constant"), 100)
    assert constant(2) == pytest.approx(0.3) and constant(80) == 1.0


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_each_step_uses_the_schedules_rate_for_that_step(monkeypatch, optimizer):
    cfg = TrainConfig(epochs=2, batch_size=16, lr=4e-3, warmup=0.25, device="cpu",
                      report_every=1, optimizer=optimizer)
    used = []
    cls = torch.optim.AdamW if optimizer == "adamw" else torch.optim.Adam
    real_step = cls.step

    def step(self, *args, **kwargs):
        used.append(float(self.param_groups[0]["lr"]))
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(cls, "step", step)
    records = list(Trainer(make_dataset(64, 16), cfg).run())
    factor = _lr_factor(cfg, 8)
    assert used == pytest.approx([4e-3 * factor(k) for k in range(8)])
    reported = [r.lr for r in records if isinstance(r, Progress)]
    assert reported == pytest.approx([4e-3 * factor(k) for k in range(1, 9)])  # the next step's


def test_ema_weights_are_the_result_and_differ_from_the_last_step():
    ds = make_dataset(256, 32)
    base = dict(epochs=2, batch_size=16, lr=3e-3, device="cpu", seed=3, report_every=4)
    plain = Trainer(ds, TrainConfig(**base, ema=0.0))
    run_all(plain)
    averaged = Trainer(ds, TrainConfig(**base, ema=0.9))
    records = run_all(averaged)
    # Same seed, same steps: only the average differs, and it is what the run returns.
    assert not torch.equal(plain.model.decoder[4].weight, averaged.model.decoder[4].weight)
    last = [r for r in records if isinstance(r, Snapshot)][-1]
    for k, v in averaged.model.state_dict().items():
        np.testing.assert_array_equal(last.model_state[k], v.numpy(), err_msg=k)
    end = [r for r in records if isinstance(r, EpochEnd)][-1]
    assert end.test_loss == pytest.approx(averaged._test_loss(
        torch.from_numpy(ds.test_images)), rel=1e-6)


def test_augmentation_moves_training_images_only():
    ds = make_dataset(64, 16)
    images = torch.from_numpy(ds.train_images)
    idx = torch.arange(16)
    plain = Trainer(ds, TrainConfig(device="cpu"))._batch(images, idx, torch.Generator())
    trainer = Trainer(ds, TrainConfig(device="cpu", augment_shift=2, augment_rotate=10))
    moved = trainer._batch(images, idx, torch.Generator().manual_seed(0))
    assert moved.shape == plain.shape and not torch.allclose(moved, plain, atol=0.05)
    # Small moves: each image keeps most of its ink (bilinear resampling, nothing invented).
    ink = moved.sum((1, 2, 3)) / plain.sum((1, 2, 3))
    assert bool(((ink > 0.7) & (ink < 1.3)).all())
    # Evaluation never augments.
    assert torch.equal(trainer._batch(images, idx), plain)


def test_clamped_loss_is_the_error_as_shown_plus_a_small_raw_term():
    trainer = Trainer(make_dataset(16, 8), TrainConfig(device="cpu", loss="clamped"))
    x = torch.tensor([0.0, 0.5, 1.0, 0.2])
    x_hat = torch.tensor([-0.5, 0.5, 1.5, -0.1], requires_grad=True)
    loss = trainer._train_loss(x_hat, x)
    shown = ((x_hat.clamp(0, 1) - x) ** 2).mean()
    raw = ((x_hat - x) ** 2).mean()
    assert float(loss.detach()) == pytest.approx(float((shown + CLAMPED_RAW_WEIGHT * raw).detach()))
    loss.backward()
    assert float(x_hat.grad[3]) < 0  # a pixel on the wrong side of the clamp still moves up


def test_options_train_and_stay_deterministic():
    ds = make_dataset(128, 32)
    cfg = TrainConfig(epochs=1, batch_size=16, device="cpu", seed=5, optimizer="adamw",
                      weight_decay=1e-4, warmup=0.1, grad_clip=0.5, ema=0.99, augment_shift=1,
                      augment_rotate=5, loss="clamped")
    a, b = Trainer(ds, cfg), Trainer(ds, cfg)
    ra, _ = run_all(a), run_all(b)
    assert isinstance(ra[-1], Finished) and not ra[-1].stopped
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k


DETERMINISM_SCRIPT = """
import hashlib, sys
import torch
from cae.train import TrainConfig, Trainer
from tests.helpers import make_dataset
trainer = Trainer(make_dataset(192, 32), TrainConfig(
    epochs=1, batch_size=32, device="cpu", seed=11, precision=sys.argv[1], report_every=2))
for record in trainer.run():
    pass
digest = hashlib.sha256()
for name, value in sorted(trainer.model.state_dict().items()):
    digest.update(name.encode() + value.numpy().tobytes())
print(trainer.precision, digest.hexdigest())
"""


@pytest.mark.parametrize("precision", ["auto", "bf16"])
def test_same_seed_and_flags_give_the_same_weights_in_another_process(precision):
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    runs = [subprocess.run([sys.executable, "-c", DETERMINISM_SCRIPT, precision], cwd=root,
                           capture_output=True, text=True, timeout=300) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    first, second = (run.stdout.split() for run in runs)
    assert first == second
    assert first[0] == (Trainer(make_dataset(8, 8), TrainConfig(device="cpu")).precision
                        if precision == "auto" else precision)


def test_closing_the_run_early_still_returns_the_average():
    ds = make_dataset(128, 16)
    trainer = Trainer(ds, TrainConfig(epochs=2, batch_size=16, device="cpu", ema=0.9,
                                      report_every=2))
    run = trainer.run()
    for record in run:
        if isinstance(record, Progress) and record.global_step == 4:
            average = [e.clone() for e in trainer._ema]
            break
    run.close()  # as the CLI does on Ctrl+C
    assert not trainer.model.training and trainer._ema is None
    for p, e in zip(trainer.model.parameters(), average):
        assert torch.equal(p, e)


def test_snapshot_codes_are_the_returned_weights_codes():
    """Snapshots encode on the inference fast path; in fp32 that is model.encode exactly, and
    in bf16 it stays within 3 % of the codes' spread."""
    ds = make_dataset(256, 64)
    for precision, tol in (("fp32", 0.0), ("bf16", 0.03)):
        trainer = Trainer(ds, TrainConfig(epochs=1, batch_size=32, device="cpu", seed=1,
                                          snapshot_size=64, precision=precision, ema=0.9))
        last = [r for r in run_all(trainer) if isinstance(r, Snapshot)][-1]
        with torch.no_grad():
            exact = trainer.model.encode(torch.from_numpy(ds.test_images[:64]).unsqueeze(1)
                                         .float().div_(255.0)).numpy()
        spread = exact.std(0).min()
        assert np.abs(last.codes - exact).max() <= tol * spread + 1e-6, precision
