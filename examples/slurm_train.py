"""Submit one data-parallel Newt training job to Slurm (several nodes x several tasks per node).

Every Slurm task runs ``examples/newt_mmbench.py``'s ``main``; it initialises ``torch.distributed``
from the submitit job environment (NCCL on GPU, gloo on CPU), steps its round-robin share of the
tasks and all-reduces the gradients; rank 0 logs and checkpoints to ``--output-dir``. On a time-out
or preemption the job is requeued and resumes from its latest checkpoint. Arguments after ``--``
go to the training script.

    # 2 nodes x 8 GPUs, all 200 MMBench tasks, model size L
    python examples/slurm_train.py --partition gpu --nodes 2 --tasks-per-node 8 --gpus-per-node 8 \\
        --time 1440 --output-dir runs/newt-L -- --tasks mmbench --size L --frames 100_000_000

    # the local test cluster (scripts/slurm_local.sh start): 2 CPU processes
    python examples/slurm_train.py --tasks-per-node 2 --cpus-per-task 1 --time 30 --wait -- --frames 4000
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys

from torchrl_newt.launch.slurm import DEFAULT_ENTRY_POINT, SlurmConfig, split_passthrough, submit_training


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--output-dir", default="runs/newt-slurm", help="the run's folder (checkpoints, logs, result)")
    p.add_argument("--folder", default="slurm_logs/%j", help="submitit's job folder (%%j: job id)")
    p.add_argument("--partition", default=None)
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--tasks-per-node", type=int, default=1, help="processes per node (one per GPU)")
    p.add_argument("--gpus-per-node", type=int, default=0)
    p.add_argument("--cpus-per-task", type=int, default=None)
    p.add_argument("--mem-gb", type=float, default=None)
    p.add_argument("--time", type=int, default=240, help="time limit in minutes (the job requeues itself)")
    p.add_argument("--signal-delay", type=int, default=120, help="seconds between the time-out signal and the kill")
    p.add_argument("--max-requeues", type=int, default=10, help="requeues after time-outs")
    p.add_argument("--job-name", default="newt")
    p.add_argument("--cluster", default=None, choices=["slurm", "local", "debug"], help="default: auto")
    p.add_argument("--entry-point", default=DEFAULT_ENTRY_POINT, help="script.py[:fn] or module:fn")
    p.add_argument("--import", dest="imports", action="append", default=[],
                   help="module imported first, here and in the job (e.g. one registering custom tasks)")
    p.add_argument("--wait", action="store_true", help="wait for the job and print its result")
    return p


def main(argv: list[str] | None = None) -> dict | None:
    ours, train_argv = split_passthrough(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(ours)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for module in args.imports:  # here too: custom tasks must resolve before submission
        importlib.import_module(module)
    config = SlurmConfig(
        folder=args.folder, partition=args.partition, nodes=args.nodes, tasks_per_node=args.tasks_per_node,
        gpus_per_node=args.gpus_per_node, cpus_per_task=args.cpus_per_task, mem_gb=args.mem_gb,
        timeout_min=args.time, signal_delay_s=args.signal_delay, max_num_timeout=args.max_requeues,
        job_name=args.job_name, cluster=args.cluster,
    )
    job = submit_training(config, train_argv, args.output_dir, entry_point=args.entry_point, imports=args.imports)
    print(f"submitted job {job.job_id}; logs in {job.paths.stdout.parent}; output in {args.output_dir}")
    if not args.wait:
        return None
    result = job.results()[0]  # one result per Slurm task: rank 0's first
    print(json.dumps(result["results"], indent=1))
    return result


if __name__ == "__main__":
    main()
