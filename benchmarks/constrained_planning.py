"""Learning benchmark: Newt's constrained planning on and off, without demonstrations.

Newt's code applies constrained planning (MPPI starts from the policy prior's statistics, weight 1
for the first 2M steps) whether or not demos were used; its config comment says "after
pretraining". This runs ``benchmarks/learning.py`` both ways for several seeds (each a separate
process) and writes one table, ``benchmarks/results/constrained_planning_<device>.md``, from which
the example's default (``--constrained-planning auto``: on after demo pretraining, off without
demos) is chosen.

    python benchmarks/constrained_planning.py                      # seeds 1 2, 4k steps, in parallel
    python benchmarks/constrained_planning.py --aggregate-only     # rebuild the table from the runs
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
from pathlib import Path
from statistics import mean

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
log = logging.getLogger("constrained_planning")


def run_file(task: str, device: str, setting: str, seed: int) -> Path:
    """The table ``benchmarks/learning.py`` writes for one run."""
    return RESULTS / f"learning_{task}_{device}_constrained-{setting}{'' if seed == 1 else f'_seed{seed}'}.md"


def read_run(path: Path) -> tuple[list[tuple[int, float]], float | None]:
    """``([(env steps, score)...], random score)`` from a learning table."""
    text = path.read_text()
    rows = [(int(a.replace(",", "")), float(b)) for a, b in re.findall(r"^\| ([\d,]+) \| ([\d.]+) \|", text, re.M)]
    rand = float(re.search(r"Random policy \(\d+ episodes\): score (\d+\.\d+)", text).group(1))
    return rows, rand


def read_partial_run(task: str, setting: str, seed: int) -> tuple[list[tuple[int, float]], None]:
    """Evaluations logged so far by a run that has not finished (its CSV logs)."""
    run = RESULTS / f"learning_{task}_constrained-{setting}{'' if seed == 1 else f'_seed{seed}'}"
    csv = run / "logs" / "newt" / "scalars" / "eval" / "score" / f"{task}.csv"
    if not csv.is_file():
        return [], None
    rows = [line.split(",") for line in csv.read_text().split()]
    return [(int(float(a)), float(b)) for a, b in rows], None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="cartpole-balance")
    p.add_argument("--seeds", default="1,2")
    p.add_argument("--frames", type=int, default=4_000)
    p.add_argument("--eval-every", type=int, default=1_000)
    p.add_argument("--device", default="cpu", help="the device label of the run files")
    p.add_argument("--aggregate-only", action="store_true")
    p.add_argument("--partial", action="store_true",
                   help="with --aggregate-only: also use runs still in progress (their logged evaluations)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = ("off", "on")
    if not args.aggregate_only:
        procs = [
            subprocess.Popen([
                sys.executable, str(ROOT / "benchmarks" / "learning.py"), "--task", args.task, "--seed", str(seed),
                "--frames", str(args.frames), "--eval-every", str(args.eval_every), "--tag", f"constrained-{s}",
                "--extra", "--constrained-planning", s, "--threads", "1",
            ])
            for seed in seeds for s in settings
        ]
        if any(proc.wait() for proc in procs):
            raise SystemExit("a learning run failed")
    runs = {}
    for s in settings:
        for seed in seeds:
            path = run_file(args.task, args.device, s, seed)
            runs[s, seed] = read_run(path) if path.is_file() else read_partial_run(args.task, s, seed)
    steps = sorted(set.intersection(*(set(f for f, _ in r[0]) for r in runs.values())))
    if not steps:
        raise SystemExit("no evaluation common to all runs yet")
    runs = {k: ([row for row in r[0] if row[0] in steps], r[1]) for k, r in runs.items()}
    lines = [
        f"# Constrained planning without demos: {args.task} ({args.device})",
        "",
        "Newt's schedule (weight 1 before 2M steps, so on for these whole runs) against plain MPPI warm start, "
        f"no demonstrations, everything else as `benchmarks/learning.py` (model S, UTD 1, batch 256, planner "
        f"128 x 4, deterministic evaluation of 2 episodes). Seeds {', '.join(map(str, seeds))}; one process each, "
        "1 torch thread, run concurrently.",
        f"Command: `python benchmarks/constrained_planning.py --seeds {args.seeds} --frames {args.frames}`",
        "",
        "| env steps | " + " | ".join(f"{s} (seed {seed})" for s in settings for seed in seeds)
        + " | off mean | on mean |",
        "|---:|" + "---:|" * (len(settings) * len(seeds) + 2),
    ]
    means = {}
    for i, f in enumerate(steps):
        cells = [runs[s, seed][0][i][1] for s in settings for seed in seeds]
        m = {s: mean(runs[s, seed][0][i][1] for seed in seeds) for s in settings}
        means[f] = m
        lines.append(f"| {f:,} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {m['off']:.3f} | {m['on']:.3f} |")
    rands = [r for _, r in runs.values() if r is not None]
    if rands:
        rand = mean(rands)
    else:  # partial runs: measure the random policy here
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import torch
        from learning import random_policy_score

        torch.manual_seed(1)
        rand = mean(random_policy_score(args.task, episodes=5, seed=seed + 123) for seed in seeds)
    final = means[steps[-1]]
    area = {s: mean(means[f][s] for f in steps) for s in settings}
    better = max(settings, key=lambda s: (final[s], area[s]))
    lines += [
        "",
        f"Random policy: {rand:.3f} (mean of 5-episode estimates, one per seed).",
        f"Final mean score: off {final['off']:.3f}, on {final['on']:.3f}; mean over the evaluations: "
        f"off {area['off']:.3f}, on {area['on']:.3f}. Better without demos: **{better}**.",
    ]
    text = "\n".join(lines) + "\n"
    out = RESULTS / f"constrained_planning_{args.device}.md"
    out.write_text(text)
    print(text)
    log.info("wrote %s", out)


if __name__ == "__main__":
    main()
