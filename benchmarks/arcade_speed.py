"""Steps per second of every MiniArcade game on one CPU core (state-only stepping, random actions).

Writes ``benchmarks/results/arcade_speed_<device>.md`` (device named from ``/proc/cpuinfo``).

Usage::

    python benchmarks/arcade_speed.py [--steps 5000] [--tasks pygame-pong pygame-cowboy]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import time
from pathlib import Path

import numpy as np
from benchmarks_common import cpu_name  # noqa: E402  (benchmarks/ is the script's folder)

log = logging.getLogger("arcade_speed")


def steps_per_second(task: str, steps: int = 5000, seed: int = 0) -> float:
    """Random-action steps per second of one game (resetting at the episode length).

    Examples:
        >>> steps_per_second("pygame-cartpole-balance", steps=100) > 0
        True
    """
    from torchrl_newt.envs.domains.arcade import make_game

    game = make_game(task)
    actions = np.random.default_rng(seed).uniform(-1, 1, (steps, game.action_dim))
    game.reset(seed=seed)
    start = time.perf_counter()
    for i in range(steps):
        if game.t >= game.episode_length:
            game.reset()
        game.step(actions[i])
    return steps / (time.perf_counter() - start)


def main() -> None:
    from torchrl_newt.envs import list_tasks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--tasks", nargs="*", default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    device = cpu_name()
    rows = []
    for task in args.tasks or list_tasks("pygame"):
        sps = steps_per_second(task, args.steps)
        rows.append((task, sps))
        log.info("%-32s %10.0f steps/s", task, sps)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", device).strip("-").lower()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"arcade_speed_{slug}.md"
    lines = [
        f"# MiniArcade stepping speed on {device}",
        "",
        (
            f"One core, state-only stepping with uniformly random actions, {args.steps} steps per game "
            "(reset at each episode end). Target: at least 5,000 steps/s per game."
        ),
        "",
        "| task | steps/s |",
        "|---|---:|",
        *[f"| {t} | {s:,.0f} |" for t, s in rows],
        "",
        f"Slowest: {min(rows, key=lambda r: r[1])[0]} ({min(s for _, s in rows):,.0f} steps/s).",
        "",
    ]
    path.write_text("\n".join(lines))
    log.info("wrote %s", path)


if __name__ == "__main__":
    main()
