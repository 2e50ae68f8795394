"""torchrl_newt: massively multitask world models (Newt / TD-MPC2) as TorchRL components.

Subpackages: :mod:`torchrl_newt.envs` (MMBench registry and the masked multitask env stack),
:mod:`torchrl_newt.modules` (world model, MPPI planner, language/vision features),
:mod:`torchrl_newt.objectives` (TD-MPC2 losses) and :mod:`torchrl_newt.data` (multitask replay,
demonstrations).
"""

import os as _os

# MuJoCo picks its GL backend when it is first imported (torchrl imports it early): default to
# headless EGL unless the user chose a backend.
_os.environ.setdefault("MUJOCO_GL", "egl")

__version__ = "0.1.0"
