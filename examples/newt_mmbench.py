"""Train a Newt (massively multitask TD-MPC2) agent on MMBench tasks with TorchRL components.

With no arguments this runs the embedded default: a soup of four tasks with 1, 2, 2 and 6 action
dimensions (cartpole-swingup, reacher-easy, mujoco-reacher, walker-stand), model size S, 8,000 env
steps, sized to finish in about 12 minutes on a 2-core CPU (or faster on a GPU, which is used
automatically when present). It ends by printing a per-task and per-domain score table beside the
scores of uniform random actions, and where it wrote metrics, the learning-curve plot, the
checkpoint and ``final_scores.json``.

    python examples/newt_mmbench.py                       # embedded CPU default
    python examples/newt_mmbench.py --tasks mmbench --size L --frames 100_000_000 --device cuda
    python examples/newt_mmbench.py --demos demos/ --pretrain-updates 200000  # BC pretraining first
    python examples/newt_mmbench.py --finetune newt-L.pt --size L --tasks walker-run-backwards  # held-out task
    python examples/newt_mmbench.py --resume              # continue from OUTPUT_DIR/checkpoint.pt
    torchrun --standalone --nproc-per-node 8 examples/newt_mmbench.py --tasks mmbench   # data-parallel

The script composes library pieces top to bottom, like TorchRL's sota-implementations:

1. ``make_env(tasks)``: the masked multitask stack (padded observations/actions, action masks,
   task ids, per-task truncation and scores), plus the planner's primer;
2. the world model, ``TDMPC2WorldModelLoss``, ``TDMPC2ActorLoss`` and the ``TDMPC2Planner``;
3. ``MultitaskReplayBuffer`` (``MixedReplayBuffer`` with demonstrations);
4. ``NewtTrainer``: Newt's two Adams, clipping, ``SoftUpdate``, update-to-data credit, priorities,
   the constrained-planning schedule and the pretraining warm-up;
5. ``Collector(env, planner)``: random seeding episodes, then MPPI planning;
6. the loop: collect, extend, update, evaluate, checkpoint; then the final table.

What it needs besides the library's components (the command line, checkpoints that resume
exactly, evaluation records, the final report) is in :mod:`torchrl_newt.recipe`. The package ships
this very file as :mod:`torchrl_newt.train` (a link in the source tree), the entry point of
``python -m torchrl_newt.train`` and of the Slurm launchers: they run exactly this program. See
docs/training.md for resuming (exact with ``--save-replay``) and finetuning.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchrl.collectors import Collector  # noqa: E402
from torchrl.envs.utils import ExplorationType  # noqa: E402
from tqdm import tqdm  # noqa: E402

from torchrl_newt.checkpoint import CheckpointError, latest_checkpoint  # noqa: E402
from torchrl_newt.data import MixedReplayBuffer, MultitaskReplayBuffer, add_demos, load_demos  # noqa: E402
from torchrl_newt.envs import MissingDependencyError, TaskSet  # noqa: E402
from torchrl_newt.launch import all_reduce_grads, broadcast_module, split_batch_size  # noqa: E402
from torchrl_newt.modules import NewtWorldModel, TDMPC2Planner  # noqa: E402
from torchrl_newt.modules.pretrained import ModelUnavailable  # noqa: E402
from torchrl_newt.objectives import TDMPC2ActorLoss, TDMPC2WorldModelLoss  # noqa: E402
from torchrl_newt.recipe import (  # noqa: E402
    STEPS_PER_BATCH,
    Agent,
    RunCheckpointer,
    build_env,
    evaluate_and_record,
    expand_demo_paths,
    final_report,
    load_start_checkpoint,
    load_vision_backbone,
    log_metrics,
    log_train_scores,
    make_logger,
    parse_args,
    pretrain,
    random_baseline,
    resolve_tasks,
    segment_seed,
    start_run,
    task_table,
)
from torchrl_newt.trainer import NewtTrainer  # noqa: E402

log = logging.getLogger("newt")


def main(argv: list[str] | None = None) -> dict:
    """Train (or resume) and return ``{"results": final score table, "state": counters + history}``."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tasks = resolve_tasks(args.tasks)
    run = start_run(args)  # threads, torch.distributed, device, output folder, seeds
    ctx, device = run.ctx, run.device
    log.info("%d tasks on %s: %s", len(tasks), device, ", ".join(tasks[:8]) + (" ..." if len(tasks) > 8 else ""))

    # ----------------------------------------------------------- model, losses, planner
    backbone = load_vision_backbone(args, device)  # --obs rgb: a frozen DINOv2 (a clear error without weights)
    feature_dim = backbone.config.hidden_size if backbone is not None else 0
    start = args.finetune or args.init_from
    loaded, obs_pad, action_pad = (load_start_checkpoint(start, args, tasks, device, feature_dim) if start
                                   else (None, 128, 16))
    taskset = TaskSet.resolve(tasks, obs_pad, action_pad)  # checked once; every piece below takes it
    table = task_table(args, tasks, device)  # frozen CLIP instruction embeddings, or None (learnable)
    log.info("task conditioning: %s", "frozen CLIP text embeddings" if table is not None else "learnable embeddings")
    world_model = NewtWorldModel(obs_pad + feature_dim, action_pad, size=args.size, task_embeddings=table,
                                 num_tasks=None if table is not None else len(tasks))
    wm_loss = TDMPC2WorldModelLoss(world_model, discount=taskset.discount, entropy_coef=args.entropy_coef)
    actor_loss = TDMPC2ActorLoss(world_model, entropy_coef=args.entropy_coef, bc_coef=args.pi_bc_coef)
    planner = TDMPC2Planner(
        world_model, horizon=args.horizon, iterations=args.plan_iterations, num_samples=args.plan_samples,
        num_elites=args.plan_elites, num_pi_trajs=args.plan_pi_trajs, discount=taskset.discount,
        env_chunk_size=4 if device.type == "cpu" else None,  # cache-friendly chunks on CPU
    )
    agent = Agent(world_model, wm_loss, actor_loss, planner).to(device)
    log.info("world model size %s: %s learnable parameters", args.size,
             f"{sum(p.numel() for p in world_model.parameters() if p.requires_grad):,}")

    # ----------------------------------------------------------- replay (and demonstrations)
    batch_size = split_batch_size(args.batch_size, ctx.rank, ctx.world_size)
    demos = load_demos(expand_demo_paths(args.demos), taskset, features=feature_dim or None) if args.demos else None
    online = MultitaskReplayBuffer(args.replay_capacity, slice_len=args.horizon, mode=args.sampling, device=device,
                                   batch_size=batch_size)
    replay, demo_buffer = online, None
    if demos is not None:  # half of every batch from the demos
        demo_buffer = MultitaskReplayBuffer(max(len(demos) * 1001, 1000), slice_len=args.horizon, device=device)
        add_demos(demo_buffer, demos)
        replay = MixedReplayBuffer(online, demo_buffer, demo_fraction=0.5, batch_size=batch_size)
        log.info("loaded %d demonstration episodes", len(demos))

    # ----------------------------------------------------------- trainer
    # random seeding episodes, unless demos or finetuning (Newt plans from the first step then)
    seed_frames = 0 if demos is not None or args.finetune else (
        args.seed_episodes * taskset.max_episode_length * len(tasks))
    trainer = NewtTrainer(
        world_model, wm_loss, actor_loss, planner=planner, lr=args.lr, enc_lr_scale=args.enc_lr_scale,
        grad_clip=args.grad_clip, tau=args.tau, utd=args.utd, seed_burst=demos is None, start_frames=seed_frames,
        constrained=args.constrained_planning == "on" or (args.constrained_planning == "auto" and demos is not None),
        constraint_start=args.constraint_start, constraint_final=args.constraint_final,
        warmup_updates=args.warmup_updates,
        grad_sync=functools.partial(all_reduce_grads, weight=batch_size / args.batch_size) if ctx.initialized else None,
    )
    log.info("constrained planning: %s", "on" if trainer.constrained else "off")

    # ----------------------------------------------------------- start: resume, or initial weights
    state: dict = {"frames": 0, "history": [], "last_eval": 0, "last_scores": {}}
    checkpoints = RunCheckpointer(run.checkpoint_path, agent=agent, trainer=trainer, replay=online, state=state,
                                  args=args, tasks=tasks, ctx=ctx, episode_lengths=taskset.episode_length.tolist())
    resume = (latest_checkpoint(run.out_dir) if args.resume == "auto" else Path(args.resume)) if args.resume else None
    if args.resume and resume is None:
        log.warning("--resume: no checkpoint in %s, starting fresh", run.out_dir)
    if resume is not None:
        checkpoints.restore(resume, device)
    else:
        if loaded is not None:  # each task keeps its own instruction row (held-out ones too)
            from torchrl_newt.interop import transfer_weights

            transfer_weights(loaded, world_model, tasks, wm_loss=wm_loss, actor_loss=actor_loss)
            log.info("initialised from %s (%s format)%s", start, loaded.format,
                     " for finetuning" if args.finetune else "")
        if ctx.initialized:  # same initial weights everywhere, then rank-specific randomness
            broadcast_module(agent)
            torch.manual_seed(args.seed + ctx.rank)
            np.random.seed(args.seed + ctx.rank)
    trainer.schedule(state["frames"])

    # ----------------------------------------------------------- envs and collector
    # a resumed run continues with fresh env seeds for its segment (never initial states already used)
    env_kw = {"features": backbone, "obs_pad": obs_pad, "action_pad": action_pad}
    env = build_env(taskset, ctx, segment_seed(args.seed, state["frames"], ctx.rank), args.parallel_envs, **env_kw)
    env.append_transform(planner.make_primer())  # the planner's warm-start mean travels in the tensordict
    eval_env = build_env(taskset, ctx, args.seed + 10_000, args.parallel_envs, **env_kw)
    eval_env.append_transform(planner.make_primer())
    local_tasks, n = env.task_names, len(env.task_names)
    if args.compile:
        planner.compile_plan(mode="reduce-overhead" if (args.cudagraphs and device.type == "cuda") else None)
    if args.compile and device.type == "cuda":  # on CPU the compiled update is slower than eager
        trainer.compile(mode="reduce-overhead" if args.cudagraphs else None)
    global_fpb = len(tasks) * STEPS_PER_BATCH  # frames count the env steps of all ranks
    collector = Collector(
        env, planner, frames_per_batch=n * STEPS_PER_BATCH,
        total_frames=-(-args.frames // global_fpb) * n * STEPS_PER_BATCH,
        init_random_frames=-(-seed_frames // global_fpb) * n * STEPS_PER_BATCH,
        policy_device=device, storing_device=device, exploration_type=ExplorationType.RANDOM,
        auto_register_policy_transforms=False, trust_policy=True,
    )
    checkpoints.attach(collector, env, global_fpb, n * STEPS_PER_BATCH)  # a resumed run continues counters, RNG
    logger = make_logger(args, run.out_dir, state["frames"], trainer.pretrain_updates) if ctx.is_main else None
    evaluation = functools.partial(
        evaluate_and_record, eval_env, planner, state, tasks=tasks, local_tasks=local_tasks,
        episodes=args.eval_episodes, seed=args.seed, rank=ctx.rank, logger=logger,
        plot=run.out_dir / "learning_curve.png" if ctx.is_main else None)

    # ----------------------------------------------------------- pretraining on demos
    if demo_buffer is not None and trainer.pretrain_updates < args.pretrain_updates:
        pretrain(trainer, demo_buffer, args.pretrain_updates, batch_size, logger, quiet=args.quiet)
        checkpoints.save()

    # ----------------------------------------------------------- online training
    bar = tqdm(total=args.frames, initial=state["frames"], desc="train", unit="step", disable=args.quiet,
               mininterval=1.0 if sys.stderr.isatty() else 30.0)
    t0 = time.time()
    for batch in collector if state["frames"] < args.frames else []:
        batch["action"] = batch["action"] * batch["action_mask"]  # masked dims exactly zero in replay
        online.extend(batch)
        state["frames"] += global_fpb
        bar.update(global_fpb)
        log_train_scores(batch, state, tasks, logger)

        metrics = trainer.step(replay, state["frames"], batch_size=batch_size)  # the updates these steps pay for
        if metrics is not None and trainer.updates % 20 < 2:
            log_metrics(logger, {f"train/{k}": v for k, v in metrics.items()}, state["frames"])
            bar.set_postfix(upd=trainer.updates, cons=f"{float(metrics['loss_consistency']):.3f}",
                            val=f"{float(metrics['loss_value']):.3f}", refresh=False)

        last = state["frames"] >= args.frames
        if state["frames"] - state["last_eval"] >= args.eval_every or last:
            entry = evaluation(elapsed_s=time.time() - t0)
            log.info("eval at %d frames (%d updates): mean score %.3f", state["frames"], trainer.updates,
                     entry["mean_score"])
            if len(state["history"]) % args.checkpoint_every == 0:
                checkpoints.request()
            collector.update_policy_weights_()
        checkpoints.after_batch(batch, last)
        if last:
            break
    bar.close()
    collector.shutdown()

    # ----------------------------------------------------------- final evaluation and report
    if not state["history"]:  # a resumed run that was already complete
        evaluation()
    random_results = random_baseline(eval_env, state, tasks=tasks, local_tasks=local_tasks,
                                     episodes=args.random_episodes, seed=args.seed, rank=ctx.rank)
    if random_results is not None:
        state["random"] = random_results
    if state.get("checkpoint_frames") != state["frames"]:
        checkpoints.save()
    eval_env.close()  # the collector closed the training env
    state.update(updates=trainer.updates, pretrain_updates=trainer.pretrain_updates)
    run.close()
    if ctx.is_main:
        final_report(run.out_dir, state, random_results, updates=trainer.updates, wall_s=time.time() - t0,
                     device=device, args=args)
    return {"results": state["history"][-1]["results"], "state": state}


def cli(argv: list[str] | None = None) -> int:
    """Console entry: :func:`main` with task-list and checkpoint problems as one-line errors."""
    try:
        main(sys.argv[1:] if argv is None else argv)
    except (CheckpointError, ValueError, KeyError, FileNotFoundError, ModelUnavailable, MissingDependencyError) as err:
        print(f"newt-train: error: {err.args[0] if isinstance(err, KeyError) and err.args else err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
