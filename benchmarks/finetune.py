"""Fine-tuning benchmark: a multitask checkpoint vs training from scratch on a held-out task, on CPU.

Newt's claim is that a massively multitask world model adapts to an unseen task faster than a
model trained from scratch. This script trains ``examples/newt_mmbench.py`` twice on one task
with the same budget, options and seed:

* **finetune**: starts from ``--checkpoint`` (the example's ``--finetune CKPT`` when it has that
  option, else ``--init-from CKPT``, which keeps every pretrained weight and gives the task its
  own instruction embedding), and plans from the first step (``--seed-episodes 0``);
* **scratch**: a freshly initialised model of the same size, also from the first step.

Both are evaluated (deterministic episodes) every ``--eval-every`` steps; the curves go to
``benchmarks/results/finetune_<task>_<device>.md`` (a table) and ``.png``, with the device named.
Pick a task the checkpoint was not trained on (its score at 0 steps is then zero-shot).
Without ``--checkpoint``, a short multitask pretraining run on ``--pretrain-tasks`` makes one first
(too short to be meaningful except as a smoke test: pass a real checkpoint).

This is a benchmark, not a test: at the defaults it takes a long time on CPU. Smoke run::

    python benchmarks/finetune.py --task mujoco-reacher --frames 100 --eval-every 100 --threads 1 \\
        --pretrain-tasks pygame-landing --pretrain-frames 200 --tag smoke \\
        --extra --plan-samples 16 --plan-iterations 1 --plan-elites 4 --plan-pi-trajs 2 --eval-episodes 1 --batch-size 32

Real run::

    python benchmarks/finetune.py --checkpoint runs/newt/checkpoint.pt --task mujoco-reacher --frames 10000
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_common import device_label, plot_curves  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: cheap CPU planner and evaluation, shared by both runs
COMMON = ["--plan-samples", "128", "--plan-iterations", "4", "--plan-elites", "16", "--plan-pi-trajs", "8",
          "--eval-episodes", "2", "--logger", "csv", "--quiet", "--distributed", "off"]


def _example():
    spec = importlib.util.spec_from_file_location("newt_mmbench", ROOT / "examples" / "newt_mmbench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _init_option(example) -> str:
    """``--finetune`` when the example has it, else ``--init-from``."""
    options = example.build_parser()._option_string_actions
    return "--finetune" if "--finetune" in options else "--init-from"


def _checkpoint_size(path: Path) -> str:
    from torchrl_newt.interop import load_world_model

    size = load_world_model(path).size
    if size is None:
        raise ValueError(f"{path} holds a custom-size world model; the example trains sizes S/B/L/XL only")
    return size


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None, help="multitask checkpoint (ours or Newt's); default: pretrain one")
    p.add_argument("--task", default="mujoco-reacher", help="the held-out task")
    p.add_argument("--frames", type=int, default=10_000)
    p.add_argument("--eval-every", type=int, default=2_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--utd", type=float, default=0.5)
    p.add_argument("--pretrain-tasks", default="cartpole-balance,pendulum-swingup,mujoco-hopper")
    p.add_argument("--pretrain-frames", type=int, default=20_000)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads of both runs (1 is fastest on a busy CPU)")
    p.add_argument("--tag", default="", help="suffix of the result files")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more options for both runs")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    suffix = f"_{args.tag}" if args.tag else ""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    work = RESULTS / f"finetune_{args.task}{suffix}"  # run folders (not committed)
    ex = _example()
    common = COMMON + (["--threads", str(args.threads)] if args.threads else [])
    t0 = time.time()

    ckpt = Path(args.checkpoint) if args.checkpoint else None
    if ckpt is None:
        if args.task in args.pretrain_tasks.split(","):
            raise ValueError(f"--task {args.task} is in --pretrain-tasks: pick a held-out task")
        ex.main(["--tasks", args.pretrain_tasks, "--frames", str(args.pretrain_frames), "--seed", str(args.seed),
                 "--eval-every", str(args.pretrain_frames), "--output-dir", str(work / "pretrain"), *common, *args.extra])
        ckpt = work / "pretrain" / "checkpoint.pt"
    size = _checkpoint_size(ckpt)
    init = _init_option(ex)
    runs = {}
    for name, extra in (("finetune", [init, str(ckpt)]), ("scratch", [])):
        t = time.time()
        out = ex.main([
            "--tasks", args.task, "--frames", str(args.frames), "--eval-every", str(args.eval_every),
            "--seed", str(args.seed), "--utd", str(args.utd), "--size", size, "--seed-episodes", "0",
            "--output-dir", str(work / name), *common, *extra, *args.extra,
        ])
        runs[name] = {"history": out["state"]["history"], "wall_s": time.time() - t}

    lines = [
        f"# Fine-tuning vs scratch: {args.task} ({device_label()})",
        "",
        f"Checkpoint: `{ckpt}` (size {size}), initialised with `{init}`; budget {args.frames:,} env steps per run, "
        f"UTD {args.utd}, planner 128 samples x 4 iterations, planning from the first step (`--seed-episodes 0`), "
        f"2 deterministic evaluation episodes every {args.eval_every:,} steps; seed {args.seed}; device {device}; "
        f"total wall time {(time.time() - t0) / 60:.1f} min.",
        f"Command: `{' '.join(['python benchmarks/finetune.py', *(argv if argv is not None else sys.argv[1:])])}`",
        "",
        "| env steps | finetune score | scratch score | difference |",
        "|---:|---:|---:|---:|",
    ]
    fin = {h["frames"]: h["results"][args.task]["score"] for h in runs["finetune"]["history"]}
    scr = {h["frames"]: h["results"][args.task]["score"] for h in runs["scratch"]["history"]}
    for frames in sorted(set(fin) | set(scr)):
        a, b = fin.get(frames), scr.get(frames)
        diff = f"{a - b:+.3f}" if a is not None and b is not None else "-"
        lines.append(f"| {frames:,} | {'-' if a is None else f'{a:.3f}'} | {'-' if b is None else f'{b:.3f}'} | {diff} |")
    lines.append("")
    lines.append(f"Wall time: finetune {runs['finetune']['wall_s'] / 60:.1f} min, scratch {runs['scratch']['wall_s'] / 60:.1f} min.")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"finetune_{args.task}_{device}{suffix}"
    (RESULTS / f"{stem}.md").write_text(text)
    _plot(fin, scr, args.task, device_label(), RESULTS / f"{stem}.png")
    return runs


def _plot(fin: dict, scr: dict, task: str, device: str, path: Path) -> None:
    plot_curves({"finetune from multitask checkpoint": fin, "from scratch": scr}, path, f"{task} ({device})",
                xlabel="env steps on the held-out task")


if __name__ == "__main__":
    main()
