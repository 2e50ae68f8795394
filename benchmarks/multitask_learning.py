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
``benchmarks/results/multitask_learning_<device>.md`` (the score at each evaluation point per task and
variant, mean over seeds with the spread, then a table per run) and ``.png`` (one panel per task).

With ``--generate-demos N`` the demos come from the pipeline's second stage
(``python -m torchrl_newt.demos generate``, Newt's acceptance rule) run on the first seed's soup
checkpoint, the expert here. Finished runs are cached by folder, so variants and seeds can run as
separate processes (one per core) and a last call with ``--report`` assembles them:

    python benchmarks/multitask_learning.py --threads 1 --seeds 1 --variants soup          # ~70 min on CPU
    python benchmarks/multitask_learning.py --threads 1 --seeds 2 --variants soup          # in parallel
    python benchmarks/multitask_learning.py --threads 1 --seeds 1 2 --variants alone
    python benchmarks/multitask_learning.py --threads 1 --seeds 1 --variants demos --generate-demos 4 --demos-frames 12000
    python benchmarks/multitask_learning.py --seeds 1 2 --generate-demos 4 --demos-frames 12000 --report
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


def _run(name: str, argv: list[str], out: Path, *, train: bool = True) -> dict | None:
    """Run the main job once into ``out``, or reuse ``out`` when it holds a finished run of ``argv``.

    Runs are cached by folder so that variants and seeds can run as separate processes (one per
    core) and a last call with ``--report`` assembles them.
    """
    log = logging.getLogger("multitask_learning")
    done = out / "final_scores.json"
    stamp = out / "benchmark_args.json"
    if done.exists() and stamp.exists() and json.loads(stamp.read_text()) == argv:
        log.warning("%s: reusing the finished run in %s", name, out)
    elif not train:
        log.warning("%s: no finished run in %s (left out of the report)", name, out)
        return None
    else:
        from torchrl_newt.train import main as train_main

        t0 = time.time()
        train_main([*argv, "--output-dir", str(out)])
        stamp.write_text(json.dumps(argv))
        log.warning("%s done in %.1f min", name, (time.time() - t0) / 60)
    final = json.loads(done.read_text())
    ckpt = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    return {"history": ckpt["state"]["history"], "final": final, "wall_s": final["wall_s"]}


def _generate_demos(checkpoint: Path, tasks: list[str], num_demos: int, out: Path, threads: int | None) -> Path:
    """The pipeline's second stage: ``python -m torchrl_newt.demos generate`` for every task."""
    from torchrl_newt.demos import main as demos_main

    for task in tasks:
        if (out / f"{task}.pt").exists():
            logging.getLogger("multitask_learning").warning("demos for %s: reusing %s", task, out / f"{task}.pt")
            continue
        demos_main(["generate", "--checkpoint", str(checkpoint), "--task", task, "--num-demos", str(num_demos),
                    "--out", str(out), "--quiet", *(["--threads", str(threads)] if threads else [])])
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--soup", default=DEFAULT_SOUP, help="comma-separated tasks (different action dims)")
    p.add_argument("--single-task", default="cartpole-swingup", help="the soup task also trained alone")
    p.add_argument("--frames", type=int, default=24_000, help="env steps of the soup run (all tasks together)")
    p.add_argument("--eval-every", type=int, default=None, help="default: frames / 4")
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--variants", nargs="+", default=None, choices=["soup", "alone", "demos"],
                   help="default: soup and alone, and demos when --demos or --generate-demos is given")
    p.add_argument("--demos", default=None, help="demo folder for the demos variant")
    p.add_argument("--generate-demos", type=int, default=None, metavar="N",
                   help="make N demos per task with the first seed's soup checkpoint (torchrl_newt.demos) "
                        "into the run folder, and use them for the demos variant")
    p.add_argument("--demos-frames", type=int, default=None,
                   help="online env steps of the demos variant (default --frames): the paper's claim is about "
                        "early learning, compared at equal online steps")
    p.add_argument("--pretrain-updates", type=int, default=1_000)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tag", default="")
    p.add_argument("--report", action="store_true",
                   help="train nothing: assemble the finished runs of these seeds and variants")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more options for every run")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:  # the runs' setting, also named in the report's header
        torch.set_num_threads(args.threads)
    soup = [t.strip() for t in args.soup.split(",") if t.strip()]
    if args.single_task not in soup:
        raise ValueError(f"--single-task {args.single_task} is not in the soup {soup}")
    with_demos = args.demos is not None or args.generate_demos is not None
    variants = args.variants or (["soup", "alone"] + (["demos"] if with_demos else []))
    if "demos" in variants and not with_demos:
        raise ValueError("the demos variant needs --demos DIR or --generate-demos N")
    per_task = args.frames // len(soup)
    eval_every = args.eval_every or max(args.frames // 4, 1)
    work = RESULTS / f"multitask_learning_runs{('_' + args.tag) if args.tag else ''}"
    common = ["--eval-episodes", "2", "--logger", "csv", "--quiet", "--distributed", "off", *args.extra]
    if args.threads:
        common += ["--threads", str(args.threads)]
    soup_args = ["--tasks", ",".join(soup), "--frames", str(args.frames), "--eval-every", str(eval_every)]
    demos_dir = Path(args.demos) if args.demos else work / "demos"
    runs: dict[str, dict[int, dict]] = {}

    def record(variant: str, seed: int, result: dict | None) -> None:
        if result is not None:
            runs.setdefault(variant, {})[seed] = result

    for seed in args.seeds:
        base = ["--seed", str(seed), *common]
        if "soup" in variants:
            record("soup", seed, _run(f"soup seed {seed}", [*soup_args, *base], work / f"soup_s{seed}",
                                      train=not args.report))
        if "alone" in variants:
            record("alone", seed, _run(
                f"{args.single_task} alone seed {seed}",
                ["--tasks", args.single_task, "--frames", str(per_task),
                 "--eval-every", str(max(eval_every // len(soup), 1)), *base],
                work / f"alone_{args.single_task}_s{seed}", train=not args.report))
        if "demos" in variants:
            if args.generate_demos is not None and not args.report:
                first = args.seeds[0]
                expert = _run(f"soup seed {first} (the demos' expert)",
                              [*soup_args, "--seed", str(first), *common], work / f"soup_s{first}")
                assert expert is not None
                _generate_demos(work / f"soup_s{first}" / "checkpoint.pt", soup, args.generate_demos,
                                demos_dir, args.threads)
            record("soup + demos", seed, _run(
                f"soup + demos seed {seed}",
                ["--tasks", ",".join(soup), "--frames", str(args.demos_frames or args.frames), "--eval-every",
                 str(eval_every), "--demos", str(demos_dir), "--pretrain-updates", str(args.pretrain_updates), *base],
                work / f"demos_s{seed}", train=not args.report))
    if not runs:
        raise SystemExit("no finished runs to report")

    wall = sum(r["wall_s"] for by_seed in runs.values() for r in by_seed.values())
    lines = [
        f"# Multitask learning on CPU ({device_label()})",
        "",
        f"Soup {', '.join(soup)} for {args.frames:,} env steps ({per_task:,} per task), evaluated every "
        f"{eval_every:,} steps (2 deterministic episodes per task); `{args.single_task}` alone for {per_task:,} "
        f"of its own steps; seeds {args.seeds}"
        + (f"; with demos from `{demos_dir.relative_to(ROOT) if demos_dir.is_relative_to(ROOT) else demos_dir}` "
           f"({args.pretrain_updates:,} pretraining updates, then {args.demos_frames or args.frames:,} online env "
           "steps)" if "soup + demos" in runs else "")
        + f". Training time of the runs reported: {wall / 60:.0f} min in all.",
        f"Command: `python benchmarks/multitask_learning.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        "",
    ]
    if "soup + demos" in runs:
        lines += _demo_table(demos_dir, soup)
    lines += _summary(runs, soup)
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
    text = "\n".join(lines) + "\n"
    print(text)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"multitask_learning_{device}{('_' + args.tag) if args.tag else ''}"
    (RESULTS / f"{stem}.md").write_text(text)
    _plot(runs, soup, RESULTS / f"{stem}.png")
    return runs


def _demo_table(folder: Path, soup: list[str]) -> list[str]:
    """What the demos variant learned from: per task, the accepted episodes and their returns."""
    from tensordict import TensorDict

    lines = [f"Demonstrations in `{folder.name}/` (Newt's file format):", "", "| task | episodes | return (mean, min..max) |",
             "|---|---:|---:|"]
    for task in soup:
        path = folder / f"{task}.pt"
        if not path.exists():
            lines.append(f"| {task} | 0 (none accepted) | - |")
            continue
        td: TensorDict = torch.load(path, map_location="cpu", weights_only=False)
        returns = [float(torch.nansum(td["reward"][td["episode"] == e])) for e in td["episode"].unique()]
        lines.append(f"| {task} | {len(returns)} | {statistics.mean(returns):.1f} ({min(returns):.1f}..{max(returns):.1f}) |")
    return lines + [""]


def _spread(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.3f} ({min(xs):.3f}..{max(xs):.3f})" if len(xs) > 1 else f"{xs[0]:.3f}"


def _summary(runs: dict[str, dict[int, dict]], soup: list[str]) -> list[str]:
    """Per task and variant: the score at each evaluation point, mean over seeds (min..max)."""
    lines = ["## Summary: score by this task's env steps, mean over seeds (min..max)", ""]
    for task in soup:
        rows = []
        for variant, by_seed in runs.items():
            seeds = [r for r in by_seed.values() if task in r["final"]["tasks"]]
            if not seeds:
                continue
            n = len(seeds[0]["final"]["tasks"])
            points = min(len(r["history"]) for r in seeds)
            cells = [_spread([r["history"][i]["results"][task]["score"] for r in seeds]) for i in range(points)]
            steps = [seeds[0]["history"][i]["frames"] // n for i in range(points)]
            rows.append((variant, steps, cells, _spread([r["final"]["tasks"][task]["random"] for r in seeds])))
        if not rows:
            continue
        steps = max((r[1] for r in rows), key=len)
        lines += [f"### `{task}`", "", "| variant | " + " | ".join(f"{s:,}" for s in steps) + " | random |",
                  "|---|" + "---:|" * (len(steps) + 1)]
        lines += [f"| {v} | " + " | ".join(c + ["-"] * (len(steps) - len(c))) + f" | {rnd} |" for v, _, c, rnd in rows]
        lines.append("")
    rows = []
    for variant, by_seed in runs.items():
        seeds = [r for r in by_seed.values() if set(soup) <= set(r["final"]["tasks"])]
        if seeds:
            points = min(len(r["history"]) for r in seeds)
            rows.append((variant, [_spread([statistics.mean(r["history"][i]["results"][t]["score"] for t in soup)
                                            for r in seeds]) for i in range(points)]))
    if rows:
        width = max(len(c) for _, c in rows)
        lines += ["### Mean over the soup's tasks", "", "| variant | " + " | ".join(
            f"eval {i + 1}" for i in range(width)) + " |", "|---|" + "---:|" * width]
        lines += [f"| {v} | " + " | ".join(c + ["-"] * (width - len(c))) + " |" for v, c in rows]
        lines.append("")
    return lines


def _plot(runs: dict, soup: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(soup), figsize=(3.2 * len(soup), 3.6), squeeze=False)
    colors = {"soup": "tab:blue", "alone": "tab:orange", "soup + demos": "tab:green"}
    for ax, task in zip(axes[0], soup):
        for variant, by_seed in runs.items():
            for k, (seed, r) in enumerate(by_seed.items()):
                if task not in r["final"]["tasks"]:
                    continue
                n = len(r["final"]["tasks"])
                xs = [h["frames"] // n for h in r["history"]]
                ax.plot(xs, [h["results"][task]["score"] for h in r["history"]], marker="o", lw=1,
                        color=colors.get(variant), ls=("-", "--", ":")[k % 3], label=f"{variant} s{seed}")
        rand = next(r["final"]["tasks"][task]["random"] for by_seed in runs.values() for r in by_seed.values()
                    if task in r["final"]["tasks"])
        ax.axhline(rand, color="gray", ls="--", lw=1, label="random")
        ax.set(title=task, xlabel="this task's env steps", ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("score")
    legend = {}
    for ax in axes[0]:  # every variant and seed once (only one panel has the task trained alone)
        for h, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, h)
    labels, handles = list(legend), list(legend.values())
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
