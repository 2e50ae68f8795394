"""Multitask PPO on the masked MMBench env stack: ``python examples/baselines/ppo.py --tasks ...``.

TorchRL's :class:`~torchrl.objectives.ClipPPOLoss` with :class:`~torchrl.objectives.value.GAE`
advantages, a task-conditioned actor and critic (padded observation + the task's frozen CLIP
instruction embedding, projected), one env lane per task (:func:`torchrl_newt.envs.make_env`):

    make_env -> Collector(ProbabilisticActor) -> GAE -> ClipPPOLoss (epochs x minibatches) -> Adam

Action masks: the actor's distribution is :class:`~torchrl_newt.baselines.MaskedTanhNormal`. Its
samples are multiplied by the lane's ``"action_mask"`` (the dims a task does not have are exactly
zero in what the env receives), and its log-probability sums over the valid dims only, so masked
dims drop out of the importance ratio and of the (Monte-Carlo) entropy bonus: without the mask, the
entropy bonus would push the variance of the up to 15 unused dims up forever and their random
log-probabilities would add noise to every ratio.

Writes ``OUTPUT_DIR/final_scores.json`` and ``OUTPUT_DIR/checkpoint.pt`` and prints the score table
(with uniform random actions as reference), like the main job.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torchrl.collectors import Collector
from torchrl.envs.utils import ExplorationType
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import GAE

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing
from torchrl_newt.baselines import (BaselineRun, build_parser, cli, make_ppo_modules, make_train_env, positive,
                                    task_table)


def parse_args(argv=None):
    p = build_parser("ppo", __doc__.split("\n\n")[0], frames=200_000)
    g = p.add_argument_group("PPO")
    g.add_argument("--steps-per-batch", type=positive(), default=256, help="env steps per lane in each collected batch")
    g.add_argument("--epochs", type=positive(), default=4, help="passes over each batch")
    g.add_argument("--minibatch-size", type=positive(), default=256)
    g.add_argument("--lr", type=positive(float), default=3e-4)
    g.add_argument("--gamma", type=float, default=0.99)
    g.add_argument("--lmbda", type=float, default=0.95)
    g.add_argument("--clip-epsilon", type=positive(float), default=0.2)
    g.add_argument("--entropy-coef", type=float, default=1e-3)
    g.add_argument("--critic-coef", type=float, default=0.5)
    g.add_argument("--grad-clip", type=positive(float), default=1.0)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    """Train PPO and return ``{"results": final scores per task, "random": ..., "state": counters}``."""
    args = parse_args(argv)
    run = BaselineRun.start("ppo", args)
    tasks, device = run.tasks, run.device

    # ---------------------------------------------------------------- modules, loss, optimiser
    actor, critic = make_ppo_modules(len(tasks), table=task_table(tasks, args.no_language),
                                     num_cells=args.num_cells, task_dim=args.task_dim)
    actor, critic = actor.to(device), critic.to(device)
    advantage = GAE(gamma=args.gamma, lmbda=args.lmbda, value_network=critic, average_gae=False)
    loss_module = ClipPPOLoss(actor, critic, clip_epsilon=args.clip_epsilon, entropy_coeff=args.entropy_coef,
                              critic_coeff=args.critic_coef, normalize_advantage=True, loss_critic_type="l2")
    optim = torch.optim.Adam(loss_module.parameters(), lr=args.lr)

    # ---------------------------------------------------------------- env and collector
    env = make_train_env(tasks, seed=args.seed, parallel=args.parallel_envs)
    frames_per_batch = len(tasks) * args.steps_per_batch
    collector = Collector(
        env, actor, frames_per_batch=frames_per_batch,
        total_frames=-(-args.frames // frames_per_batch) * frames_per_batch,
        policy_device=device, storing_device=device, exploration_type=ExplorationType.RANDOM,
        auto_register_policy_transforms=False, trust_policy=True,
    )

    # ---------------------------------------------------------------- training
    frames = updates = 0
    checkpoint = {"actor": actor, "critic": critic, "optimizer": optim}
    bar = run.bar(args.frames)
    for batch in collector:
        frames += batch.numel()
        bar.update(batch.numel())
        run.log_episodes(batch, frames)
        for _ in range(args.epochs):
            with torch.no_grad():
                advantage(batch)  # recomputed every epoch with the current critic
            data = batch.reshape(-1)
            for idx in torch.randperm(data.numel(), device=data.device).split(args.minibatch_size):
                loss = loss_module(data[idx])
                total = loss["loss_objective"] + loss["loss_critic"] + loss["loss_entropy"]
                optim.zero_grad(set_to_none=True)
                total.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(loss_module.parameters(), args.grad_clip)
                optim.step()
                updates += 1
        run.log({"train/loss_objective": loss["loss_objective"], "train/loss_critic": loss["loss_critic"],
                 "train/entropy": loss["entropy"], "train/grad_norm": grad_norm}, frames)
        bar.set_postfix(upd=updates, refresh=False)
        collector.update_policy_weights_()
        run.maybe_evaluate(actor, frames, updates, checkpoint)
    bar.close()
    collector.shutdown()
    return run.finish(actor, frames=frames, updates=updates, checkpoint=checkpoint)


if __name__ == "__main__":
    sys.exit(cli(main, "ppo"))
