"""Evaluation shared by every runner: deterministic episodes, the score table, ``final_scores.json``.

Every runner (the main job, evaluation, baselines) ends with :func:`format_table` and writes
:func:`write_final_scores` into its output folder, so runs compare through one file format::

    {"tasks": {"walker-walk": {"score": 0.91, "return": 910.2, "success": 0.0}, ...},
     "domains": {"dmcontrol": 0.91, ...}, "mmbench_score": 0.91, ...extra run facts...}

The MMBench score of a run is the mean of its domain means.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torchrl.envs.utils import ExplorationType, set_exploration_type

from torchrl_newt.envs import get_task

__all__ = [
    "FINAL_SCORES_FILE",
    "domain_scores",
    "evaluate",
    "format_table",
    "mmbench_score",
    "write_final_scores",
]

#: the file every runner writes into its output folder
FINAL_SCORES_FILE = "final_scores.json"

Results = Mapping[str, Mapping[str, float]]


@torch.no_grad()
def evaluate(env, policy, tasks: Sequence[str], episodes: int) -> dict[str, dict[str, float]]:
    """Run ``episodes`` complete deterministic episodes on every lane of a multitask env.

    Args:
        env: a batched env with one lane per task (e.g. :func:`torchrl_newt.envs.make_env`),
            writing ``("next", "score"|"success"|"episode_reward"|"done")``.
        policy: the policy (e.g. a :class:`~torchrl_newt.modules.TDMPC2Planner`), run under
            :class:`~torchrl.envs.utils.ExplorationType` ``DETERMINISTIC``; ``None`` for the
            env's random actions (uniform in the action spec, masked dims zero).
        tasks: the lanes' task names, in lane order.
        episodes: episodes per task (lanes run for ``episodes`` times the longest episode).

    Returns:
        ``{task: {"score", "return", "success"}}`` averaged over the episodes.

    Examples:
        >>> from torchrl_newt.envs import make_env
        >>> env = make_env(["cartpole-balance"], seed=0)
        >>> r = evaluate(env, None, ["cartpole-balance"], episodes=1)
        >>> sorted(r["cartpole-balance"]), 0 <= r["cartpole-balance"]["score"] <= 1
        (['return', 'score', 'success'], True)
        >>> env.close()
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    steps = max(get_task(t).episode_length for t in tasks) * episodes
    kind = ExplorationType.DETERMINISTIC if policy is not None else ExplorationType.RANDOM
    with set_exploration_type(kind):
        td = env.rollout(steps, policy, break_when_any_done=False, auto_cast_to_device=policy is not None)
    done = td["next", "done"].squeeze(-1).cpu()
    score = td["next", "score"].squeeze(-1).cpu()
    success = td["next", "success"].squeeze(-1).cpu()
    ret = td["next", "episode_reward"].squeeze(-1).cpu()
    results = {}
    for i, task in enumerate(tasks):
        idx = done[i].nonzero().squeeze(-1)[:episodes]
        results[task] = {
            "score": float(score[i, idx].mean()),
            "return": float(ret[i, idx].mean()),
            "success": float(success[i, idx].mean()),
        }
    return results


def domain_scores(results: Results) -> dict[str, float]:
    """Mean score per domain, in order of first appearance.

    Examples:
        >>> domain_scores({"walker-walk": {"score": 0.5}, "cheetah-run": {"score": 0.7}, "pygame-pong": {"score": 1.0}})
        {'dmcontrol': 0.6, 'pygame': 1.0}
    """
    per_domain = defaultdict(list)
    for task, r in results.items():
        per_domain[get_task(task).domain].append(r["score"])
    return {d: round(sum(v) / len(v), 12) for d, v in per_domain.items()}


def mmbench_score(results: Results) -> float:
    """The MMBench score: mean of the domain means.

    Examples:
        >>> mmbench_score({"walker-walk": {"score": 0.5}, "cheetah-run": {"score": 0.7}, "pygame-pong": {"score": 1.0}})
        0.8
    """
    doms = domain_scores(results)
    return round(sum(doms.values()) / len(doms), 12) if doms else math.nan


def format_table(results: Results, baseline: Results | None = None, baseline_name: str = "random") -> str:
    """The per-task and per-domain score table every runner prints at the end.

    Args:
        results: ``{task: {"score", "return", "success"}}``.
        baseline: optional scores of a reference policy on the same tasks, shown in a column
            named ``baseline_name``.

    Examples:
        >>> print(format_table({"walker-walk": {"score": 0.5, "return": 500.0, "success": 0.0}}))
        task                        domain             score    return  success
        -----------------------------------------------------------------------
        walker-walk                 dmcontrol          0.500     500.0        -
        -----------------------------------------------------------------------
        domain mean                 dmcontrol          0.500
        MMBench score (mean of domain means)           0.500
    """
    extra = baseline is not None
    header = f"{'task':<28}{'domain':<16}{'score':>8}" + (f"{baseline_name:>9}" if extra else "") + f"{'return':>10}{'success':>9}"
    rows = [header, "-" * len(header)]
    for task, r in results.items():
        spec = get_task(task)
        success = f"{r['success']:>9.2f}" if spec.success_defined else f"{'-':>9}"
        base = f"{baseline[task]['score']:>9.3f}" if extra else ""
        rows.append(f"{task:<28}{spec.domain:<16}{r['score']:>8.3f}{base}{r['return']:>10.1f}{success}")
    rows.append("-" * len(header))
    doms = domain_scores(results)
    base_doms = domain_scores(baseline) if extra else {}
    for d, s in doms.items():
        base = f"{base_doms[d]:>9.3f}" if extra else ""
        rows.append(f"{'domain mean':<28}{d:<16}{s:>8.3f}{base}")
    base = f"{mmbench_score(baseline):>9.3f}" if extra else ""
    rows.append(f"{'MMBench score (mean of domain means)':<44}{mmbench_score(results):>8.3f}{base}")
    return "\n".join(rows)


def write_final_scores(
    output_dir: str | os.PathLike, results: Results, baseline: Results | None = None, **extra: Any
) -> Path:
    """Write ``OUTPUT_DIR/final_scores.json`` atomically and return its path.

    Args:
        output_dir: the run's output folder (created if missing).
        results: ``{task: {"score", "return", "success"}}``.
        baseline: optional ``{task: {"score", ...}}`` of uniform random actions; its score is
            stored per task as ``"random"``.
        **extra: run facts stored at the top level (``frames``, ``updates``, ``wall_s``...).

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = write_final_scores(d, {"walker-walk": {"score": 0.5, "return": 500.0, "success": 0.0}}, frames=10)
        ...     data = json.loads(p.read_text())
        >>> data["tasks"]["walker-walk"]["score"], data["mmbench_score"], data["frames"]
        (0.5, 0.5, 10)
    """
    tasks = {}
    for task, r in results.items():
        row = {"score": float(r["score"]), "return": float(r["return"]), "success": float(r["success"])}
        if baseline is not None:
            row["random"] = float(baseline[task]["score"])
        tasks[task] = row
    data = {"tasks": tasks, "domains": domain_scores(results), "mmbench_score": mmbench_score(results), **extra}
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / FINAL_SCORES_FILE
    fd, tmp = tempfile.mkstemp(prefix=f".{FINAL_SCORES_FILE}.", suffix=".tmp", dir=out)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
