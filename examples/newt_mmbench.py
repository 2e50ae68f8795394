"""Train a Newt (massively multitask TD-MPC2) agent on MMBench tasks with TorchRL components.

With no arguments this runs the embedded default: a soup of four DMControl tasks with 1, 2, 2
and 6 action dimensions, model size S, sized to finish within about 15 minutes on a 2-core CPU
(or faster on a GPU, which is used automatically when present). It ends by printing a per-task
and per-domain score table and where it wrote metrics, the learning-curve plot and the checkpoint.

    python examples/newt_mmbench.py                       # embedded CPU default
    python examples/newt_mmbench.py --tasks mmbench --size L --frames 100_000_000 --device cuda
    python examples/newt_mmbench.py --demos demos/ --pretrain-updates 200000  # BC pretraining first
    python examples/newt_mmbench.py --resume runs/newt    # continue from the latest checkpoint
    torchrun --standalone --nproc-per-node 8 examples/newt_mmbench.py --tasks mmbench   # data-parallel

The script composes library pieces like TorchRL's sota-implementations: ``make_env`` (masked
multitask stack) -> ``Collector`` with the ``TDMPC2Planner`` policy -> ``MultitaskReplayBuffer``
-> ``TDMPC2WorldModelLoss`` + ``TDMPC2ActorLoss`` (Adam, grad clipping, ``SoftUpdate``).

Under ``torchrun`` or a multi-task Slurm/submitit job it trains data-parallel (``torchrl_newt.launch``):
each rank steps its round-robin share of the tasks and samples its share of the batch, gradients are
all-reduced, evaluation results are gathered, and rank 0 logs and checkpoints (docs/cluster.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import functools
import logging
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np
import torch
from tensordict import TensorDict
from torchrl.collectors import Collector
from torchrl.envs.utils import ExplorationType
from torchrl.objectives import SoftUpdate
from torchrl.record.loggers import get_logger
from tqdm import tqdm

from torchrl_newt.checkpoint import atomic_save, latest_checkpoint, load_checkpoint, rng_state, set_rng_state
from torchrl_newt.data import MixedReplayBuffer, MultitaskReplayBuffer, add_demos, load_demos
from torchrl_newt.envs import get_task, list_tasks, make_env, task_tensors
from torchrl_newt.interop import load_world_model, transfer_weights
from torchrl_newt.evaluate import domain_scores, evaluate, format_table, write_final_scores
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
from torchrl_newt.modules import MODEL_SIZES, NewtWorldModel, TDMPC2Planner, constraint_weight
from torchrl_newt.objectives import TDMPC2ActorLoss, TDMPC2WorldModelLoss, assert_finite_losses

log = logging.getLogger("newt")

#: The embedded default soup: DMControl tasks with 1, 2, 2 and 6 action dimensions.
DEFAULT_TASKS = ("cartpole-balance", "reacher-easy", "finger-spin", "walker-stand")


# ---------------------------------------------------------------------------------------- config
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("tasks and run")
    g.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                   help="comma-separated task names, 'mmbench' (all 200), or 'domain:NAME'")
    g.add_argument("--frames", type=int, default=14_000, help="total env steps (all lanes together)")
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
    g.add_argument("--init-from", default=None, metavar="PATH",
                   help="start from the weights of a checkpoint: Newt's official format or ours (size must match)")
    g.add_argument("--task-embeddings", default=None,
                   help="precomputed task-text table (python -m torchrl_newt.embed); default: CLIP from a local "
                        "path/HF cache if present, else learnable task embeddings")
    g.add_argument("--clip-model", default="openai/clip-vit-base-patch32",
                   help="CLIP text model id or local path used when no table file is given")
    g.add_argument("--no-language", action="store_true", help="always use learnable task embeddings")
    g = p.add_argument_group("optimisation")
    g.add_argument("--batch-size", type=int, default=256, help="Newt uses 1024")
    g.add_argument("--horizon", type=int, default=3)
    g.add_argument("--lr", type=float, default=3e-4)
    g.add_argument("--enc-lr-scale", type=float, default=0.3)
    g.add_argument("--grad-clip", type=float, default=20.0)
    g.add_argument("--tau", type=float, default=0.01)
    g.add_argument("--utd", type=float, default=0.1, help="updates per env step (Newt: 0.075)")
    g.add_argument("--seed-episodes", type=int, default=1, help="random-action episodes per task (Newt: 5)")
    g.add_argument("--replay-capacity", type=int, default=1_000_000)
    g.add_argument("--sampling", default="uniform", choices=["uniform", "balanced", "prioritized"])
    g.add_argument("--entropy-coef", type=float, default=1e-4)
    g.add_argument("--pi-bc-coef", type=float, default=1.0,
                   help="weight of the policy prior's BC term on replay actions (Newt: 1; 0 gives TD-MPC2's prior)")
    g = p.add_argument_group("planner (defaults: Newt's 6 x 512 / 64 elites / 24 prior trajectories on GPU; "
                             "a lighter 4 x 128 / 16 / 8 on CPU so the embedded default fits in ~15 min)")
    g.add_argument("--plan-iterations", type=int, default=None)
    g.add_argument("--plan-samples", type=int, default=None)
    g.add_argument("--plan-elites", type=int, default=None)
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
    g.add_argument("--eval-every", type=int, default=7_000, help="frames between evaluations")
    g.add_argument("--eval-episodes", type=int, default=1, help="deterministic episodes per task")
    g.add_argument("--checkpoint-every", type=int, default=1, help="evaluations between checkpoints")
    g.add_argument("--save-replay", action="store_true", help="also checkpoint the replay buffer")
    g.add_argument("--logger", default="csv", choices=["csv", "wandb", "tensorboard", "none"])
    g.add_argument("--wandb-mode", default="offline", choices=["offline", "online", "disabled"])
    g.add_argument("--exp-name", default="newt")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the planner, and on CUDA the update (eager updates are faster on CPU)")
    g.add_argument("--cudagraphs", action="store_true", help="with --compile on CUDA: mode='reduce-overhead'")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def resolve_tasks(spec: str) -> list[str]:
    """Task names from the --tasks option."""
    if spec == "mmbench":
        return list_tasks()
    if spec.startswith("domain:"):
        return list_tasks(spec.split(":", 1)[1])
    names = [t.strip() for t in spec.split(",") if t.strip()]
    for n in names:
        get_task(n)  # raises with close matches
    if len(set(names)) != len(names):
        raise ValueError(f"--tasks lists a task twice: {names}")
    return names


#: planner settings (iterations, samples, elites, prior trajectories) when not given on the command line
PLANNER_DEFAULTS = {"cuda": (6, 512, 64, 24), "cpu": (4, 128, 16, 8)}


def resolve_planner_args(args, device: torch.device) -> None:
    """Fill unset planner options with the device's defaults (Newt's on GPU, lighter on CPU)."""
    defaults = PLANNER_DEFAULTS["cuda" if device.type == "cuda" else "cpu"]
    for name, value in zip(("plan_iterations", "plan_samples", "plan_elites", "plan_pi_trajs"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was requested but CUDA is not available")
    return device


def task_table(args, tasks: list[str], device: torch.device) -> torch.Tensor | None:
    """Frozen CLIP task embeddings if available (file or local weights), else None (learnable)."""
    if args.no_language:
        return None
    from torchrl_newt.modules import language

    if args.task_embeddings:
        return language.load_task_table(args.task_embeddings, tasks)
    return language.task_embeddings_or_none(tasks, args.clip_model, device=device)


# ---------------------------------------------------------------------------------------- agent
class Agent(torch.nn.Module):
    """Everything with parameters or persistent state, for checkpointing (not a trainer)."""

    def __init__(self, args, tasks: list[str], device: torch.device, table: torch.Tensor | None) -> None:
        super().__init__()
        consts = task_tensors(tasks)
        self.world_model = NewtWorldModel(
            128, 16, size=args.size, task_embeddings=table, num_tasks=None if table is not None else len(tasks)
        )
        self.wm_loss = TDMPC2WorldModelLoss(
            self.world_model, discount=consts["discount"], entropy_coef=args.entropy_coef
        )
        self.actor_loss = TDMPC2ActorLoss(
            self.world_model, entropy_coef=args.entropy_coef, bc_coef=args.pi_bc_coef
        )
        self.planner = TDMPC2Planner(
            self.world_model,
            horizon=args.horizon,
            iterations=args.plan_iterations,
            num_samples=args.plan_samples,
            num_elites=args.plan_elites,
            num_pi_trajs=args.plan_pi_trajs,
            discount=consts["discount"],
            env_chunk_size=4 if device.type == "cpu" else None,  # cache-friendly chunks on CPU
        )
        self.to(device)


def make_optimizers(agent: Agent, args) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """Newt's two Adams: the model optimiser holds every parameter (encoder at a lower LR), the
    policy prior included, so that demo pretraining trains the prior with the model and one joint
    gradient clip (online, the model loss gives the prior no gradient and the optimiser skips it);
    the policy optimiser (eps 1e-5) runs the online max-Q step."""
    wm = agent.world_model
    model_groups = [
        {"params": list(wm.encoder.parameters()), "lr": args.lr * args.enc_lr_scale},
        {"params": [p for n, p in wm.named_parameters() if not n.startswith(("encoder.", "policy."))], "lr": args.lr},
        {"params": list(wm.policy.parameters()), "lr": args.lr},
    ]
    # fused Adam: one kernel over all parameters (CPU and CUDA); ~3x faster steps on CPU
    fused = {"fused": True} if fused_adam_available(next(wm.parameters()).device) else {}
    model_optim = torch.optim.Adam(model_groups, lr=args.lr, **fused)
    pi_optim = torch.optim.Adam(wm.policy.parameters(), lr=args.lr, eps=1e-5, **fused)
    return model_optim, pi_optim


def fused_adam_available(device: torch.device) -> bool:
    """Whether ``torch.optim.Adam(fused=True)`` supports parameters on ``device``."""
    try:
        torch.optim.Adam([torch.zeros(1, device=device, requires_grad=True)], fused=True)
    except (RuntimeError, ValueError):
        return False
    return True


def model_parameters(agent: Agent) -> list[torch.nn.Parameter]:
    return [p for n, p in agent.world_model.named_parameters() if not n.startswith("policy.") and p.requires_grad]


def make_update_fn(agent: Agent, model_optim, pi_optim, updater: SoftUpdate, args, pretrain: bool = False,
                   grad_sync=None):
    """One Newt update: world model + value, then policy prior, then target Q.

    ``grad_sync(params)``, if given, runs after each backward pass and before clipping (data-parallel
    training all-reduces the gradients there).
    """
    wm_params = model_parameters(agent)
    pi_params = list(agent.world_model.policy.parameters())
    sync = grad_sync or (lambda params: None)

    def update(batch: TensorDict) -> TensorDict:
        losses = agent.wm_loss(batch)
        model_loss = losses["loss_consistency"] + losses["loss_reward"] + losses["loss_value"]
        if pretrain:  # Newt: the policy prior trains inside the model loss, one joint clip
            model_loss = model_loss + losses["loss_prior"]
        model_optim.zero_grad(set_to_none=True)
        pi_optim.zero_grad(set_to_none=True)
        model_loss.backward()
        params = wm_params + pi_params if pretrain else wm_params
        sync(params)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, args.grad_clip)
        model_optim.step()
        out = losses.exclude("td_target")
        out["grad_norm"] = grad_norm.detach()
        if not pretrain:
            actor = agent.actor_loss(batch)
            pi_loss = actor["loss_pi"] + actor.get("loss_bc", torch.zeros((), device=model_loss.device))
            pi_loss.backward()
            sync(pi_params)
            torch.nn.utils.clip_grad_norm_(pi_params, args.grad_clip)
            pi_optim.step()
            out.update(actor.select("loss_pi", "entropy", "q_scale"))
            if "loss_bc" in actor.keys():
                out["loss_pi_bc"] = actor["loss_bc"]
        updater.step()
        return out.detach()

    return update


# ---------------------------------------------------------------------------------------- evaluation
def plot_curve(history: list[dict], path: Path) -> None:
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
    ax.set_xlabel("env steps (all tasks)")
    ax.set_ylabel("score")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Newt (TD-MPC2) on MMBench tasks")
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


def build_env(tasks: list[str], ctx: DistributedContext, seed: int, parallel: bool):
    """All tasks in one process; with several ranks, this rank's tasks carrying their global task ids."""
    if ctx.world_size == 1:
        return make_env(tasks, seed=seed, parallel=parallel)
    return make_shard_env(tasks, ctx.rank, ctx.world_size, seed=seed + 100_000 * ctx.rank, parallel=parallel)


# ---------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
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
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    log.info("%d tasks on %s: %s", len(tasks), device, ", ".join(tasks[:8]) + (" ..." if len(tasks) > 8 else ""))
    if ctx.initialized:
        log.info("data-parallel rank %d/%d (%s)", ctx.rank, ctx.world_size, ctx.backend)
        if not ctx.is_main:
            args.quiet = True

    table = task_table(args, tasks, device)
    log.info("task conditioning: %s", "frozen CLIP text embeddings" if table is not None else "learnable embeddings")
    agent = Agent(args, tasks, device, table)
    n_params = sum(p.numel() for p in agent.world_model.parameters() if p.requires_grad)
    log.info("world model size %s: %s learnable parameters", args.size, f"{n_params:,}")
    if args.init_from:
        loaded = load_world_model(args.init_from, size=args.size, map_location=device)
        transfer_weights(loaded, agent.world_model, tasks, wm_loss=agent.wm_loss, actor_loss=agent.actor_loss)
        log.info("initialised from %s (%s format)", args.init_from, loaded.format)
    model_optim, pi_optim = make_optimizers(agent, args)
    updater = SoftUpdate(agent.wm_loss, tau=args.tau)
    # data-parallel: same initial weights everywhere, then rank-specific randomness
    batch_size = split_batch_size(args.batch_size, ctx.rank, ctx.world_size)
    grad_sync = None
    if ctx.initialized:
        broadcast_module(agent)
        torch.manual_seed(args.seed + ctx.rank)
        np.random.seed(args.seed + ctx.rank)
        grad_sync = functools.partial(all_reduce_grads, weight=batch_size / args.batch_size)

    env = build_env(tasks, ctx, args.seed, args.parallel_envs)
    env.append_transform(agent.planner.make_primer())
    eval_env = build_env(tasks, ctx, args.seed + 10_000, args.parallel_envs)
    eval_env.append_transform(agent.planner.make_primer())
    local_tasks = env.task_names
    n = len(local_tasks)

    online = MultitaskReplayBuffer(
        args.replay_capacity, slice_len=args.horizon, mode=args.sampling, device=device, batch_size=batch_size
    )
    replay = online
    demo_buffer = None
    if args.demos:
        demos = load_demos(_expand_demo_paths(args.demos), tasks)
        demo_buffer = MultitaskReplayBuffer(max(len(demos) * 1001, 1000), slice_len=args.horizon, device=device)
        add_demos(demo_buffer, demos)
        replay = MixedReplayBuffer(online, demo_buffer, demo_fraction=0.5, batch_size=batch_size)
        log.info("loaded %d demonstration episodes", len(demos))
    constrained = args.constrained_planning == "on" or (args.constrained_planning == "auto" and demo_buffer is not None)
    log.info("constrained planning: %s", "on" if constrained else "off")

    # state that checkpoints carry
    state = {"frames": 0, "updates": 0, "pretrain_updates": 0, "history": [], "update_credit": 0.0}
    ckpt_path = out_dir / "checkpoint.pt"
    if args.resume:
        path = latest_checkpoint(out_dir) if args.resume == "auto" else Path(args.resume)
        if path is None:
            log.warning("--resume: no checkpoint in %s, starting fresh", out_dir)
        else:
            ckpt = load_checkpoint(path, map_location=device)
            if ckpt["tasks"] != tasks:
                raise ValueError(f"checkpoint {path} was trained on other tasks: {ckpt['tasks']}")
            agent.load_state_dict(ckpt["agent"])
            model_optim.load_state_dict(ckpt["model_optim"])
            pi_optim.load_state_dict(ckpt["pi_optim"])
            state.update(ckpt["state"])
            rngs = ckpt.get("rng_ranks")
            set_rng_state(rngs[ctx.rank] if rngs and len(rngs) == ctx.world_size else ckpt["rng"])
            if "replay" in ckpt and ctx.is_main:  # other ranks' replay is not saved: they refill theirs
                online.load_state_dict(ckpt["replay"])
            log.info("resumed from %s at %d frames, %d updates", path, state["frames"], state["updates"])
    agent.planner.set_prior_weight(
        constraint_weight(state["frames"], args.constraint_start, args.constraint_final) if constrained else 0.0
    )

    exp_logger = None
    if args.logger != "none" and ctx.is_main:
        kw = {}
        if args.logger == "wandb":
            if importlib.util.find_spec("wandb") is None:
                raise ModuleNotFoundError("--logger wandb needs wandb: pip install -e .[wandb]")
            kw["wandb_kwargs"] = {"mode": args.wandb_mode, "project": "torchrl_newt", "offline": args.wandb_mode == "offline"}
        exp_logger = get_logger(args.logger, logger_name=str(out_dir / "logs"), experiment_name=args.exp_name, **kw)

    def log_metrics(metrics: dict, step: int) -> None:
        if exp_logger is not None:
            for k, v in metrics.items():
                exp_logger.log_scalar(k, float(v), step=step)

    def save_checkpoint() -> None:
        rngs = gather_objects(rng_state())  # every rank takes part; rank 0 writes
        if not ctx.is_main:
            state["checkpoint_frames"] = state["frames"]  # keep the ranks' states (and decisions) equal
            return
        ckpt = {
            "agent": agent.state_dict(),
            "model_optim": model_optim.state_dict(),
            "pi_optim": pi_optim.state_dict(),
            "state": state,
            "rng": rngs[0],
            "tasks": tasks,
            "args": vars(args),
        }
        if ctx.initialized:
            ckpt["rng_ranks"] = rngs
        if args.save_replay:
            ckpt["replay"] = online.state_dict()
        atomic_save(ckpt, ckpt_path)
        state["checkpoint_frames"] = state["frames"]
        log.info("checkpoint written to %s", ckpt_path)

    plan = agent.planner
    if args.compile:
        mode = "reduce-overhead" if (args.cudagraphs and device.type == "cuda") else None
        plan.compile_plan(mode=mode)

    # ----------------------------------------------------------------- pretraining on demos
    if demo_buffer is not None and state["pretrain_updates"] < args.pretrain_updates:
        agent.wm_loss.prior_coef = 1.0
        pre_update = make_update_fn(agent, model_optim, pi_optim, updater, args, pretrain=True, grad_sync=grad_sync)
        base_lrs = [g["lr"] for o in (model_optim, pi_optim) for g in o.param_groups]
        bar = tqdm(total=args.pretrain_updates, initial=state["pretrain_updates"], desc="pretrain", disable=args.quiet,
                   mininterval=1.0 if sys.stderr.isatty() else 30.0)
        while state["pretrain_updates"] < args.pretrain_updates:
            frac = min(1.0, (state["pretrain_updates"] + 1) / max(args.warmup_updates, 1))
            for g, lr in zip([g for o in (model_optim, pi_optim) for g in o.param_groups], base_lrs):
                g["lr"] = lr * frac
            metrics = pre_update(demo_buffer.sample(batch_size))
            assert_finite_losses(metrics, state["pretrain_updates"])
            state["pretrain_updates"] += 1
            bar.update(1)
            if state["pretrain_updates"] % 100 == 0:
                log_metrics({f"pretrain/{k}": v for k, v in metrics.items()}, state["pretrain_updates"])
        bar.close()
        agent.wm_loss.prior_coef = 0.0
        save_checkpoint()

    update = make_update_fn(agent, model_optim, pi_optim, updater, args, grad_sync=grad_sync)
    if args.compile and device.type == "cuda":
        # on CPU the compiled update is slower than eager (benchmarks/results/throughput_cpu*.md),
        # so --compile only compiles the planner there
        update = torch.compile(update, mode="reduce-overhead" if args.cudagraphs else None)

    # ----------------------------------------------------------------- online training
    # frames count the env steps of all ranks; every rank runs the same number of collector iterations
    seed_frames = (args.seed_episodes * max(get_task(t).episode_length for t in tasks) * len(tasks)
                   if demo_buffer is None else 0)
    frames_per_batch = n * 10  # this rank's lanes
    global_frames_per_batch = len(tasks) * 10
    remaining = max(args.frames - state["frames"], 0)
    seed_iters = -(-max(seed_frames - state["frames"], 0) // global_frames_per_batch)
    collector = Collector(
        env,
        plan,
        frames_per_batch=frames_per_batch,
        total_frames=-(-remaining // global_frames_per_batch) * frames_per_batch if remaining else frames_per_batch,
        init_random_frames=seed_iters * frames_per_batch,
        policy_device=device,
        storing_device=device,
        exploration_type=ExplorationType.RANDOM,
        auto_register_policy_transforms=False,
        trust_policy=True,
    )
    bar = tqdm(total=args.frames, initial=state["frames"], desc="train", unit="step", disable=args.quiet,
               mininterval=1.0 if sys.stderr.isatty() else 30.0)
    last_eval = (state["frames"] // args.eval_every) * args.eval_every
    t0 = time.time()
    episode_scores: dict[int, list[float]] = defaultdict(list)
    for batch in collector if remaining else []:
        batch["action"] = batch["action"] * batch["action_mask"]  # masked dims exactly zero in replay
        online.extend(batch)
        state["frames"] += global_frames_per_batch
        bar.update(global_frames_per_batch)
        done = batch["next", "done"].squeeze(-1)
        if done.any():
            scores = batch["next", "score"].squeeze(-1)[done]
            lanes = batch["task"][done]
            for lane, s in zip(lanes.tolist(), scores.tolist()):
                episode_scores[lane].append(s)
            log_metrics({f"train/score/{tasks[l]}": np.mean(v[-1:]) for l, v in episode_scores.items()}, state["frames"])
            log_metrics({"train/mean_score": float(scores.mean())}, state["frames"])
        if constrained:  # Newt's schedule, used by training and evaluation alike
            plan.set_prior_weight(constraint_weight(state["frames"], args.constraint_start, args.constraint_final))

        if state["frames"] >= seed_frames:
            if state["updates"] == 0 and demo_buffer is None:
                # burst of updates on the seeding data, as TD-MPC2 does
                state["update_credit"] += args.utd * state["frames"]
            else:
                state["update_credit"] += args.utd * global_frames_per_batch
            metrics = None
            while state["update_credit"] >= 1.0:
                sample = replay.sample(batch_size)
                metrics = update(sample)
                assert_finite_losses(metrics, state["updates"])
                if args.sampling == "prioritized":
                    online.update_tensordict_priority(sample if demo_buffer is None else sample[sample.shape[0] // 2:])
                state["updates"] += 1
                state["update_credit"] -= 1.0
            if metrics is not None and state["updates"] % 20 < 2:
                log_metrics({f"train/{k}": v for k, v in metrics.items()}, state["frames"])
                bar.set_postfix(upd=state["updates"], cons=f"{float(metrics['loss_consistency']):.3f}",
                                val=f"{float(metrics['loss_value']):.3f}", refresh=False)  # bar's own pace

        if state["frames"] - last_eval >= args.eval_every or state["frames"] >= args.frames:
            last_eval = state["frames"]
            results = gather_results(evaluate(eval_env, plan, local_tasks, args.eval_episodes), order=tasks)
            mean = float(np.mean(list(domain_scores(results).values())))
            state["history"].append({"frames": state["frames"], "results": results, "mean_score": mean})
            log_metrics({f"eval/score/{t}": r["score"] for t, r in results.items()}, state["frames"])
            log_metrics({f"eval/domain/{d}": s for d, s in domain_scores(results).items()}, state["frames"])
            log_metrics({"eval/mmbench_score": mean, "time/elapsed_s": time.time() - t0}, state["frames"])
            log.info("eval at %d frames (%d updates): mean score %.3f", state["frames"], state["updates"], mean)
            if ctx.is_main:
                plot_curve(state["history"], out_dir / "learning_curve.png")
            if len(state["history"]) % args.checkpoint_every == 0:
                save_checkpoint()
            collector.update_policy_weights_()
        if state["frames"] >= args.frames:
            break
    bar.close()
    collector.shutdown()
    if not state["history"]:
        results = gather_results(evaluate(eval_env, plan, local_tasks, args.eval_episodes), order=tasks)
        state["history"].append({"frames": state["frames"], "results": results,
                                 "mean_score": float(np.mean(list(domain_scores(results).values())))})
        if ctx.is_main:
            plot_curve(state["history"], out_dir / "learning_curve.png")
    if state.get("checkpoint_frames") != state["frames"]:
        save_checkpoint()
    eval_env.close()  # the collector closed the training env
    final = state["history"][-1]
    if owns_group:
        cleanup()
    if not ctx.is_main:
        return {"results": final["results"], "state": state}
    print(f"\nFinal evaluation after {state['frames']:,} env steps and {state['updates']:,} updates "
          f"({time.time() - t0:.0f} s on {device}):\n")
    print(format_table(final["results"]))
    scores_path = write_final_scores(out_dir, final["results"], frames=state["frames"], updates=state["updates"],
                                     wall_s=round(time.time() - t0, 1), device=str(device))
    metrics_dir = out_dir / "logs" / args.exp_name if args.logger != "none" else None
    print(f"\nmetrics:        {metrics_dir if metrics_dir else '(logging disabled)'}")
    print(f"learning curve: {out_dir / 'learning_curve.png'}")
    print(f"checkpoint:     {ckpt_path}")
    print(f"final scores:   {scores_path}")
    return {"results": final["results"], "state": state}


def _expand_demo_paths(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out += sorted(str(f) for f in path.glob("*.pt"))
        else:
            out.append(str(path))
    if not out:
        raise FileNotFoundError(f"no demonstration files found in {paths}")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
