"""Render one mid-episode frame of every MiniArcade game into a labelled contact sheet.

Writes ``docs/images/arcade_contact_sheet.png``. Each game is played for a few dozen frames
with its scripted policy before the snapshot, so the frame shows a game in progress.

Usage::

    python scripts/make_arcade_contact_sheet.py [--out docs/images/arcade_contact_sheet.png] [--frames 40]
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np

log = logging.getLogger("arcade_contact_sheet")


def snapshot(task: str, frames: int = 40, seed: int = 0) -> np.ndarray:
    """A ``uint8 [224, 224, 3]`` frame of ``task`` after ``frames`` scripted steps.

    Examples:
        >>> snapshot("pygame-pong", frames=2).shape
        (224, 224, 3)
    """
    from torchrl_newt.envs.domains.arcade import make_game
    from torchrl_newt.envs.domains.arcade.policies import scripted_policy

    game = make_game(task)
    policy = scripted_policy(task)
    game.reset(seed=seed)
    for _ in range(frames):
        game.step(policy(game))
    frame = game.render()
    game.close()
    return frame


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from torchrl_newt.envs import list_tasks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs/images/arcade_contact_sheet.png")
    parser.add_argument("--frames", type=int, default=40)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tasks = list_tasks("pygame")
    cols = 5
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows))
    for ax in axes.flat:
        ax.axis("off")
    for ax, task in zip(axes.flat, tasks):
        ax.imshow(snapshot(task, args.frames))
        ax.set_title(task.removeprefix("pygame-"), fontsize=9)
    fig.suptitle("MiniArcade (pygame-*) tasks", fontsize=12)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
