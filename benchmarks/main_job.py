"""The main job's embedded default, measured: score table beside random, curve points, wall time.

Runs ``examples/newt_mmbench.py`` (by default with no arguments, as the README's first command
does; arguments after ``--`` are passed on) into ``--output-dir`` and writes its final table, the
evaluation curve and the wall time to ``benchmarks/results/main_job_default_<device>.md``; or, with
``--from-run DIR``, formats an existing run's ``final_scores.json`` and checkpoint history instead.

    python benchmarks/main_job.py                         # ~12 min on a 2-core CPU
    python benchmarks/main_job.py --from-run runs/newt    # a run made by the README command
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_common import device_label  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def main(argv: list[str] | None = None) -> Path:
    from torchrl_newt.launch.slurm import split_passthrough

    ours, extra = split_passthrough(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output-dir", default="runs/newt-main-job")
    p.add_argument("--from-run", default=None, help="format this finished run instead of running one")
    p.add_argument("--note", default="", help="a line on how the run was made (fresh clone, machine load...)")
    args = p.parse_args(ours)
    from torchrl_newt.evaluate import format_table, learning_summary, mmbench_score

    run = Path(args.from_run or args.output_dir)
    wall = None
    if args.from_run is None:
        t0 = time.time()
        subprocess.run([sys.executable, str(ROOT / "examples" / "newt_mmbench.py"), "--output-dir", str(run), *extra],
                       check=True)
        wall = time.time() - t0
    missing = [name for name in ("final_scores.json", "checkpoint.pt") if not (run / name).is_file()]
    if missing:
        p.error(f"{run} is not a finished run of the main job: no {' or '.join(missing)}")
    final = json.loads((run / "final_scores.json").read_text())
    ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    results = final["tasks"]
    random = {t: {"score": r["random"]} for t, r in results.items()}
    history = ckpt["state"]["history"]
    train_args = ckpt["args"]
    lines = [
        f"# The main job's default ({device_label()})",
        "",
        f"`{' '.join(['python examples/newt_mmbench.py', *extra])}`",
        "",
        f"{final['frames']:,} env steps, {final['updates']:,} updates; training loop {final['wall_s'] / 60:.1f} min"
        + (f", whole command (start-up and final random episodes included) {wall / 60:.1f} min" if wall else "")
        + f"; device {final.get('device', 'cpu')}. {args.note}".rstrip(),
        "",
        "```",
        format_table(results, baseline=random),
        "",
        learning_summary(results, random),
        "```",
        "",
        f"Evaluation curve ({train_args['eval_episodes']} deterministic episodes per task at each point; "
        "MMBench score = mean of domain means):",
        "",
        "| env steps | " + " | ".join(results) + " | MMBench score |",
        "|---:|" + "---:|" * (len(results) + 1),
    ]
    for h in history:
        lines.append(f"| {h['frames']:,} | " + " | ".join(f"{h['results'][t]['score']:.3f}" for t in results)
                     + f" | {h['mean_score']:.3f} |")
    lines.append("| random (final seeds) | " + " | ".join(f"{r['random']:.3f}" for r in results.values())
                 + f" | {mmbench_score(random):.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    device = "cuda" if str(final.get("device", "cpu")).startswith("cuda") else "cpu"
    out = RESULTS / f"main_job_default_{device}.md"
    RESULTS.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
