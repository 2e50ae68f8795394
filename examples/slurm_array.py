"""Submit single-task Newt runs as a Slurm array job (one task per element) and collect the scores.

Each task trains alone in ``ROOT/<task>/``; tasks whose ``result.json`` exists are skipped, so
re-running the same command only submits what is missing (after failures, or with more tasks).
Elements are requeued on time-out/preemption and resume from their checkpoints. Arguments after
``--`` go to ``examples/newt_mmbench.py``.

    # the 200 MMBench tasks as single-task baselines, 50 at a time, one GPU each
    python examples/slurm_array.py --tasks mmbench --root runs/single --partition gpu \\
        --gpus-per-node 1 --cpus-per-task 8 --parallelism 50 --time 720 -- --frames 1_000_000

    # two tasks on the local test cluster, waiting for the score table
    python examples/slurm_array.py --tasks cartpole-balance,reacher-easy --cpus-per-task 1 --time 30 \\
        -- --frames 2000
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from torchrl_newt.launch.slurm import (
    DEFAULT_ENTRY_POINT,
    add_array_options,
    array_config,
    collect_results,
    split_passthrough,
    submit_array,
)
from torchrl_newt.evaluate import resolve_tasks


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--tasks", required=True, help="comma-separated task names, 'mmbench' or 'domain:NAME'")
    p.add_argument("--root", default="runs/single", help="each task's run goes to ROOT/<task>")
    p.add_argument("--entry-point", default=DEFAULT_ENTRY_POINT)
    return add_array_options(p, time_min=240, job_name="newt-array")


def main(argv: list[str] | None = None) -> dict[str, dict]:
    ours, train_argv = split_passthrough(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(ours)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = array_config(args)
    tasks = resolve_tasks(args.tasks)
    jobs, finished = submit_array(config, tasks, args.root, train_argv, entry_point=args.entry_point,
                                  imports=args.imports)
    print(f"{len(jobs)} run(s) submitted, {len(finished)} finished already")
    if args.no_wait:
        return finished
    results = collect_results(jobs, finished, raise_on_error=False)
    rows = [f"{'task':<32}{'score':>8}{'frames':>12}"]
    for task in tasks:
        if task in results:
            r = results[task]
            rows.append(f"{task:<32}{r['results'][task]['score']:>8.3f}{r['frames']:>12,}")
        else:
            rows.append(f"{task:<32}{'failed':>8}")
    print("\n".join(rows))
    summary = Path(args.root) / "scores.json"
    summary.write_text(json.dumps({t: r["results"][t] for t, r in results.items()}, indent=1))
    print(f"scores: {summary}")
    return results


if __name__ == "__main__":
    main()
