"""Newt's three-stage recipe on Slurm in one command, waiting between the stages.

1. experts: one single-task run per task (an array) in ``ROOT/experts/<task>/``;
2. demos: one demonstration-generation run per task (an array) from
   ``ROOT/experts/<task>/checkpoint.pt`` to ``ROOT/demos/<task>.pt``;
3. the multitask world model: one (multi-node) job on all tasks, pretrained on ``ROOT/demos``
   (``--pretrain-updates``) then trained online, in ``ROOT/newt/``.

Each stage skips what is done (``result.json`` of an expert, a demo file, the main run's
``result.json``), so re-running the command after a failure resumes where it stopped. Extra
arguments of each stage are given as one quoted string: ``--expert-args`` and ``--train-args`` go to
the training program (``torchrl_newt.train``), ``--demo-args`` to
``python -m torchrl_newt.demos generate``. The stages one by one are ``examples/slurm_array.py``,
``examples/slurm_demos.py`` and ``examples/slurm_train.py`` (see ``docs/pipeline.md``).

    python examples/slurm_pipeline.py --tasks mmbench --root runs/pipeline --num-demos 10 \\
        --partition gpu --gpus-per-node 1 --cpus-per-task 8 --parallelism 50 \\
        --expert-time 720 --expert-args "--frames 1_000_000" --demo-time 120 \\
        --train-nodes 4 --train-tasks-per-node 8 --train-gpus-per-node 8 --train-time 1440 \\
        --pretrain-updates 100_000 --train-args "--size L --batch-size 1024 --frames 100_000_000"
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import shlex
import sys
from pathlib import Path

from torchrl_newt.launch.slurm import (
    SlurmConfig,
    collect_demos,
    collect_results,
    submit_array,
    submit_demo_array,
    submit_training,
)
from torchrl_newt.evaluate import resolve_tasks

logger = logging.getLogger("slurm_pipeline")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--tasks", required=True, help="comma-separated task names, 'mmbench' or 'domain:NAME'")
    p.add_argument("--root", default="runs/pipeline", help="ROOT/experts, ROOT/demos and ROOT/newt")
    p.add_argument("--num-demos", type=int, default=10, help="accepted demonstrations per task")
    p.add_argument("--pretrain-updates", type=int, default=0, help="stage 3's updates on the demos before RL")
    p.add_argument("--skip-failed", action="store_true",
                   help="continue with the tasks whose expert/demos succeeded instead of stopping")
    g = p.add_argument_group("Slurm resources")
    g.add_argument("--folder", default="slurm_logs/%j", help="submitit's job folder (%%j: job id)")
    g.add_argument("--partition", default=None)
    g.add_argument("--gpus-per-node", type=int, default=0, help="GPUs per expert / demo element")
    g.add_argument("--cpus-per-task", type=int, default=None)
    g.add_argument("--mem-gb", type=float, default=None)
    g.add_argument("--parallelism", type=int, default=32, help="array elements running at once")
    g.add_argument("--signal-delay", type=int, default=120)
    g.add_argument("--expert-time", type=int, default=720, help="minutes per expert run (they requeue themselves)")
    g.add_argument("--demo-time", type=int, default=120, help="minutes per demo element")
    g.add_argument("--train-nodes", type=int, default=1)
    g.add_argument("--train-tasks-per-node", type=int, default=1, help="processes per node (one per GPU)")
    g.add_argument("--train-gpus-per-node", type=int, default=0)
    g.add_argument("--train-time", type=int, default=1440, help="minutes of the main job (it requeues itself)")
    g.add_argument("--job-name", default="newt", help="Slurm job names: NAME-experts, NAME-demos, NAME-newt")
    g.add_argument("--cluster", default=None, choices=["slurm", "local", "debug"], help="default: auto")
    g.add_argument("--import", dest="imports", action="append", default=[],
                   help="module imported first, here and in every job (e.g. one registering custom tasks)")
    g = p.add_argument_group("arguments of the stages (one quoted string each)")
    g.add_argument("--expert-args", default="", help="torchrl_newt.train options of every expert run")
    g.add_argument("--demo-args", default="", help="python -m torchrl_newt.demos generate options")
    g.add_argument("--train-args", default="", help="torchrl_newt.train options of the multitask run")
    return p


def _config(args, name: str, time: int, **kw) -> SlurmConfig:
    return SlurmConfig(folder=args.folder, partition=args.partition, cpus_per_task=args.cpus_per_task,
                       mem_gb=args.mem_gb, signal_delay_s=args.signal_delay, job_name=name, timeout_min=time,
                       cluster=args.cluster, **kw)


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for module in args.imports:  # custom tasks must resolve here too
        importlib.import_module(module)
    tasks = resolve_tasks(args.tasks)
    root = Path(args.root)
    experts, demos, main_dir = root / "experts", root / "demos", root / "newt"

    logger.info("stage 1/3: %d expert(s) in %s", len(tasks), experts)
    array = _config(args, f"{args.job_name}-experts", args.expert_time, gpus_per_node=args.gpus_per_node,
                    array_parallelism=args.parallelism)
    jobs, done = submit_array(array, tasks, experts, shlex.split(args.expert_args), imports=args.imports)
    tasks = [t for t in tasks if t in collect_results(jobs, done, raise_on_error=not args.skip_failed)]

    logger.info("stage 2/3: %d demo(s) per task for %d task(s) in %s", args.num_demos, len(tasks), demos)
    array.job_name, array.timeout_min = f"{args.job_name}-demos", args.demo_time
    jobs, done = submit_demo_array(array, tasks, experts, demos, args.num_demos, shlex.split(args.demo_args),
                                   skip_missing=args.skip_failed, imports=args.imports)
    tasks = [t for t in tasks if t in collect_demos(jobs, done, raise_on_error=not args.skip_failed)]
    if not tasks:
        raise RuntimeError("no task has demonstrations: nothing to train in stage 3")

    logger.info("stage 3/3: the multitask model on %d task(s) in %s", len(tasks), main_dir)
    train_argv = ["--tasks", ",".join(tasks), "--demos", str(demos)]
    if args.pretrain_updates:
        train_argv += ["--pretrain-updates", str(args.pretrain_updates)]
    job = submit_training(_config(args, f"{args.job_name}-newt", args.train_time, nodes=args.train_nodes,
                                  tasks_per_node=args.train_tasks_per_node, gpus_per_node=args.train_gpus_per_node),
                          train_argv + shlex.split(args.train_args), main_dir, imports=args.imports)
    result = job.results()[0]  # one result per rank: rank 0's first
    print(json.dumps(result["results"], indent=1))
    print(f"experts: {experts}\ndemos:   {demos}\nnewt:    {main_dir} (final_scores.json, checkpoint.pt)")
    return result


if __name__ == "__main__":
    main()
