"""Replay buffers and demonstration files."""

from torchrl_newt.data.demos import add_demos, demos_to_transitions, load_demos, save_demos
from torchrl_newt.data.replay import (
    MixedReplayBuffer,
    MultitaskReplayBuffer,
    MultitaskSliceSampler,
    SAMPLING_MODES,
    SumTree,
)

__all__ = [
    "MixedReplayBuffer",
    "MultitaskReplayBuffer",
    "MultitaskSliceSampler",
    "SAMPLING_MODES",
    "SumTree",
    "add_demos",
    "demos_to_transitions",
    "load_demos",
    "save_demos",
]
