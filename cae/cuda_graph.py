"""A training step replayed as one CUDA graph.

On a GPU this model's step (dozens of small kernels) costs far more in Python and
kernel launches than in arithmetic, so an epoch is bound by the host.  :class:`GraphedStep`
runs a step function eagerly a few times on a side stream (so lazy initialisation happens
outside the capture), captures the next call once, and from then on copies each batch into the
captured input and replays the whole step (forward, loss, backward, optimiser) as one launch.

The step function must be capturable: no host synchronisation, an optimiser built with
``capturable=True`` (its step counter and learning rate live on the GPU), and gradients set to
None before the capture so the backward pass allocates them inside the graph's memory pool.
Batches of another shape (an epoch's short last batch) run the step eagerly, and so does every
step after a capture that fails (a driver or an operation that cannot be captured): the run goes
on, slower, with a warning.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

WARMUP_CALLS = 3  # eager calls on a side stream before the capture, as PyTorch's guide does


class GraphedStep:
    """``step(x) -> loss`` for batches of ``shape``, replayed from a CUDA graph after
    :data:`WARMUP_CALLS` eager calls.  Every call does the real step (the capture's own call
    included), so the sequence of updates is the eager one's."""

    def __init__(self, step: Callable[[torch.Tensor], torch.Tensor],
                 shape: tuple[int, ...], device: torch.device) -> None:
        self._step = step
        self.shape = tuple(shape)
        self.device = device
        self._calls = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._input: torch.Tensor | None = None
        self._loss: torch.Tensor | None = None
        self.replays = 0  # steps that ran from the graph (read by tests and benchmarks)
        self.failure: str | None = None  # why the capture failed, if it did

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape) != self.shape or self.failure is not None:
            return self._step(x)
        if self._graph is not None:
            self._input.copy_(x)
            self._graph.replay()
            self.replays += 1
            return self._loss
        self._calls += 1
        if self._calls <= WARMUP_CALLS:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                loss = self._step(x)
            torch.cuda.current_stream(self.device).wait_stream(side)
            return loss
        try:
            self._capture(x)
        except RuntimeError as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            self._graph = self._input = self._loss = None
            warnings.warn(f"the training step could not be captured as a CUDA graph "
                          f"({self.failure}); training goes on with eager steps",
                          RuntimeWarning, stacklevel=2)
        return self(x)

    def _capture(self, x: torch.Tensor) -> None:
        """Record one step on the batch buffer; nothing runs until the first replay."""
        self._input = torch.empty_like(x)
        self._input.copy_(x)
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize(self.device)
        with torch.cuda.graph(graph):
            self._loss = self._step(self._input)
        self._graph = graph
