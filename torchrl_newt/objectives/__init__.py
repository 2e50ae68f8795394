"""TD-MPC2 / Newt losses as TorchRL LossModules."""

from torchrl_newt.objectives.tdmpc2 import (
    NonFiniteLossError,
    RunningScale,
    TDMPC2ActorLoss,
    TDMPC2WorldModelLoss,
    assert_finite_losses,
)

__all__ = [
    "NonFiniteLossError",
    "RunningScale",
    "TDMPC2ActorLoss",
    "TDMPC2WorldModelLoss",
    "assert_finite_losses",
]
