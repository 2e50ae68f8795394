"""Replay buffers and demonstration files.

One concept per module: :mod:`~torchrl_newt.data.sum_tree` (the sum tree),
:mod:`~torchrl_newt.data.samplers` (the slice sampler), :mod:`~torchrl_newt.data.replay` (the
multitask buffer), :mod:`~torchrl_newt.data.mixed` (demo + online batches) and
:mod:`~torchrl_newt.data.demos` (demonstration files).
"""

from torchrl_newt.data.demos import (
    NEWT_MANISKILL_EPISODES,
    DemoTaskError,
    add_demos,
    demos_to_transitions,
    load_demos,
    save_demos,
)
from torchrl_newt.data.mixed import MixedReplayBuffer
from torchrl_newt.data.replay import MultitaskReplayBuffer
from torchrl_newt.data.samplers import SAMPLING_MODES, MultitaskSliceSampler
from torchrl_newt.data.sum_tree import SumTree

__all__ = [
    "NEWT_MANISKILL_EPISODES",
    "SAMPLING_MODES",
    "DemoTaskError",
    "MixedReplayBuffer",
    "MultitaskReplayBuffer",
    "MultitaskSliceSampler",
    "SumTree",
    "add_demos",
    "demos_to_transitions",
    "load_demos",
    "save_demos",
]
