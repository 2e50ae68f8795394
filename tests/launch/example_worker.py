"""Runs the packaged training program (``torchrl_newt.train``, the package's copy of
``examples/newt_mmbench.py``) on short custom tasks (registered in every process first).

    torchrun --standalone --nproc-per-node 2 tests/launch/example_worker.py OUT_JSON -- EXAMPLE_ARGS...

Every rank writes ``OUT_JSON.rank{r}`` with its final results, frame and update counters.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from torchrl_newt.envs import register_task
from torchrl_newt.launch import get_rank
from torchrl_newt.launch.slurm import DEFAULT_ENTRY_POINT, load_entry_point

SHORT_TASKS = {"test-cartpole-short": "cartpole-balance", "test-reacher-short": "reacher-easy",
               "test-finger-short": "finger-spin"}


def register_short_tasks() -> None:
    for name, base in SHORT_TASKS.items():
        register_task(name, base=base, episode_length=12, overwrite=True)


def main(argv: list[str]) -> None:
    out, example_argv = argv[0], argv[argv.index("--") + 1:]
    register_short_tasks()
    result = load_entry_point(DEFAULT_ENTRY_POINT)(example_argv)
    # get_rank() is 0 after the example destroyed its process group: read the rank torchrun gave
    import os

    rank = int(os.environ.get("RANK", get_rank()))
    summary = {"results": result["results"], "frames": result["state"]["frames"],
               "updates": result["state"]["updates"], "history": len(result["state"]["history"])}
    Path(f"{out}.rank{rank}").write_text(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1:])
