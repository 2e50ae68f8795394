"""Baselines of the Newt paper on this project's env stack: behaviour cloning, PPO and TD3.

The scripts live in ``examples/baselines/`` (``bc.py``, ``ppo.py``, ``td3.py``); this package holds
what they share: the command line, training env, evaluation, score table, ``final_scores.json`` and
checkpoint helpers (:mod:`~torchrl_newt.baselines.common`) and the task-conditioned, action-masked
networks (:mod:`~torchrl_newt.baselines.networks`). See ``docs/baselines.md``.
"""

from torchrl_newt.baselines.common import (
    CHECKPOINT,
    BaselineRun,
    batches_for,
    build_parser,
    check_tasks,
    cli,
    make_train_env,
    num_cells,
    positive,
    task_table,
)
from torchrl_newt.baselines.networks import (
    ApplyActionMask,
    MaskedTanhActor,
    MaskedTanhNormal,
    PerTaskActor,
    TaskConditionedMLP,
    TaskEncoder,
    make_bc_policy,
    make_ppo_modules,
    make_td3_modules,
)

__all__ = [
    "CHECKPOINT",
    "ApplyActionMask",
    "BaselineRun",
    "MaskedTanhActor",
    "MaskedTanhNormal",
    "PerTaskActor",
    "TaskConditionedMLP",
    "TaskEncoder",
    "batches_for",
    "build_parser",
    "check_tasks",
    "cli",
    "make_bc_policy",
    "make_ppo_modules",
    "make_td3_modules",
    "make_train_env",
    "num_cells",
    "positive",
    "task_table",
]
