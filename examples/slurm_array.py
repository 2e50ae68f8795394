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
import importlib
import json
import logging
import sys
from pathlib import Path

from torchrl_newt.envs import get_task, list_tasks
from torchrl_newt.launch.slurm import DEFAULT_ENTRY_POINT, SlurmConfig, collect_results, submit_array


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--tasks", required=True, help="comma-separated task names, 'mmbench' or 'domain:NAME'")
    p.add_argument("--root", default="runs/single", help="each task's run goes to ROOT/<task>")
    p.add_argument("--folder", default="slurm_logs/%j", help="submitit's job folder (%%j: job id)")
    p.add_argument("--partition", default=None)
    p.add_argument("--gpus-per-node", type=int, default=0, help="GPUs per run")
    p.add_argument("--cpus-per-task", type=int, default=None)
    p.add_argument("--mem-gb", type=float, default=None)
    p.add_argument("--time", type=int, default=240, help="time limit per run in minutes (runs requeue themselves)")
    p.add_argument("--parallelism", type=int, default=32, help="array elements running at once")
    p.add_argument("--signal-delay", type=int, default=120)
    p.add_argument("--job-name", default="newt-array")
    p.add_argument("--cluster", default=None, choices=["slurm", "local", "debug"], help="default: auto")
    p.add_argument("--entry-point", default=DEFAULT_ENTRY_POINT)
    p.add_argument("--import", dest="imports", action="append", default=[],
                   help="module imported first, here and in the jobs (e.g. one registering custom tasks)")
    p.add_argument("--no-wait", action="store_true", help="submit and exit (re-run later to collect)")
    return p


def resolve(spec: str) -> list[str]:
    if spec == "mmbench":
        return list_tasks()
    if spec.startswith("domain:"):
        return list_tasks(spec.split(":", 1)[1])
    return [get_task(t.strip()).name for t in spec.split(",") if t.strip()]


def main(argv: list[str] | None = None) -> dict[str, dict]:
    argv = sys.argv[1:] if argv is None else argv
    ours, train_argv = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args = build_parser().parse_args(ours)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for module in args.imports:  # here too: custom tasks must resolve before submission
        importlib.import_module(module)
    config = SlurmConfig(
        folder=args.folder, partition=args.partition, gpus_per_node=args.gpus_per_node,
        cpus_per_task=args.cpus_per_task, mem_gb=args.mem_gb, timeout_min=args.time,
        array_parallelism=args.parallelism, signal_delay_s=args.signal_delay, job_name=args.job_name,
        cluster=args.cluster,
    )
    tasks = resolve(args.tasks)
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
