"""Multitask behaviour cloning from demonstrations: ``python examples/baselines/bc.py --demos DIR --tasks ...``.

A language-conditioned MLP policy (padded observation + the task's frozen CLIP instruction embedding,
projected; ``tanh`` output multiplied by the task's action mask) regresses the demonstrated actions
with a squared error on the valid action dims only. Demonstrations are our files or Newt's
(``DIR/TASK.pt``), read by :func:`torchrl_newt.data.load_demos`:

    load_demos -> demos_to_transitions -> ReplayBuffer -> masked MSE -> Adam -> evaluate

``--single-task`` trains one independent policy per task, each on its own task's demonstrations
only, and evaluates each on its task.

``--frames`` counts demonstration transitions drawn (``updates = ceil(frames / batch_size)``, per
policy with ``--single-task``); BC never steps the training env. Writes
``OUTPUT_DIR/final_scores.json`` and ``OUTPUT_DIR/checkpoint.pt`` and prints the score table (with
uniform random actions as reference), like the main job.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from tensordict.nn import TensorDictModule
from torchrl.data import LazyTensorStorage, TensorDictReplayBuffer

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing
from torchrl_newt.baselines import (BaselineRun, batches_for, build_parser, check_tasks, cli, make_bc_policy,
                                    positive, task_table)
from torchrl_newt.data import demos_to_transitions, load_demos


def parse_args(argv=None):
    p = build_parser("bc", __doc__.split("\n\n")[0], frames=2_000_000)
    g = p.add_argument_group("behaviour cloning")
    g.add_argument("--demos", nargs="+", required=True, help="demo files or folders of *.pt files (ours or Newt's)")
    g.add_argument("--single-task", action="store_true", help="one policy per task instead of one multitask policy")
    g.add_argument("--batch-size", type=positive(), default=256)
    g.add_argument("--lr", type=positive(float), default=3e-4)
    g.add_argument("--weight-decay", type=float, default=0.0)
    return p.parse_args(argv)


def demo_files(paths: list[str]) -> list[Path]:
    """The files of ``--demos`` (folders give their ``*.pt`` files)."""
    files = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"--demos: {p} does not exist")
        files += sorted(p.glob("*.pt")) if p.is_dir() else [p]
    if not files:
        raise FileNotFoundError(f"--demos: no demonstration files (*.pt) in {', '.join(paths)}")
    return files


def load_transitions(paths: list[str], tasks: list[str]):
    """All demonstrated steps of ``tasks`` as a flat ``TensorDict``; every task must have demos."""
    # padded to the env's widths (128 / 16), so files of tasks with different sizes (Newt's) load together
    demos = load_demos(demo_files(paths), tasks, obs_pad=128, action_pad=16)
    have = set(demos["task"].tolist())
    missing = [t for i, t in enumerate(tasks) if i not in have]
    if missing:
        raise ValueError(f"no demonstrations of task(s) {', '.join(missing)} in {', '.join(paths)}: "
                         "BC needs demos of every task")
    return demos_to_transitions(demos).reshape(-1)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the valid action dims only."""
    mask = mask.to(pred.dtype)
    return ((pred - target.clamp(-1, 1)) ** 2 * mask).sum() / mask.sum().clamp_min(1)


def fit(policy, transitions, args, run: BaselineRun, bar, tag: str = "") -> tuple[int, torch.optim.Optimizer]:
    """Regress ``policy`` on ``transitions`` for ``ceil(frames / batch_size)`` updates."""
    replay = TensorDictReplayBuffer(storage=LazyTensorStorage(transitions.numel()), batch_size=args.batch_size)
    replay.extend(transitions)
    optim = torch.optim.Adam(policy.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    updates = batches_for(args.frames, args.batch_size)
    for step in range(1, updates + 1):
        batch = replay.sample().to(run.device)
        pred = policy(batch.select(*policy.in_keys))["action"]
        loss = masked_mse(pred, batch["action"], batch["action_mask"])
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        bar.update(1)
        if step % 100 == 0 or step == updates:
            run.log({f"train/loss{tag}": loss}, step)
    return updates, optim


def main(argv=None) -> dict:
    """Train BC and return ``{"results": final scores per task, "random": ..., "state": counters}``."""
    args = parse_args(argv)
    tasks = check_tasks(args.tasks)
    transitions = load_transitions(args.demos, tasks)  # demos of every task, before anything is set up
    run = BaselineRun.start("bc", args)

    policy = make_bc_policy(len(tasks), table=task_table(tasks, args.no_language), num_cells=args.num_cells,
                            task_dim=args.task_dim, single_task=args.single_task).to(run.device)
    if args.single_task:  # policy k sees only task k's demos
        policies = [(f"/{t}", policy.module.actors[k], transitions[transitions["task"] == k])
                    for k, t in enumerate(tasks)]
    else:
        policies = [("", policy.module, transitions)]
    bar = run.bar(len(policies) * batches_for(args.frames, args.batch_size), unit="update")
    updates, optimizers = 0, []
    for tag, module, data in policies:
        one = TensorDictModule(module, in_keys=policy.in_keys, out_keys=["action"])
        if args.single_task:  # each single-task actor reads task id 0 (its own, constant task vector)
            data = data.clone()
            data["task"] = torch.zeros_like(data["task"])
        n, optim = fit(one, data, args, run, bar, tag)
        updates += n
        optimizers.append(optim.state_dict())
    bar.close()
    return run.finish(policy, frames=len(policies) * args.frames, updates=updates,
                      checkpoint={"policy": policy, "optimizers": optimizers},
                      demo_transitions=transitions.numel(), single_task=args.single_task)


if __name__ == "__main__":
    sys.exit(cli(main, "bc"))
