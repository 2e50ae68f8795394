"""Multitask learning on CPU: a soup against one of its tasks alone, and demos against none.

Trains the main job (``torchrl_newt.train``) on a soup of DMControl tasks with different action
dimensions for a stated budget, per seed, and compares, at equal env steps *of that task*:

* **soup**: all tasks together (``--frames`` env steps in total, ``--frames / len(soup)`` per task);
* **alone**: ``--single-task`` trained by itself for ``--frames / len(soup)`` of its own steps;
* **soup + demos** (with ``--demos DIR``): the soup pretrained on the demonstrations
  (``--pretrain-updates``), then trained online with half of every batch from the demos and
  constrained planning (``--constrained-planning auto`` turns it on with demos).

Every run ends with the score table beside uniform random actions (the same evaluation seeds), so
each curve is read against its task's random score. Writes
``benchmarks/results/multitask_learning_<device>.md`` (a table per variant and seed, the spread over
seeds) and ``.png`` (one panel per task).

    python benchmarks/multitask_learning.py --threads 1                      # ~60-90 min per soup run on CPU
    python benchmarks/multitask_learning.py --demos runs/demos --pretrain-updates 2000 --seeds 1 2
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_common import device_label  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: 1, 2, 4 and 6 action dimensions
DEFAULT_SOUP = "cartpole-swingup,reacher-easy,hopper-stand,walker-stand"


def _run(name: str, argv: list[str], out: Path) -> dict:
    from torchrl_newt.train import main as train

    t0 = time.time()
    train([*argv, "--output-dir", str(out)])
    final = json.loads((out / "final_scores.json").read_text())
    ckpt = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    logging.getLogger("multitask_learning").warning("%s done in %.1f min", name, (time.time() - t0) / 60)
    return {"history": ckpt["state"]["history"], "final": final, "wall_s": time.time() - t0}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--soup", default=DEFAULT_SOUP, help="comma-separated tasks (different action dims)")
    p.add_argument("--single-task", default="walker-stand", help="the soup task also trained alone")
    p.add_argument("--frames", type=int, default=40_000, help="env steps of the soup run (all tasks together)")
    p.add_argument("--eval-every", type=int, default=None, help="default: frames / 5")
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--demos", default=None, help="demo folder: also run the soup with demos")
    p.add_argument("--pretrain-updates", type=int, default=2_000)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tag", default="")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more options for every run")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    soup = [t.strip() for t in args.soup.split(",") if t.strip()]
    if args.single_task not in soup:
        raise ValueError(f"--single-task {args.single_task} is not in the soup {soup}")
    per_task = args.frames // len(soup)
    eval_every = args.eval_every or max(args.frames // 5, 1)
    work = RESULTS / f"multitask_learning_runs{('_' + args.tag) if args.tag else ''}"
    common = ["--eval-episodes", "2", "--logger", "csv", "--quiet", "--distributed", "off", *args.extra]
    if args.threads:
        common += ["--threads", str(args.threads)]
    t0 = time.time()
    runs: dict[str, dict[int, dict]] = {}
    for seed in args.seeds:
        base = ["--seed", str(seed), *common]
        runs.setdefault("soup", {})[seed] = _run(
            f"soup seed {seed}", ["--tasks", ",".join(soup), "--frames", str(args.frames),
                                  "--eval-every", str(eval_every), *base], work / f"soup_s{seed}")
        runs.setdefault("alone", {})[seed] = _run(
            f"{args.single_task} alone seed {seed}",
            ["--tasks", args.single_task, "--frames", str(per_task),
             "--eval-every", str(max(eval_every // len(soup), 1)), *base], work / f"alone_s{seed}")
        if args.demos:
            runs.setdefault("soup + demos", {})[seed] = _run(
                f"soup + demos seed {seed}",
                ["--tasks", ",".join(soup), "--frames", str(args.frames), "--eval-every", str(eval_every),
                 "--demos", args.demos, "--pretrain-updates", str(args.pretrain_updates), *base],
                work / f"demos_s{seed}")

    lines = [
        f"# Multitask learning on CPU ({device_label()})",
        "",
        f"Soup {', '.join(soup)} for {args.frames:,} env steps ({per_task:,} per task), evaluated every "
        f"{eval_every:,} steps (2 deterministic episodes per task); `{args.single_task}` alone for {per_task:,} "
        f"of its own steps; seeds {args.seeds}"
        + (f"; with demos from `{args.demos}` ({args.pretrain_updates:,} pretraining updates)" if args.demos else "")
        + f". Total {(time.time() - t0) / 60:.1f} min.",
        f"Command: `python benchmarks/multitask_learning.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        "",
    ]
    for variant, by_seed in runs.items():
        for seed, r in by_seed.items():
            tasks = list(r["final"]["tasks"])
            lines += [f"## {variant}, seed {seed} ({r['wall_s'] / 60:.1f} min)", "",
                      "| env steps (this task's) | " + " | ".join(tasks) + " |", "|---:|" + "---:|" * len(tasks)]
            for h in r["history"]:
                own = h["frames"] // len(tasks)
                lines.append(f"| {own:,} | " + " | ".join(f"{h['results'][t]['score']:.3f}" for t in tasks) + " |")
            lines.append("| random | " + " | ".join(f"{r['final']['tasks'][t]['random']:.3f}" for t in tasks) + " |")
            lines.append("")
    task = args.single_task
    finals = {v: [r["final"]["tasks"][task]["score"] for r in by_seed.values()] for v, by_seed in runs.items()}
    lines += [f"## `{task}` at {per_task:,} of its own steps", "", "| variant | mean | spread (min..max) |",
              "|---|---:|---:|"]
    for v, xs in finals.items():
        lines.append(f"| {v} | {statistics.mean(xs):.3f} | {min(xs):.3f}..{max(xs):.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"multitask_learning_{device}{('_' + args.tag) if args.tag else ''}"
    (RESULTS / f"{stem}.md").write_text(text)
    _plot(runs, soup, RESULTS / f"{stem}.png")
    return runs


def _plot(runs: dict, soup: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(soup), figsize=(3.2 * len(soup), 3.2), squeeze=False)
    for ax, task in zip(axes[0], soup):
        for variant, by_seed in runs.items():
            for seed, r in by_seed.items():
                if task not in r["final"]["tasks"]:
                    continue
                n = len(r["final"]["tasks"])
                xs = [h["frames"] // n for h in r["history"]]
                ax.plot(xs, [h["results"][task]["score"] for h in r["history"]], marker="o", lw=1,
                        label=f"{variant} s{seed}")
        rand = next(iter(runs["soup"].values()))["final"]["tasks"][task]["random"]
        ax.axhline(rand, color="gray", ls="--", lw=1, label="random")
        ax.set(title=task, xlabel="this task's env steps", ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("score")
    axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
