"""GraphedStep's protocol, with PyTorch's CUDA stream and graph objects replaced by stand-ins
that run a captured step at each replay (the real thing needs a GPU; benchmarks/README.md has
the figures from one).  What is checked: every call is exactly one real step, in order, on its
own batch; the capture happens once, after the eager warm-ups; other shapes run eagerly."""
from __future__ import annotations

import contextlib

import pytest
import torch

from cae.cuda_graph import WARMUP_CALLS, GraphedStep
from cae.train import TrainConfig, Trainer, _lr_factor, make_optimizer, uses_cuda_graph
from tests.helpers import make_dataset


class FakeGraph:
    def __init__(self) -> None:
        self.work = None

    def replay(self) -> None:
        self.work()


class Capture:
    graph: FakeGraph | None = None


@pytest.fixture
def fake_cuda(monkeypatch):
    class Stream:
        def __init__(self, device=None) -> None:
            pass

        def wait_stream(self, other) -> None:
            pass

    @contextlib.contextmanager
    def graph(g):
        Capture.graph = g
        try:
            yield
        finally:
            Capture.graph = None

    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: Stream())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", FakeGraph)
    monkeypatch.setattr(torch.cuda, "graph", graph)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    return Capture


def recording_step(log: list):
    """A step that logs the batch it really ran on; under capture it only records itself (as
    a CUDA graph does) and returns a buffer that each replay refills."""
    def step(x: torch.Tensor) -> torch.Tensor:
        if Capture.graph is not None:
            out = torch.zeros(())

            def work() -> None:
                log.append(("replay", float(x.sum())))
                out.fill_(x.sum())
            Capture.graph.work = work
            return out
        log.append(("eager", float(x.sum())))
        return x.sum()
    return step


def test_each_call_is_one_real_step_on_its_own_batch(fake_cuda):
    log: list = []
    graphed = GraphedStep(recording_step(log), (4, 1, 2, 2), torch.device("cuda"))
    batches = [torch.full((4, 1, 2, 2), float(i)) for i in range(8)]
    losses = []
    for b in batches:
        losses.append(float(graphed(b)))  # read at once: a replay refills the same buffer
    sums = [float(b.sum()) for b in batches]
    assert log == [("eager", s) for s in sums[:WARMUP_CALLS]] + [
        ("replay", s) for s in sums[WARMUP_CALLS:]]
    assert losses == sums
    assert graphed.replays == len(batches) - WARMUP_CALLS


def test_other_shapes_run_eagerly_between_replays(fake_cuda):
    log: list = []
    graphed = GraphedStep(recording_step(log), (4, 1, 2, 2), torch.device("cuda"))
    for i in range(WARMUP_CALLS + 1):
        graphed(torch.full((4, 1, 2, 2), float(i)))
    short = torch.ones(2, 1, 2, 2)  # an epoch's last, short batch
    assert float(graphed(short)) == 8.0
    assert log[-1] == ("eager", 8.0)
    graphed(torch.full((4, 1, 2, 2), 5.0))
    assert log[-1] == ("replay", 80.0)
    assert graphed.replays == 2


def test_a_failed_capture_warns_and_goes_on_eagerly(fake_cuda, monkeypatch):
    @contextlib.contextmanager
    def refusing(g):
        raise RuntimeError("operation not permitted when stream is capturing")
        yield

    monkeypatch.setattr(torch.cuda, "graph", refusing)
    log: list = []
    graphed = GraphedStep(recording_step(log), (4, 1, 2, 2), torch.device("cuda"))
    batches = [torch.full((4, 1, 2, 2), float(i)) for i in range(WARMUP_CALLS + 3)]
    with pytest.warns(RuntimeWarning, match="eager steps"):
        losses = [float(graphed(b)) for b in batches]
    assert log == [("eager", float(b.sum())) for b in batches]
    assert losses == [float(b.sum()) for b in batches]
    assert graphed.replays == 0 and "not permitted" in graphed.failure


def test_the_capture_comes_after_eager_calls():
    # Adam creates its moments and step count at its first step: captured, every replay would
    # zero them again.  So at least one eager call must come first.
    assert WARMUP_CALLS >= 1


def test_a_captured_optimiser_reads_one_rate_tensor_updated_in_place():
    """The graph branch's optimiser, built on CPU tensors (only its step needs a GPU): the
    rate the graph captured is one tensor, and each step's value is written into it."""
    cfg = TrainConfig(lr=4e-3, warmup=0.25, optimizer="adamw")
    params = [torch.zeros(3, requires_grad=True)]
    opt, set_lr = make_optimizer(cfg, params, 8, torch.device("cpu"), graphed=True)
    group = opt.param_groups[0]
    captured = group["lr"]
    assert isinstance(opt, torch.optim.AdamW) and group["capturable"]
    factor = _lr_factor(cfg, 8)
    assert float(captured) == pytest.approx(4e-3 * factor(0))
    for step in range(1, 8):
        assert set_lr(step) == pytest.approx(4e-3 * factor(step))
        assert group["lr"] is captured and float(captured) == pytest.approx(4e-3 * factor(step))
    eager, _ = make_optimizer(cfg, params, 8, torch.device("cpu"), graphed=False)
    assert not eager.param_groups[0]["capturable"]
    assert isinstance(eager.param_groups[0]["lr"], float)


def test_which_runs_use_a_graph():
    cuda = torch.device("cuda")
    assert uses_cuda_graph(TrainConfig(), cuda)
    assert not uses_cuda_graph(TrainConfig(cuda_graph=False), cuda)
    assert not uses_cuda_graph(TrainConfig(augment_shift=1.0), cuda)
    assert not uses_cuda_graph(TrainConfig(augment_rotate=5.0), cuda)
    assert not uses_cuda_graph(TrainConfig(), torch.device("cpu"))


def test_a_cpu_run_never_builds_a_graph(monkeypatch):
    made = []
    monkeypatch.setattr("cae.train.GraphedStep",
                        lambda step, shape, device: made.append(shape) or step)
    trainer = Trainer(make_dataset(64, 16), TrainConfig(epochs=1, batch_size=8, device="cpu"))
    list(trainer.run())
    assert made == [] and trainer.graphed_step is None and trainer.global_step == 8
