"""Generate each task's demonstrations from its single-task expert as a Slurm array (Newt's stage 2).

Element ``TASK`` plans with the expert ``EXPERTS/<TASK>/checkpoint.pt`` that stage 1
(``examples/slurm_array.py --root EXPERTS``) left, keeps the episodes that pass Newt's acceptance
rule and writes ``OUT/<TASK>.pt`` in Newt's demo format, the folder stage 3 reads
(``--demos OUT``). Tasks whose demo file exists are skipped, so re-running the same command only
submits what is missing. Every expert is checked before anything is submitted: a missing checkpoint
(or an expert run without ``result.json``, i.e. not finished) is an error naming the tasks, unless
``--skip-missing``. Arguments after ``--`` go to ``python -m torchrl_newt.demos generate``
(``--seed``, ``--max-attempts``, ``--device``, planner overrides...). See ``docs/pipeline.md``.

    # the 200 MMBench tasks, 10 demos each, one GPU per element, 50 at a time
    python examples/slurm_demos.py --tasks mmbench --experts runs/experts --out runs/demos --num-demos 10 \\
        --partition gpu --gpus-per-node 1 --cpus-per-task 8 --parallelism 50 --time 120

    # two tasks on the local test cluster (scripts/slurm_local.sh start)
    python examples/slurm_demos.py --tasks cartpole-balance,walker-stand --experts runs/experts \\
        --out runs/demos --num-demos 2 --cpus-per-task 1 --time 30 -- --device cpu --max-attempts 40
"""

from __future__ import annotations

import argparse
import logging
import sys

from torchrl_newt.launch.slurm import (
    add_array_options,
    array_config,
    collect_demos,
    split_passthrough,
    submit_demo_array,
)
from torchrl_newt.evaluate import resolve_tasks


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--tasks", required=True, help="comma-separated task names, 'mmbench' or 'domain:NAME'")
    p.add_argument("--experts", default="runs/experts", help="stage 1's root: the expert of TASK in EXPERTS/<task>")
    p.add_argument("--out", default="runs/demos", help="the demo folder: OUT/<task>.pt")
    p.add_argument("--num-demos", type=int, default=10, help="accepted demonstrations per task")
    p.add_argument("--skip-missing", action="store_true", help="leave out tasks without an expert instead of failing")
    p.add_argument("--allow-unfinished", action="store_true",
                   help="use an expert's latest checkpoint even if its run has not finished (no result.json)")
    return add_array_options(p, time_min=120, job_name="newt-demos")


def main(argv: list[str] | None = None) -> dict[str, dict]:
    ours, demo_argv = split_passthrough(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(ours)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = array_config(args)
    tasks = resolve_tasks(args.tasks)
    jobs, finished = submit_demo_array(config, tasks, args.experts, args.out, args.num_demos, demo_argv,
                                       skip_missing=args.skip_missing, require_finished=not args.allow_unfinished,
                                       imports=args.imports)
    print(f"{len(jobs)} demo job(s) submitted or running, {len(finished)} task(s) with demos already")
    if args.no_wait:
        return finished
    results = collect_demos(jobs, finished, raise_on_error=False)
    rows = [f"{'task':<32}{'demos':>7}{'episodes':>10}{'mean return':>13}"]
    for task in tasks:
        r = results.get(task)
        if r is None:
            rows.append(f"{task:<32}{'failed' if task in jobs else 'no expert':>7}")
        elif r.get("existing"):
            rows.append(f"{task:<32}{'exists':>7}")
        else:
            rows.append(f"{task:<32}{r['accepted']:>7}{r['attempted']:>10}{r['mean_return']:>13.4g}")
    print("\n".join(rows))
    print(f"demos: {args.out} ({len(results)} of {len(tasks)} task(s)); stage 3 reads them with --demos {args.out}")
    return results


if __name__ == "__main__":
    main()
