"""How many OpenMP threads each of the app's threads gives torch, and why.

libgomp (torch's OpenMP on Linux) gives every thread that starts parallel work a team of worker
threads of its own, kept for that thread's life.  Once a process holds more such workers than
the machine has CPUs, libgomp stops spinning between parallel regions and sleeps instead, and a
training step (hundreds of short regions) pays a wake-up for each.  Measured on a 2-core machine:
the same training loop in a worker thread ran at 1,368 img/s (1.99 cores busy) when no other
thread had a team, and at 1,238 img/s (1.76 cores) once the main thread had used two threads.

So while a run trains, its thread is the only one with a team: the GUI thread always runs torch
single-threaded (its torch work is one small decode), background tasks run single-threaded
during a run (in fresh pool threads: see :meth:`app.tasks.TaskRunner.set_training`) and use
every core otherwise, and the training thread uses every core.
"""
from __future__ import annotations

import os
import sys
import threading

import torch

ALL = torch.get_num_threads()  # torch's own choice (OMP_NUM_THREADS, else the cores), read at import


def use(n: int) -> None:
    """Run the calling thread's torch work on ``n`` threads (a thread's own OpenMP setting)."""
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


# A nice value this much above the process's own for the training thread and its team (+5 and
# +10 alike: the stall benchmark alone read 17-26 and 15-19 ms in three alternated runs each).
TRAINING_NICE = 10


def yield_to_gui() -> int | None:
    """Lower the calling thread's scheduling priority (Linux; elsewhere nothing), before it
    starts its OpenMP team, whose workers inherit it.  libgomp's workers spin between parallel
    regions, so beside a training run the GUI thread's snapshot repaint took 3-4x its time (45
    ms stalls); at a lower priority the run still gets every core the GUI leaves idle.  Returns
    the thread's id where the priority was lowered."""
    if not sys.platform.startswith("linux"):
        return None
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid)
                                                 + TRAINING_NICE))
    except OSError:  # a sandbox that refuses it: the run goes on at the GUI's priority
        return None
    return tid
