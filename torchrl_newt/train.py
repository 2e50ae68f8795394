"""Train a Newt (massively multitask TD-MPC2) agent on MMBench tasks: ``python -m torchrl_newt.train``.

The program behind ``examples/newt_mmbench.py`` and the Slurm launchers (``torchrl_newt.launch``):
:func:`main` composes the library pieces the TorchRL way, top to bottom:

    make_env (masked multitask stack) -> Collector(policy=TDMPC2Planner) -> MultitaskReplayBuffer
    -> NewtTrainer (TDMPC2WorldModelLoss + TDMPC2ActorLoss, Adam, clipping, SoftUpdate, schedules)

and evaluates, logs and checkpoints around them. Under ``torchrun`` or a multi-task Slurm job it
trains data-parallel: each rank steps its round-robin share of the tasks and samples its share of
the batch, gradients are all-reduced, evaluation results gathered, and rank 0 logs and checkpoints.

Resuming (``--resume``) continues the run from its checkpoint: the environments restart with
fresh seeds derived from ``--seed`` and the checkpoint's step (never replaying initial states
already used), the CSV logs are cut back to the checkpoint so no step appears twice, and with
``--save-replay`` a run resumed from a checkpoint taken with every lane at an episode boundary
reproduces the uninterrupted run exactly on CPU (docs/training.md).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np
import torch
from torchrl.collectors import Collector
from torchrl.envs.utils import ExplorationType
from torchrl.record.loggers import get_logger
from tqdm import tqdm

from torchrl_newt.checkpoint import (
    CheckpointError,
    atomic_save,
    compact_replay_state,
    expand_replay_state,
    latest_checkpoint,
    load_checkpoint,
    remove_stale_temp_files,
    rng_state,
    set_rng_state,
)
from torchrl_newt.data import MixedReplayBuffer, MultitaskReplayBuffer, add_demos, load_demos
from torchrl_newt.envs import MissingDependencyError, TaskSet, get_task, make_env
from torchrl_newt.evaluate import (
    domain_scores,
    evaluate,
    format_table,
    learning_summary,
    mmbench_score,
    resolve_device,
    resolve_tasks,
    write_final_scores,
)
from torchrl_newt.launch import (
    DistributedContext,
    all_reduce_grads,
    broadcast_module,
    cleanup,
    gather_objects,
    gather_results,
    init_distributed,
    is_distributed,
    make_shard_env,
    read_launch_env,
    split_batch_size,
)
from torchrl_newt.modules import MODEL_SIZES, NewtWorldModel, TDMPC2Planner
from torchrl_newt.modules.pretrained import ModelUnavailable
from torchrl_newt.objectives import TDMPC2ActorLoss, TDMPC2WorldModelLoss
from torchrl_newt.trainer import NewtTrainer

__all__ = ["Agent", "DEFAULT_TASKS", "build_parser", "main", "parse_args", "resolve_tasks"]

log = logging.getLogger("newt")

#: The embedded default soup: DMControl tasks with 1, 2, 2 and 6 action dimensions.
DEFAULT_TASKS = ("cartpole-swingup", "reacher-easy", "mujoco-reacher", "walker-stand")
#: env steps per lane in each collector batch
STEPS_PER_BATCH = 10
#: planner settings (iterations, samples, elites, prior trajectories) when not given on the command line
PLANNER_DEFAULTS = {"cuda": (6, 512, 64, 24), "cpu": (3, 96, 12, 6)}
CHECKPOINT = "checkpoint.pt"


# ---------------------------------------------------------------------------------------- config
def _positive(kind=int):
    def parse(text: str):
        value = kind(text.replace("_", ""))
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    parse.__name__ = f"positive {kind.__name__}"
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The command line of :func:`main` (``python -m torchrl_newt.train --help``)."""
    p = argparse.ArgumentParser(prog="newt-train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("tasks and run")
    g.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                   help="comma-separated task names (held-out tasks too), 'mmbench' (all 200), or 'domain:NAME'")
    g.add_argument("--frames", type=_positive(), default=8_000, help="total env steps (all lanes together)")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--device", default="auto", help="training device: auto, cpu, cuda, cuda:1...")
    g.add_argument("--parallel-envs", action="store_true", help="step lanes in worker processes")
    g.add_argument("--distributed", default="auto", choices=["auto", "off"],
                   help="auto: data-parallel when launched with several processes (torchrun, Slurm/submitit)")
    g.add_argument("--output-dir", default="runs/newt", help="metrics, plot and checkpoints go here")
    g.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="resume from a checkpoint file, or from OUTPUT_DIR/checkpoint.pt when given alone")
    g = p.add_argument_group("model")
    g.add_argument("--size", default="S", choices=list(MODEL_SIZES))
    g.add_argument("--obs", default="state", choices=["state", "rgb"],
                   help="rgb: every lane also renders 224x224 frames, a frozen DINOv2 encodes them and the world "
                        "model sees the state together with the 768-d image features (as Newt does)")
    g.add_argument("--vision-model", default=None, metavar="PATH_OR_ID",
                   help="DINOv2 weights for --obs rgb: a local folder or a Hugging Face id already in the cache "
                        "(default: $TORCHRL_NEWT_DINOV2_PATH, else facebook/dinov2-base; never downloaded)")
    g.add_argument("--init-from", default=None, metavar="CKPT",
                   help="start from the weights of a checkpoint: Newt's official format or ours (size must match)")
    g.add_argument("--finetune", default=None, metavar="CKPT",
                   help="Newt's finetuning: the pretrained weights of CKPT (Newt's or ours) on the given tasks, "
                        "held-out ones included; planning from the first step (no random seeding episodes)")
    g.add_argument("--task-embeddings", default=None,
                   help="precomputed task-text table (python -m torchrl_newt.embed); default: Newt's shipped CLIP "
                        "vectors / CLIP from a local path or HF cache, else learnable task embeddings")
    g.add_argument("--clip-model", default="openai/clip-vit-base-patch32",
                   help="CLIP text model id or local path used when no table file is given")
    g.add_argument("--no-language", action="store_true", help="always use learnable task embeddings")
    g = p.add_argument_group("optimisation")
    g.add_argument("--batch-size", type=_positive(), default=256, help="Newt uses 1024")
    g.add_argument("--horizon", type=_positive(), default=3)
    g.add_argument("--lr", type=_positive(float), default=3e-4)
    g.add_argument("--enc-lr-scale", type=float, default=0.3)
    g.add_argument("--grad-clip", type=_positive(float), default=20.0)
    g.add_argument("--tau", type=float, default=0.01)
    g.add_argument("--utd", type=float, default=0.15, help="updates per env step (Newt: 0.075)")
    g.add_argument("--seed-episodes", type=int, default=1, help="random-action episodes per task (Newt: 5)")
    g.add_argument("--replay-capacity", type=_positive(), default=1_000_000)
    g.add_argument("--sampling", default="uniform", choices=["uniform", "balanced", "prioritized"])
    g.add_argument("--entropy-coef", type=float, default=1e-4)
    g.add_argument("--pi-bc-coef", type=float, default=1.0,
                   help="weight of the policy prior's BC term on replay actions (Newt: 1; 0 gives TD-MPC2's prior)")
    g = p.add_argument_group("planner (defaults: Newt's 6 x 512 / 64 elites / 24 prior trajectories on GPU; "
                             "a lighter 3 x 96 / 12 / 6 on CPU so the embedded default fits in ~15 min)")
    g.add_argument("--plan-iterations", type=_positive(), default=None)
    g.add_argument("--plan-samples", type=_positive(), default=None)
    g.add_argument("--plan-elites", type=_positive(), default=None)
    g.add_argument("--plan-pi-trajs", type=int, default=None)
    g.add_argument("--constrained-planning", default="auto", choices=["auto", "on", "off"],
                   help="start MPPI from the policy prior's statistics (Newt's constrained planning); "
                        "auto: on after demo pretraining, off without demos (benchmarks/results/constrained_planning_cpu.md)")
    g.add_argument("--constraint-start", type=int, default=2_000_000,
                   help="constrained planning: weight 1 until this many frames (Newt's constraint_start_step)")
    g.add_argument("--constraint-final", type=int, default=10_000_000,
                   help="constrained planning: then 1 - (frames - start) / this, floored at 0 (constraint_final_step)")
    g = p.add_argument_group("demonstrations")
    g.add_argument("--demos", nargs="*", default=None, help="demo files or folders (see torchrl_newt.data.demos)")
    g.add_argument("--pretrain-updates", type=int, default=0, help="BC + world-model updates on demos before RL")
    g.add_argument("--warmup-updates", type=int, default=5_000, help="linear LR warm-up of pretraining")
    g = p.add_argument_group("evaluation, logging, checkpoints")
    g.add_argument("--eval-every", type=_positive(), default=2_000, help="frames between evaluations")
    g.add_argument("--eval-episodes", type=_positive(), default=2, help="deterministic episodes per task")
    g.add_argument("--random-episodes", type=int, default=5,
                   help="episodes per task of uniform random actions, on the final evaluation's seeds, for the "
                        "table's 'random' column (0: no random column)")
    g.add_argument("--checkpoint-every", type=_positive(), default=1, help="evaluations between checkpoints")
    g.add_argument("--save-replay", action="store_true",
                   help="also checkpoint the replay buffer (needed for an exact resume)")
    g.add_argument("--logger", default="csv", choices=["csv", "wandb", "tensorboard", "none"])
    g.add_argument("--wandb-mode", default="offline", choices=["offline", "online", "disabled"])
    g.add_argument("--exp-name", default="newt")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the planner, and on CUDA the update (eager updates are faster on CPU)")
    g.add_argument("--cudagraphs", action="store_true", help="with --compile on CUDA: mode='reduce-overhead'")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line (one clear error per bad flag).

    Examples:
        >>> parse_args(["--frames", "100", "--tasks", "walker-walk"]).frames
        100
        >>> try:
        ...     parse_args(["--init-from", "a.pt", "--finetune", "b.pt"])
        ... except SystemExit as err:
        ...     err.code
        2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.init_from and args.finetune:
        parser.error("--init-from and --finetune both give the starting weights: use one")
    if args.seed_episodes < 0 or args.pretrain_updates < 0 or args.warmup_updates < 0:
        parser.error("--seed-episodes, --pretrain-updates and --warmup-updates cannot be negative")
    if args.pretrain_updates and not args.demos:
        parser.error("--pretrain-updates needs --demos")
    return args


def resolve_planner_args(args, device: torch.device) -> None:
    """Fill unset planner options with the device's defaults (Newt's on GPU, lighter on CPU)."""
    defaults = PLANNER_DEFAULTS["cuda" if device.type == "cuda" else "cpu"]
    for name, value in zip(("plan_iterations", "plan_samples", "plan_elites", "plan_pi_trajs"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)


def task_table(args, tasks: list[str], device: torch.device) -> torch.Tensor | None:
    """Frozen CLIP task embeddings if available (file or local weights), else None (learnable)."""
    if args.no_language:
        return None
    from torchrl_newt.modules import language

    if args.task_embeddings:
        return language.load_task_table(args.task_embeddings, tasks)
    return language.task_embeddings_or_none(tasks, args.clip_model, device=device)


def segment_seed(seed: int, frames: int, rank: int = 0, purpose: int = 0) -> int:
    """The env seed of a run segment starting at ``frames`` (0: ``seed`` itself, as ever).

    Later segments (after a resume, or a reset at an episode-aligned checkpoint) and every
    evaluation (``purpose=1``) get seeds hashed from ``(seed, frames, rank)``: deterministic, and
    fresh, so no segment replays initial states an earlier one used.

    Examples:
        >>> segment_seed(1, 0), segment_seed(1, 400) == segment_seed(1, 400) != segment_seed(1, 800)
        (1, True)
    """
    if frames == 0 and purpose == 0:
        return seed + 100_000 * rank
    return int(np.random.SeedSequence([seed, purpose, frames, rank]).generate_state(1)[0] & 0x7FFFFFFF)


# ---------------------------------------------------------------------------------------- agent
class Agent(torch.nn.Module):
    """Everything with parameters or persistent state, for checkpointing (the trainer holds the
    optimisers)."""

    def __init__(self, args, tasks: TaskSet, device: torch.device, table: torch.Tensor | None,
                 feature_dim: int = 0) -> None:
        super().__init__()
        self.world_model = NewtWorldModel(  # padded state, then the image features with --obs rgb
            tasks.obs_pad + feature_dim, tasks.action_pad, size=args.size, task_embeddings=table,
            num_tasks=None if table is not None else len(tasks),
        )
        discount = tasks.discount
        self.wm_loss = TDMPC2WorldModelLoss(self.world_model, discount=discount,
                                            entropy_coef=args.entropy_coef)
        self.actor_loss = TDMPC2ActorLoss(self.world_model, entropy_coef=args.entropy_coef, bc_coef=args.pi_bc_coef)
        self.planner = TDMPC2Planner(
            self.world_model, horizon=args.horizon, iterations=args.plan_iterations, num_samples=args.plan_samples,
            num_elites=args.plan_elites, num_pi_trajs=args.plan_pi_trajs, discount=discount,
            env_chunk_size=4 if device.type == "cpu" else None,  # cache-friendly chunks on CPU
        )
        self.to(device)


def load_start_checkpoint(path: str, args, tasks: list[str], device: torch.device, feature_dim: int = 0):
    """``--init-from``/``--finetune``: the pretrained model (Newt's format or ours) and its
    (state observation, action) padding, checked against ``tasks`` and ``--size``. With image
    features (``feature_dim``), the model's observation is the padded state followed by them."""
    from torchrl_newt.interop import load_world_model

    loaded = load_world_model(path, size=args.size, map_location=device)
    arch = loaded.architecture
    obs_pad, action_pad = (arch.obs_dim - feature_dim, arch.action_dim) if arch is not None else (128, 16)
    if obs_pad <= 0:
        raise CheckpointError(f"{path} takes {arch.obs_dim}-d observations, fewer than the {feature_dim} image "
                              "features of --obs rgb: it was not trained on images")
    for name in tasks:
        spec = get_task(name)
        if (spec.obs_dim or 0) > obs_pad or spec.action_dim > action_pad:
            raise CheckpointError(
                f"{path} pads observations to {obs_pad} and actions to {action_pad} dims: task {name} "
                f"({spec.obs_dim} observation, {spec.action_dim} action dims) does not fit"
            )
    return loaded, obs_pad, action_pad


def load_resume_checkpoint(path: Path, tasks: list[str], args, device: torch.device) -> dict:
    """Read and check a checkpoint of this program for ``--resume``."""
    ckpt = load_checkpoint(path, map_location=device, required=("agent", "state", "tasks"))
    if ckpt["tasks"] != tasks:
        raise CheckpointError(f"checkpoint {path} was trained on other tasks: {ckpt['tasks']}")
    size = (ckpt.get("args") or {}).get("size")
    if size is not None and size != args.size:
        raise CheckpointError(f"checkpoint {path} holds a size-{size} model; this run uses --size {args.size}")
    if "trainer" not in ckpt:  # the first checkpoint layout: optimisers at the top level
        ckpt["trainer"] = {"model_optim": ckpt["model_optim"], "pi_optim": ckpt["pi_optim"], **ckpt["state"]}
    return ckpt


# ---------------------------------------------------------------------------------------- logging
def trim_csv_logs(folder: Path, frames: int, pretrain_updates: int) -> None:
    """Drop the CSV rows logged after the state a run (re)starts from, so no step is logged twice."""
    for csv in folder.glob("scalars/**/*.csv"):
        limit = pretrain_updates if csv.relative_to(folder / "scalars").parts[0] == "pretrain" else frames
        lines = csv.read_text().splitlines(keepends=True)
        keep = [ln for ln in lines if ln.strip() and float(ln.split(",", 1)[0]) <= limit]
        if len(keep) != len(lines):
            tmp = csv.with_suffix(".csv.trim")
            tmp.write_text("".join(keep))
            os.replace(tmp, csv)


def make_logger(args, out_dir: Path, frames: int, pretrain_updates: int):
    if args.logger == "none":
        return None
    kw: dict[str, Any] = {}
    if args.logger == "csv":
        trim_csv_logs(out_dir / "logs" / args.exp_name, frames, pretrain_updates)
    if args.logger == "wandb":
        if importlib.util.find_spec("wandb") is None:
            raise ModuleNotFoundError("--logger wandb needs wandb: pip install -e .[wandb]")
        kw["wandb_kwargs"] = {"mode": args.wandb_mode, "project": "torchrl_newt", "offline": args.wandb_mode == "offline"}
    return get_logger(args.logger, logger_name=str(out_dir / "logs"), experiment_name=args.exp_name, **kw)


def plot_curve(history: list[dict], path: Path, random_mean: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    frames = [h["frames"] for h in history]
    for task in history[0]["results"]:
        ax.plot(frames, [h["results"][task]["score"] for h in history], marker="o", lw=1, alpha=0.6, label=task)
    ax.plot(frames, [h["mean_score"] for h in history], color="k", lw=2.5, marker="s", label="mean")
    if random_mean is not None:
        ax.axhline(random_mean, color="k", ls="--", lw=1.2, label="mean of random actions")
    ax.set(xlabel="env steps (all tasks)", ylabel="score", ylim=(-0.02, 1.02), title="Newt (TD-MPC2) on MMBench tasks")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------- distributed
def setup_distributed(args) -> DistributedContext:
    """Initialise torch.distributed when launched with several processes (``--distributed auto``)."""
    if args.distributed == "off" or read_launch_env().world_size == 1:
        return DistributedContext()
    return init_distributed(device=args.device)


def build_env(tasks: TaskSet, ctx: DistributedContext, seed: int, parallel: bool, features=None, **kw):
    """All tasks in one process; with several ranks, this rank's tasks carrying their global task ids.

    ``features`` (a frozen DINOv2, ``--obs rgb``): the lanes render frames and a
    :class:`~torchrl_newt.envs.DINOv2Features` transform appends their CLS features to the observation.
    """
    if features is not None:
        kw["from_pixels"] = True
    if ctx.world_size == 1:
        env = make_env(tasks, seed=seed, parallel=parallel, **kw)
    else:
        env = make_shard_env(tasks, ctx.rank, ctx.world_size, seed=seed, parallel=parallel, **kw)
    if features is not None:
        from torchrl_newt.envs import DINOv2Features

        env.append_transform(DINOv2Features(features, in_key="pixels", out_key="observation", append=True))
    return env


def load_vision_backbone(args, device: torch.device):
    """The frozen DINOv2 of ``--obs rgb`` (``None`` for state observations); never downloads.
    The default id honours ``$TORCHRL_NEWT_DINOV2_PATH`` (:func:`~torchrl_newt.modules.vision.load_dinov2`)."""
    if args.obs != "rgb":
        return None
    from torchrl_newt.modules.vision import DEFAULT_DINOV2_MODEL, load_dinov2

    backbone = load_dinov2(args.vision_model or DEFAULT_DINOV2_MODEL, device=device)
    log.info("--obs rgb: frozen DINOv2 (%d-d CLS features)", backbone.config.hidden_size)
    return backbone


def _expand_demo_paths(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        path = Path(p)
        out += sorted(str(f) for f in path.glob("*.pt")) if path.is_dir() else [str(path)]
    if not out:
        raise FileNotFoundError(f"no demonstration files found in {paths}")
    return out


# ---------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    """Train (or resume) and return ``{"results": final score table, "state": counters + history}``."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    tasks = resolve_tasks(args.tasks)
    owns_group = not is_distributed()  # destroy at the end only a process group started here
    ctx = setup_distributed(args)
    owns_group = owns_group and ctx.initialized
    device = ctx.device if ctx.initialized else resolve_device(args.device)
    resolve_planner_args(args, device)
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / CHECKPOINT
    if ctx.is_main:
        remove_stale_temp_files(out_dir, (CHECKPOINT, "final_scores.json", "result.json"))
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    log.info("%d tasks on %s: %s", len(tasks), device, ", ".join(tasks[:8]) + (" ..." if len(tasks) > 8 else ""))
    if ctx.initialized:
        log.info("data-parallel rank %d/%d (%s)", ctx.rank, ctx.world_size, ctx.backend)
        args.quiet = args.quiet or not ctx.is_main

    # --------------------------------------------------------------- agent, trainer, replay
    resume = None
    if args.resume:
        resume = latest_checkpoint(out_dir) if args.resume == "auto" else Path(args.resume)
        if resume is None:
            log.warning("--resume: no checkpoint in %s, starting fresh", out_dir)
    backbone = load_vision_backbone(args, device)  # before anything slow: a clear error without weights
    feature_dim = backbone.config.hidden_size if backbone is not None else 0
    start = args.finetune or args.init_from
    loaded, obs_pad, action_pad = (load_start_checkpoint(start, args, tasks, device, feature_dim) if start
                                   else (None, 128, 16))
    # the task list, resolved and checked once; every piece below takes this object
    taskset = TaskSet.resolve(tasks, obs_pad, action_pad)
    table = task_table(args, tasks, device)
    log.info("task conditioning: %s", "frozen CLIP text embeddings" if table is not None else "learnable embeddings")
    agent = Agent(args, taskset, device, table, feature_dim)
    log.info("world model size %s: %s learnable parameters", args.size,
             f"{sum(p.numel() for p in agent.world_model.parameters() if p.requires_grad):,}")
    batch_size = split_batch_size(args.batch_size, ctx.rank, ctx.world_size)
    demos = (load_demos(_expand_demo_paths(args.demos), taskset, features=feature_dim or None) if args.demos
             else None)
    # random seeding episodes, unless demos or finetuning (Newt plans from the first step then)
    seed_frames = 0 if demos is not None or args.finetune else (
        args.seed_episodes * taskset.max_episode_length * len(tasks))
    trainer = NewtTrainer(
        agent.world_model, agent.wm_loss, agent.actor_loss, planner=agent.planner, lr=args.lr,
        enc_lr_scale=args.enc_lr_scale, grad_clip=args.grad_clip, tau=args.tau, utd=args.utd,
        seed_burst=demos is None, start_frames=seed_frames,
        constrained=args.constrained_planning == "on" or (args.constrained_planning == "auto" and demos is not None),
        constraint_start=args.constraint_start, constraint_final=args.constraint_final,
        warmup_updates=args.warmup_updates,
        grad_sync=functools.partial(all_reduce_grads, weight=batch_size / args.batch_size) if ctx.initialized else None,
    )
    log.info("constrained planning: %s", "on" if trainer.constrained else "off")
    if loaded is not None and resume is None:  # each task keeps its own instruction row (held-out ones too)
        from torchrl_newt.interop import transfer_weights

        transfer_weights(loaded, agent.world_model, tasks, wm_loss=agent.wm_loss, actor_loss=agent.actor_loss)
        log.info("initialised from %s (%s format)%s", start, loaded.format, " for finetuning" if args.finetune else "")
    online = MultitaskReplayBuffer(args.replay_capacity, slice_len=args.horizon, mode=args.sampling, device=device,
                                   batch_size=batch_size)
    replay, demo_buffer = online, None
    if demos is not None:
        demo_buffer = MultitaskReplayBuffer(max(len(demos) * 1001, 1000), slice_len=args.horizon, device=device)
        add_demos(demo_buffer, demos)
        replay = MixedReplayBuffer(online, demo_buffer, demo_fraction=0.5, batch_size=batch_size)
        log.info("loaded %d demonstration episodes", len(demos))

    # state that checkpoints carry besides the modules and the trainer
    state: dict[str, Any] = {"frames": 0, "history": [], "last_eval": 0, "last_scores": {}}
    ckpt = None
    if resume is not None:
        ckpt = load_resume_checkpoint(resume, tasks, args, device)
        try:
            agent.load_state_dict(ckpt["agent"])
        except RuntimeError as err:
            raise CheckpointError(f"checkpoint {resume} does not fit this model: {str(err)[:300]}") from err
        trainer.load_state_dict(ckpt["trainer"])
        state.update({k: v for k, v in ckpt["state"].items() if k in state})
        state["last_eval"] = ckpt["state"].get("last_eval", (state["frames"] // args.eval_every) * args.eval_every)
        if "replay" in ckpt and ctx.is_main:  # other ranks' replay is not saved: they refill theirs
            online.load_state_dict(expand_replay_state(ckpt["replay"]))
        log.info("resumed from %s at %d frames, %d updates", resume, state["frames"], trainer.updates)
    elif ctx.initialized:  # same initial weights everywhere, then rank-specific randomness
        broadcast_module(agent)
        torch.manual_seed(args.seed + ctx.rank)
        np.random.seed(args.seed + ctx.rank)
    trainer.schedule(state["frames"])

    # --------------------------------------------------------------- envs and collector
    # a resumed run continues with fresh env seeds for its segment (never initial states already used)
    env = build_env(taskset, ctx, segment_seed(args.seed, state["frames"], ctx.rank), args.parallel_envs,
                    features=backbone, obs_pad=obs_pad, action_pad=action_pad)
    env.append_transform(agent.planner.make_primer())
    eval_env = build_env(taskset, ctx, args.seed + 10_000, args.parallel_envs, features=backbone, obs_pad=obs_pad,
                         action_pad=action_pad)
    eval_env.append_transform(agent.planner.make_primer())
    local_tasks, n = env.task_names, len(env.task_names)
    if args.compile:
        agent.planner.compile_plan(mode="reduce-overhead" if (args.cudagraphs and device.type == "cuda") else None)
    if args.compile and device.type == "cuda":  # on CPU the compiled update is slower than eager
        trainer.compile(mode="reduce-overhead" if args.cudagraphs else None)
    global_fpb = len(tasks) * STEPS_PER_BATCH  # frames count the env steps of all ranks
    collector = Collector(
        env, agent.planner, frames_per_batch=n * STEPS_PER_BATCH,
        total_frames=-(-args.frames // global_fpb) * n * STEPS_PER_BATCH,
        init_random_frames=-(-seed_frames // global_fpb) * n * STEPS_PER_BATCH,
        policy_device=device, storing_device=device, exploration_type=ExplorationType.RANDOM,
        auto_register_policy_transforms=False, trust_policy=True,
    )
    if ckpt is not None:
        # frame counters and trajectory ids continue; each rank has its own (its lane count differs)
        collectors = ckpt.get("collector_ranks") or ([ckpt.get("collector")] if ckpt.get("collector") else None)
        if collectors is not None and len(collectors) == ctx.world_size:
            collector.load_state_dict(collectors[ctx.rank], strict=False)
        else:  # the first checkpoint layout, or another world size: count the frames of this rank's lanes
            collector.load_state_dict({"frames": state["frames"] // global_fpb * n * STEPS_PER_BATCH,
                                       "iter": state["frames"] // global_fpb}, strict=False)
        rngs = ckpt.get("rng_ranks")
        set_rng_state(rngs[ctx.rank] if rngs and len(rngs) == ctx.world_size else ckpt["rng"])
    # checkpoints wait (a few batches at most) for every lane to end an episode when the tasks share
    # an episode length: the resumed run then continues exactly where the uninterrupted one does
    lengths = set(taskset.episode_length.tolist())
    max_wait = math.lcm(STEPS_PER_BATCH, lengths.pop()) // STEPS_PER_BATCH if len(lengths) == 1 else 0

    exp_logger = make_logger(args, out_dir, state["frames"], trainer.pretrain_updates) if ctx.is_main else None

    def log_metrics(metrics: dict, step: int) -> None:
        if exp_logger is not None:
            for k, v in metrics.items():
                exp_logger.log_scalar(k, float(v), step=step)

    last_collector_state: dict = {}

    def save_checkpoint(at_boundary: bool = False) -> None:
        try:
            sd = collector.state_dict()
        except AttributeError:  # the collector was shut down (the final checkpoint): its counters are final
            sd = last_collector_state
        last_collector_state.clear()
        last_collector_state.update(sd)
        collector_state = {k: sd[k] for k in ("frames", "iter", "traj_pool") if k in sd}
        if at_boundary and state["frames"] < args.frames:  # restart every lane with the seeds a run resumed here uses
            env.set_seed(segment_seed(args.seed, state["frames"], ctx.rank))
            collector.reset()
        rngs = gather_objects(rng_state())  # every rank takes part; rank 0 writes
        collectors = gather_objects(collector_state)
        state["checkpoint_frames"] = state["frames"]
        if not ctx.is_main:
            return
        ckpt = {"agent": agent.state_dict(), "trainer": trainer.state_dict(), "state": state, "rng": rngs[0],
                "collector": collector_state, "tasks": tasks, "args": vars(args), "format": 2}
        if ctx.initialized:
            ckpt["rng_ranks"], ckpt["collector_ranks"] = rngs, collectors
        if args.save_replay:
            ckpt["replay"] = compact_replay_state(online.state_dict())
        atomic_save(ckpt, ckpt_path)
        log.info("checkpoint written to %s", ckpt_path)

    def all_lanes_done(batch) -> bool:
        done = bool(batch["next", "done"][:, -1].all())
        return all(gather_objects(done)) if ctx.initialized else done

    # --------------------------------------------------------------- pretraining on demos
    if demo_buffer is not None and trainer.pretrain_updates < args.pretrain_updates:
        bar = tqdm(total=args.pretrain_updates, initial=trainer.pretrain_updates, desc="pretrain", disable=args.quiet,
                   mininterval=1.0 if sys.stderr.isatty() else 30.0)
        while trainer.pretrain_updates < args.pretrain_updates:
            metrics = trainer.pretrain_step(demo_buffer.sample(batch_size))
            bar.update(1)
            if trainer.pretrain_updates % 100 == 0:
                log_metrics({f"pretrain/{k}": v for k, v in metrics.items()}, trainer.pretrain_updates)
        bar.close()
        trainer.end_pretraining()
        save_checkpoint()

    # --------------------------------------------------------------- online training
    bar = tqdm(total=args.frames, initial=state["frames"], desc="train", unit="step", disable=args.quiet,
               mininterval=1.0 if sys.stderr.isatty() else 30.0)
    t0 = time.time()
    pending = None  # batches a due checkpoint has waited for an episode boundary
    for batch in collector if state["frames"] < args.frames else []:
        batch["action"] = batch["action"] * batch["action_mask"]  # masked dims exactly zero in replay
        online.extend(batch)
        state["frames"] += global_fpb
        bar.update(global_fpb)
        done = batch["next", "done"].squeeze(-1)
        if done.any():
            scores = batch["next", "score"].squeeze(-1)[done]
            for lane, s in zip(batch["task"][done].tolist(), scores.tolist()):
                state["last_scores"][lane] = s
            log_metrics({f"train/score/{tasks[l]}": s for l, s in state["last_scores"].items()}, state["frames"])
            log_metrics({"train/mean_score": float(scores.mean())}, state["frames"])

        metrics = trainer.step(replay, state["frames"], batch_size=batch_size)
        if metrics is not None and trainer.updates % 20 < 2:
            log_metrics({f"train/{k}": v for k, v in metrics.items()}, state["frames"])
            bar.set_postfix(upd=trainer.updates, cons=f"{float(metrics['loss_consistency']):.3f}",
                            val=f"{float(metrics['loss_value']):.3f}", refresh=False)

        if state["frames"] - state["last_eval"] >= args.eval_every or state["frames"] >= args.frames:
            state["last_eval"] = state["frames"]
            eval_env.set_seed(segment_seed(args.seed, state["frames"], ctx.rank, purpose=1))
            results = gather_results(evaluate(eval_env, agent.planner, local_tasks, args.eval_episodes), order=tasks)
            mean = float(np.mean(list(domain_scores(results).values())))
            state["history"].append({"frames": state["frames"], "results": results, "mean_score": mean})
            log_metrics({f"eval/score/{t}": r["score"] for t, r in results.items()}, state["frames"])
            log_metrics({f"eval/domain/{d}": s for d, s in domain_scores(results).items()}, state["frames"])
            log_metrics({"eval/mmbench_score": mean, "time/elapsed_s": time.time() - t0}, state["frames"])
            log.info("eval at %d frames (%d updates): mean score %.3f", state["frames"], trainer.updates, mean)
            if ctx.is_main:
                plot_curve(state["history"], out_dir / "learning_curve.png")
            if len(state["history"]) % args.checkpoint_every == 0:
                pending = 0
            collector.update_policy_weights_()
        if pending is not None:
            boundary = all_lanes_done(batch)
            if boundary or pending >= max_wait or state["frames"] >= args.frames:
                save_checkpoint(at_boundary=boundary)
                pending = None
            else:
                pending += 1
        if state["frames"] >= args.frames:
            break
    bar.close()
    collector.shutdown()
    if not state["history"]:
        eval_env.set_seed(segment_seed(args.seed, state["frames"], ctx.rank, purpose=1))
        results = gather_results(evaluate(eval_env, agent.planner, local_tasks, args.eval_episodes), order=tasks)
        state["history"].append({"frames": state["frames"], "results": results,
                                 "mean_score": float(np.mean(list(domain_scores(results).values())))})
        if ctx.is_main:
            plot_curve(state["history"], out_dir / "learning_curve.png")
    final = state["history"][-1]
    random_results = None
    if args.random_episodes > 0:  # uniform random actions on the final evaluation's seeds
        eval_env.set_seed(segment_seed(args.seed, final["frames"], ctx.rank, purpose=1))
        random_results = gather_results(evaluate(eval_env, None, local_tasks, args.random_episodes), order=tasks)
        state["random"] = random_results
        if ctx.is_main:
            plot_curve(state["history"], out_dir / "learning_curve.png", mmbench_score(random_results))
    if state.get("checkpoint_frames") != state["frames"]:
        save_checkpoint()
    eval_env.close()  # the collector closed the training env
    state.update(updates=trainer.updates, pretrain_updates=trainer.pretrain_updates)
    if owns_group:
        cleanup()
    if not ctx.is_main:
        return {"results": final["results"], "state": state}
    print(f"\nFinal evaluation after {state['frames']:,} env steps and {trainer.updates:,} updates "
          f"({time.time() - t0:.0f} s on {device}):\n")
    print(format_table(final["results"], baseline=random_results))
    if random_results is not None:
        print("\n" + learning_summary(final["results"], random_results))
    scores_path = write_final_scores(out_dir, final["results"], baseline=random_results, frames=state["frames"],
                                     updates=trainer.updates, wall_s=round(time.time() - t0, 1), device=str(device),
                                     eval_episodes=args.eval_episodes, random_episodes=args.random_episodes)
    print(f"\nmetrics:        {out_dir / 'logs' / args.exp_name if args.logger != 'none' else '(logging disabled)'}")
    print(f"learning curve: {out_dir / 'learning_curve.png'}")
    print(f"checkpoint:     {ckpt_path}")
    print(f"final scores:   {scores_path}")
    return {"results": final["results"], "state": state}


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
