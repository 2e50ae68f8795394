"""Throughput of the Newt update and the MPPI planner (eager vs ``torch.compile``, CUDA graphs on GPU).

Configuration (matches ``../shared/notes/performance-targets.md``): 4 tasks with action dims
1, 2, 6, 6; observations padded to 128, actions to 16; frozen 512-d task embeddings; horizon 3;
planner with 6 iterations, 512 samples, 64 elites, 24 policy trajectories. An "update" is the
world-model + value loss, backward, Adam step, target update and the policy update, as in
``examples/newt_mmbench.py``.

    python benchmarks/throughput.py                     # CPU: S and B, eager
    python benchmarks/throughput.py --sizes S B L --compile --device cuda

Prints a table and writes ``benchmarks/results/throughput_<device>.md``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch
from tensordict import TensorDict
from torchrl_newt.trainer import NewtTrainer

from torchrl_newt.envs import TaskSet
from torchrl_newt.modules import NewtWorldModel, TDMPC2Planner
from torchrl_newt.objectives import TDMPC2ActorLoss, TDMPC2WorldModelLoss
from torchrl_newt.recipe import parse_args

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_common import device_label  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ACTION_DIMS = (1, 2, 6, 6)
#: measured anchors of the reference implementation on the same 2-core CPU kind (eager, fp32)
REFERENCE_CPU = {
    ("S", "update", 256): 5.6, ("S", "update", 1024): 2.1, ("B", "update", 256): 2.7, ("B", "update", 1024): 0.8,
    ("S", "plan", 1): 237.0, ("S", "plan", 4): 646.0, ("S", "plan", 200): 53_000.0,
    ("B", "plan", 1): 433.0, ("B", "plan", 4): 1326.0, ("B", "plan", 200): 115_000.0,
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timeit(fn, device, min_reps: int = 3, min_time: float = 2.0, warmup: int = 1) -> float:
    """Seconds per call (mean over at least ``min_reps`` calls and ``min_time`` s, after ``warmup`` calls)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    reps, start = 0, time.perf_counter()
    while reps < min_reps or time.perf_counter() - start < min_time:
        fn()
        reps += 1
        if reps >= 50:
            break
    _sync(device)
    return (time.perf_counter() - start) / reps


def bench_update(size: str, batch: int, device: torch.device, compile_mode: str | None) -> float:
    args = parse_args(["--size", size])  # the main job's defaults
    tasks = ["cartpole-balance", "reacher-easy", "walker-walk", "cheetah-run"]  # action dims 1, 2, 6, 6
    wm = NewtWorldModel(128, 16, size=size, task_embeddings=torch.randn(len(tasks), 512)).to(device)
    discount = TaskSet.resolve(tasks).discount.to(device)
    wm_loss = TDMPC2WorldModelLoss(wm, discount=discount, entropy_coef=args.entropy_coef).to(device)
    actor_loss = TDMPC2ActorLoss(wm, entropy_coef=args.entropy_coef, bc_coef=args.pi_bc_coef).to(device)
    trainer = NewtTrainer(wm, wm_loss, actor_loss, lr=args.lr,
                          enc_lr_scale=args.enc_lr_scale, grad_clip=args.grad_clip, tau=args.tau)
    update = trainer.update
    if compile_mode is not None:
        update = torch.compile(update, mode=None if compile_mode == "default" else compile_mode)
    T = args.horizon
    mask = torch.zeros(len(tasks), 16, dtype=torch.bool)
    for i, d in enumerate(ACTION_DIMS):
        mask[i, :d] = True
    task = torch.randint(len(tasks), (batch, 1)).expand(batch, T)
    td = TensorDict(
        {
            "observation": torch.randn(batch, T, 128),
            "action": (torch.rand(batch, T, 16) * 2 - 1) * mask[task],
            "action_mask": mask[task],
            "task": task,
            "next": {"observation": torch.randn(batch, T, 128), "reward": torch.rand(batch, T, 1)},
        },
        batch_size=[batch, T],
        device=device,
    )
    # compiled: the second call recompiles once (a type guard on the target parameters fails after the
    # first update), so warm up with three calls
    return 1.0 / _timeit(lambda: update(td.clone()), device, warmup=1 if compile_mode is None else 3)


def bench_plan(size: str, n_envs: int, device: torch.device, compile_mode: str | None) -> float:
    wm = NewtWorldModel(128, 16, size=size, task_embeddings=torch.randn(4, 512)).to(device)
    # on CPU the example plans in chunks of 4 envs (cache-friendly); on GPU all envs at once
    planner = TDMPC2Planner(wm, discount=torch.full((4,), 0.99), env_chunk_size=4 if device.type == "cpu" else None).to(device)
    if compile_mode is not None:
        planner.compile_plan(mode=None if compile_mode == "default" else compile_mode)
    plan = planner.plan
    task = torch.arange(n_envs, device=device) % 4
    mask = torch.zeros(n_envs, 16, dtype=torch.bool, device=device)
    for i in range(n_envs):
        mask[i, : ACTION_DIMS[i % 4]] = True
    obs = torch.randn(n_envs, 128, device=device)
    prev = torch.zeros(n_envs, 3, 16, device=device)
    is_init = torch.zeros(n_envs, 1, dtype=torch.bool, device=device)
    reps = 1 if n_envs >= 100 and device.type == "cpu" else 3
    return 1000.0 * _timeit(lambda: plan(obs, task, mask, prev, is_init), device, min_reps=reps, min_time=0.0 if reps == 1 else 2.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", nargs="+", default=["S", "B"])
    parser.add_argument("--batches", nargs="+", type=int, default=[256, 1024])
    parser.add_argument("--envs", nargs="+", type=int, default=[1, 4, 200])
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (and CUDA graphs on GPU)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    modes: list[str | None] = [None]
    if args.compile:
        modes.append("default")
        if device.type == "cuda":
            modes.append("reduce-overhead")
    rows = []
    for size in args.sizes:
        for mode in modes:
            label = "eager" if mode is None else ("compile" if mode == "default" else "compile+cudagraphs")
            for b in args.batches:
                v = bench_update(size, b, device, mode)
                rows.append((size, "update", b, label, v, "updates/s"))
                print(f"{size} update batch {b:5d} {label:18s} {v:9.2f} updates/s", flush=True)
            for n in args.envs:
                v = bench_plan(size, n, device, mode)
                rows.append((size, "plan", n, label, v, "ms"))
                print(f"{size} plan   envs  {n:5d} {label:18s} {v:9.1f} ms", flush=True)
    name = device_label(device)
    lines = [
        f"# Throughput on {name}",
        "",
        f"torch {torch.__version__}, device `{device}`, fp32. Planner: 6 iterations x 512 samples, 64 elites, "
        "24 policy trajectories, horizon 3 (CPU: envs planned in chunks of 4). Reference = the reference implementation measured eagerly on the "
        "same 2-core CPU kind (`performance-targets.md`); targets: >= 1.5x its update rate, <= 0.67x its "
        "planning latency.",
        "",
        "| size | what | batch / envs | mode | value | unit | reference (CPU) | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, what, x, label, v, unit in rows:
        ref = REFERENCE_CPU.get((size, what, x)) if device.type == "cpu" else None
        ratio = "" if ref is None else (f"{v / ref:.2f}x rate" if what == "update" else f"{v / ref:.2f}x latency")
        lines.append(f"| {size} | {what} | {x} | {label} | {v:.2f} | {unit} | {ref if ref else ''} | {ratio} |")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    out = Path(args.out) if args.out else RESULTS / f"throughput_{device.type}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
