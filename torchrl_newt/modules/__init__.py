"""TensorDict modules of Newt: the world model and the MPPI planner actor."""

from torchrl_newt.modules.layers import SimNorm, TaskMLP, simnorm
from torchrl_newt.modules.world_model import MODEL_SIZES, NewtWorldModel, PolicyOutput
from torchrl_newt.modules.planner import TDMPC2Planner
