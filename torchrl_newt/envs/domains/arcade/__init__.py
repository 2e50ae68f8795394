"""MiniArcade: MMBench's 19 ``pygame-*`` tasks and its 9 held-out ones, written for torchrl_newt.

Small 2D games with continuous actions in ``[-1, 1]``. Cartpole, point maze, the runners and
reacher follow Newt's definitions (github.com/nicklashansen/newt, commit 75def92,
``tdmpc2/envs/tasks/pygame/``) draw for draw; see each module for its provenance. Game logic
is pure Python on scalars (no drawing while stepping, several thousand steps per second on one
core); pygame is imported lazily, headless, by ``render()`` only. Each game is documented in
``docs/arcade.md``.

Importing this module registers the ``"pygame"`` domain with the task registry.

Examples:
    >>> from torchrl_newt.envs import build_raw_task
    >>> env = build_raw_task("pygame-cartpole-balance")
    >>> env.reset(seed=0).shape
    (4,)
    >>> sorted(GAMES)[:3]
    ['pygame-air-hockey', 'pygame-bird-attack', 'pygame-cartpole-balance']
"""

from __future__ import annotations

import importlib
from typing import Any

from torchrl_newt.envs.domains.arcade._base import SCREEN, ArcadeGame
from torchrl_newt.envs.registry import TaskSpec, get_task, register_domain

__all__ = ["GAMES", "SCREEN", "ArcadeGame", "build_arcade_task", "game_class", "make_game"]

#: task name -> "module:Class" of its game (modules are imported on first use)
GAMES: dict[str, str] = {
    "pygame-cowboy": "runners:CowboyGame",
    "pygame-coinrun": "runners:CoinRunGame",
    "pygame-spaceship": "space:SpaceshipGame",
    "pygame-pong": "sports:PongGame",
    "pygame-bird-attack": "shooter:BirdAttackGame",
    "pygame-highway": "vehicles:HighwayGame",
    "pygame-landing": "vehicles:LandingGame",
    "pygame-air-hockey": "sports:AirHockeyGame",
    "pygame-rocket-collect": "space:RocketCollectGame",
    "pygame-chase-evade": "chase:ChaseEvadeGame",
    "pygame-coconut-dodge": "chase:CoconutDodgeGame",
    "pygame-cartpole-balance": "cartpole:CartpoleBalanceGame",
    "pygame-cartpole-swingup": "cartpole:CartpoleSwingupGame",
    "pygame-cartpole-balance-sparse": "cartpole:CartpoleBalanceSparseGame",
    "pygame-cartpole-swingup-sparse": "cartpole:CartpoleSwingupSparseGame",
    "pygame-cartpole-tremor": "cartpole:CartpoleTremorGame",
    "pygame-point-maze-var1": "point_maze:PointMazeVar1Game",
    "pygame-point-maze-var2": "point_maze:PointMazeVar2Game",
    "pygame-point-maze-var3": "point_maze:PointMazeVar3Game",
    # held-out tasks
    "pygame-point-maze-var4": "point_maze:PointMazeVar4Game",
    "pygame-point-maze-var5": "point_maze:PointMazeVar5Game",
    "pygame-point-maze-var6": "point_maze:PointMazeVar6Game",
    "pygame-point-maze-var7": "point_maze:PointMazeVar7Game",
    "pygame-point-maze-var8": "point_maze:PointMazeVar8Game",
    "pygame-reacher-easy": "reacher:ReacherEasyGame",
    "pygame-reacher-hard": "reacher:ReacherHardGame",
    "pygame-reacher-var1": "reacher:ReacherVar1Game",
    "pygame-reacher-var2": "reacher:ReacherVar2Game",
}

# MMBench's class names (``spec.source["class"]``) -> our task names, for specs registered by users
_BY_SOURCE_CLASS = {
    "CowboyEnv": "pygame-cowboy",
    "CoinRunEnv": "pygame-coinrun",
    "SpaceshipEnv": "pygame-spaceship",
    "PongEnv": "pygame-pong",
    "BirdAttackEnv": "pygame-bird-attack",
    "HighwayEnv": "pygame-highway",
    "LandingEnv": "pygame-landing",
    "AirHockeyEnv": "pygame-air-hockey",
    "RocketCollectEnv": "pygame-rocket-collect",
    "ChaseEvadeEnv": "pygame-chase-evade",
    "CoconutDodgeEnv": "pygame-coconut-dodge",
    "CartpoleBalanceEnv": "pygame-cartpole-balance",
    "CartpoleSwingupEnv": "pygame-cartpole-swingup",
    "CartpoleBalanceSparseEnv": "pygame-cartpole-balance-sparse",
    "CartpoleSwingupSparseEnv": "pygame-cartpole-swingup-sparse",
    "CartpoleTremorEnv": "pygame-cartpole-tremor",
    "PointMazeVariant1Env": "pygame-point-maze-var1",
    "PointMazeVariant2Env": "pygame-point-maze-var2",
    "PointMazeVariant3Env": "pygame-point-maze-var3",
    "PointMazeVariant4Env": "pygame-point-maze-var4",
    "PointMazeVariant5Env": "pygame-point-maze-var5",
    "PointMazeVariant6Env": "pygame-point-maze-var6",
    "PointMazeVariant7Env": "pygame-point-maze-var7",
    "PointMazeVariant8Env": "pygame-point-maze-var8",
    "ReacherEasyEnv": "pygame-reacher-easy",
    "ReacherHardEnv": "pygame-reacher-hard",
    "ReacherVar1Env": "pygame-reacher-var1",
    "ReacherVar2Env": "pygame-reacher-var2",
}


def game_class(task: str | TaskSpec) -> type[ArcadeGame]:
    """The :class:`ArcadeGame` subclass implementing a ``pygame-*`` task.

    Held-out or user tasks built on an arcade task resolve through ``spec.source["class"]``.

    Raises:
        KeyError: the task is not a MiniArcade game.

    Examples:
        >>> game_class("pygame-pong").__name__
        'PongGame'
    """
    spec = get_task(task)
    name = spec.name if spec.name in GAMES else _BY_SOURCE_CLASS.get(str(spec.source.get("class", "")))
    if name is None:
        raise KeyError(f"task {spec.name!r} is not a MiniArcade game; known: {sorted(GAMES)}")
    module, cls = GAMES[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def build_arcade_task(spec: TaskSpec, **kwargs: Any) -> ArcadeGame:
    """Registry builder of the ``"pygame"`` domain: ``builder(spec, **kwargs) -> RawTask``.

    Args:
        spec: the task spec.
        **kwargs: forwarded to the game (``seed=`` is the only common one).
    """
    return game_class(spec)(spec, **kwargs)


def make_game(task: str | TaskSpec, **kwargs: Any) -> ArcadeGame:
    """Build a MiniArcade game by task name (same as ``build_raw_task`` for ``pygame-*`` tasks).

    Examples:
        >>> game = make_game("pygame-landing", seed=0)
        >>> game.obs_dim, game.action_dim, game.episode_length
        (7, 2, 200)
    """
    return build_arcade_task(get_task(task), **kwargs)


register_domain("pygame", build_arcade_task, extra="arcade", requires=("pygame",))
