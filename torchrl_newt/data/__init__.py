"""Replay buffers and demonstration files."""

from torchrl_newt.data.demos import (
    NEWT_MANISKILL_EPISODES,
    DemoTaskError,
    add_demos,
    demos_to_transitions,
    load_demos,
    save_demos,
)
from torchrl_newt.data.replay import (
    SAMPLING_MODES,
    MixedReplayBuffer,
    MultitaskReplayBuffer,
    MultitaskSliceSampler,
    SumTree,
)

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
