"""Newt's Box2D task environments (walker terrains, lander variants) on top of Gymnasium's.

Importing this package imports Gymnasium's Box2D envs (needs ``gymnasium[box2d]``).
"""

from torchrl_newt.envs.domains._gym import GymRawTask  # noqa: F401  (sets headless defaults first)
from torchrl_newt.envs.domains.box2d_tasks.bipedal_walker import TERRAINS, TerrainBipedalWalker, terrain_profile
from torchrl_newt.envs.domains.box2d_tasks.lunar_lander import LunarLanderHover, LunarLanderLand, LunarLanderTakeoff

__all__ = [
    "TERRAINS",
    "LunarLanderHover",
    "LunarLanderLand",
    "LunarLanderTakeoff",
    "TerrainBipedalWalker",
    "terrain_profile",
]
