"""Train a Newt (massively multitask TD-MPC2) agent on MMBench tasks with TorchRL components.

With no arguments this runs the embedded default: a soup of four tasks with 1, 2, 2 and 6 action
dimensions (cartpole-swingup, reacher-easy, mujoco-reacher, walker-stand), model size S, 8,000 env
steps, sized to finish within about 15 minutes on a 2-core CPU (or faster on a GPU, which is used
automatically when present). It ends by printing a per-task and per-domain score table beside the
scores of uniform random actions, and where it wrote metrics, the learning-curve plot, the
checkpoint and ``final_scores.json``.

    python examples/newt_mmbench.py                       # embedded CPU default
    python examples/newt_mmbench.py --tasks mmbench --size L --frames 100_000_000 --device cuda
    python examples/newt_mmbench.py --demos demos/ --pretrain-updates 200000  # BC pretraining first
    python examples/newt_mmbench.py --finetune newt-L.pt --size L --tasks walker-run-backwards  # held-out task
    python examples/newt_mmbench.py --resume              # continue from OUTPUT_DIR/checkpoint.pt
    torchrun --standalone --nproc-per-node 8 examples/newt_mmbench.py --tasks mmbench   # data-parallel

The training program is the package's :mod:`torchrl_newt.train` (``python -m torchrl_newt.train``
runs the same thing; the Slurm launchers call it too). Its :func:`~torchrl_newt.train.main` is a
composition of library pieces in the style of TorchRL's sota-implementations, readable top to
bottom:

1. ``make_env(tasks)``: the masked multitask stack (padded observations/actions, action masks,
   task ids, per-task truncation and scores), plus the planner's primer;
2. ``Collector(env, TDMPC2Planner)``: random seeding episodes, then MPPI planning;
3. ``MultitaskReplayBuffer`` (``MixedReplayBuffer`` with demonstrations);
4. ``NewtTrainer`` (:mod:`torchrl_newt.trainer`): ``TDMPC2WorldModelLoss`` + ``TDMPC2ActorLoss``,
   Newt's two Adams, clipping, ``SoftUpdate``, update-to-data credit, priorities, the
   constrained-planning schedule and the pretraining warm-up;
5. evaluation (``torchrl_newt.evaluate``), logging and atomic checkpoints.

To train your own way, compose the same pieces in your script; the update step alone is::

    trainer = NewtTrainer(agent.world_model, agent.wm_loss, agent.actor_loss, planner=agent.planner, utd=0.075)
    for batch in collector:
        replay.extend(batch)
        frames += batch.numel()
        metrics = trainer.step(replay, frames)   # the updates these env steps pay for

See docs/training.md for resuming (exact with ``--save-replay``) and finetuning.
"""

from __future__ import annotations

import sys

from torchrl_newt.train import Agent, build_parser, main, resolve_planner_args, resolve_tasks  # noqa: F401


if __name__ == "__main__":
    from torchrl_newt.train import cli

    sys.exit(cli(sys.argv[1:]))
