"""FastTD3-style multitask TD3 on the masked MMBench env stack: ``python examples/baselines/td3.py --tasks ...``.

TorchRL's :class:`~torchrl.objectives.TD3Loss` (clipped double Q, target policy smoothing, delayed
actor updates, :class:`~torchrl.objectives.SoftUpdate` targets) in the spirit of FastTD3: many
parallel lanes per task (``--lanes-per-task``), large batches, several updates per vectorized env
step (``--utd``), task-conditioned actor and critics (padded observation + the task's frozen CLIP
instruction embedding, projected), a TorchRL replay buffer:

    make_env x lanes -> Collector(actor + Gaussian noise + mask) -> ReplayBuffer -> TD3Loss -> Adam x 2

Action masks: the actor outputs ``tanh(.) * action_mask`` and the exploration noise is masked
again, so the dims a task does not have are exactly zero in what the env receives and in replay;
the critics multiply their action input by the mask, so the smoothing noise TD3Loss adds to the
target action on those dims has no effect.

Writes ``OUTPUT_DIR/final_scores.json`` and ``OUTPUT_DIR/checkpoint.pt`` and prints the score table
(with uniform random actions as reference), like the main job.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torchrl.collectors import Collector
from torchrl.data import LazyTensorStorage, TensorDictReplayBuffer
from torchrl.envs.utils import ExplorationType
from torchrl.objectives import SoftUpdate, TD3Loss

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing
from torchrl_newt.baselines import (BaselineRun, build_parser, cli, make_td3_modules, make_train_env, positive,
                                    task_table)


def parse_args(argv=None):
    p = build_parser("td3", __doc__.split("\n\n")[0], frames=200_000)
    g = p.add_argument_group("TD3 (FastTD3-style)")
    g.add_argument("--lanes-per-task", type=positive(), default=4, help="parallel env copies of every task")
    g.add_argument("--steps-per-batch", type=positive(), default=1, help="vectorized env steps per collected batch")
    g.add_argument("--utd", type=positive(float), default=2.0,
                   help="gradient updates per vectorized env step (all lanes step once), FastTD3's num_updates")
    g.add_argument("--batch-size", type=positive(), default=4096, help="FastTD3 uses 32768 on a GPU")
    g.add_argument("--buffer-size", type=positive(), default=1_000_000)
    g.add_argument("--learning-starts", type=int, default=1_000, help="frames collected before the first update")
    g.add_argument("--critic-cells", type=lambda s: tuple(int(c) for c in s.split(",")), default=None,
                   help="hidden sizes of the critics (default: --num-cells)")
    g.add_argument("--actor-lr", type=positive(float), default=3e-4)
    g.add_argument("--critic-lr", type=positive(float), default=3e-4)
    g.add_argument("--gamma", type=float, default=0.99)
    g.add_argument("--tau", type=positive(float), default=0.1, help="soft target update rate (FastTD3: 0.1)")
    g.add_argument("--exploration-noise", type=float, default=0.1, help="std of the Gaussian exploration noise")
    g.add_argument("--policy-noise", type=float, default=0.2, help="target policy smoothing noise")
    g.add_argument("--noise-clip", type=float, default=0.5)
    g.add_argument("--policy-delay", type=positive(), default=2, help="critic updates per actor update")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    """Train TD3 and return ``{"results": final scores per task, "random": ..., "state": counters}``."""
    args = parse_args(argv)
    run = BaselineRun.start("td3", args)
    tasks, device = run.tasks, run.device

    # ---------------------------------------------------------------- modules, loss, optimisers
    actor, qvalue, explore = make_td3_modules(
        len(tasks), table=task_table(tasks, args.no_language), num_cells=args.num_cells,
        critic_cells=args.critic_cells, task_dim=args.task_dim, noise_std=args.exploration_noise, device=device)
    loss_module = TD3Loss(actor, qvalue, bounds=(-1.0, 1.0), num_qvalue_nets=2, policy_noise=args.policy_noise,
                          noise_clip=args.noise_clip, loss_function="l2").to(device)
    loss_module.make_value_estimator(gamma=args.gamma)
    target_updater = SoftUpdate(loss_module, tau=args.tau)
    actor_optim = torch.optim.Adam(loss_module.actor_network_params.values(True, True), lr=args.actor_lr)
    critic_optim = torch.optim.Adam(loss_module.qvalue_network_params.values(True, True), lr=args.critic_lr)

    # ---------------------------------------------------------------- envs, collector, replay
    env = make_train_env(tasks, seed=args.seed, lanes_per_task=args.lanes_per_task, parallel=args.parallel_envs)
    lanes = args.lanes_per_task * len(tasks)
    frames_per_batch = lanes * args.steps_per_batch
    collector = Collector(
        env, explore, frames_per_batch=frames_per_batch,
        total_frames=-(-args.frames // frames_per_batch) * frames_per_batch,
        policy_device=device, storing_device=device, exploration_type=ExplorationType.RANDOM,
        auto_register_policy_transforms=False, trust_policy=True,
    )
    replay = TensorDictReplayBuffer(storage=LazyTensorStorage(args.buffer_size, device=device),
                                    batch_size=args.batch_size)

    # ---------------------------------------------------------------- training
    frames = updates = 0
    credit = 0.0  # fractional updates carried over (--utd below 1)
    # the loss module holds the actor, the critics and their target copies
    checkpoint = {"loss_module": loss_module, "actor_optimizer": actor_optim, "critic_optimizer": critic_optim}
    bar = run.bar(args.frames)
    for batch in collector:
        replay.extend(batch.reshape(-1))
        frames += batch.numel()
        bar.update(batch.numel())
        run.log_episodes(batch, frames)
        if frames < args.learning_starts:
            continue
        credit += args.utd * args.steps_per_batch
        while credit >= 1:
            credit -= 1
            sample = replay.sample()
            critic_loss, _ = loss_module.value_loss(sample)
            critic_optim.zero_grad(set_to_none=True)
            critic_loss.backward()
            critic_optim.step()
            updates += 1
            if updates % args.policy_delay == 0:
                actor_loss, _ = loss_module.actor_loss(sample)
                actor_optim.zero_grad(set_to_none=True)
                actor_loss.backward()
                actor_optim.step()
                run.log({"train/loss_actor": actor_loss}, frames)
            target_updater.step()
            if credit < 1:
                run.log({"train/loss_qvalue": critic_loss, "train/buffer": len(replay)}, frames)
        bar.set_postfix(upd=updates, refresh=False)
        collector.update_policy_weights_()
        run.maybe_evaluate(actor, frames, updates, checkpoint)
    bar.close()
    collector.shutdown()
    return run.finish(actor, frames=frames, updates=updates, checkpoint=checkpoint,
                      lanes_per_task=args.lanes_per_task)


if __name__ == "__main__":
    sys.exit(cli(main, "td3"))
