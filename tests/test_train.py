"""The trainer's protocol: records, determinism, stop/pause within a batch, faults keep weights."""
import dataclasses
import threading

import numpy as np
import pytest
import torch

from cae.errors import TrainingError
from cae.train import EpochEnd, Finished, Progress, Snapshot, TrainConfig, Trainer, resolve_device
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


def test_out_of_memory_says_lower_the_batch_size(monkeypatch):
    ds = make_dataset(64, 16)
    trainer = Trainer(ds, TrainConfig(epochs=1, batch_size=8, device="cpu"))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer.model.decoder[2], "forward", oom)  # mid-step, as a real OOM
    with pytest.raises(TrainingError, match="lower the batch size"):
        run_all(trainer)
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, before[k])


@pytest.mark.parametrize("field, value", [("epochs", 0), ("batch_size", -1), ("lr", 0.0),
                                          ("lr", float("nan")), ("schedule", "step")])
def test_bad_settings_are_refused(field, value):
    with pytest.raises(TrainingError):
        TrainConfig(**{field: value})


def test_devices():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(TrainingError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(TrainingError, match="no CUDA"):
            resolve_device("cuda")
