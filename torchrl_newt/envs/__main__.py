"""List the registered tasks: ``python -m torchrl_newt.envs`` (console script ``torchrl-newt-tasks``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Sequence

from torchrl_newt.envs.registry import get_domain, get_task, list_tasks

__all__ = ["main", "task_rows"]

logger = logging.getLogger(__name__)


def _domain_status(domain: str, cache: dict[str, str]) -> str:
    if domain not in cache:
        try:
            info = get_domain(domain)
        except KeyError:
            # registry.get_domain: no module registers this simulator family (yet)
            cache[domain] = "not implemented"
        except ImportError as err:  # a domain module failing on a broken simulator install
            cache[domain] = f"import error: {err}"
        else:
            missing = info.missing()
            cache[domain] = "installed" if not missing else f"missing: pip install -e .[{info.extra}]"
    return cache[domain]


def task_rows(domain: str | None = None, held_out: bool = False) -> list[dict]:
    """One dict per task with its facts and install status.

    Args:
        domain: keep only this MMBench domain (``"held-out"`` for the held-out tasks).
        held_out: list the held-out tasks (alone, unless ``domain`` is given).

    Examples:
        >>> row = task_rows("dmcontrol")[0]
        >>> row["name"], row["obs_dim"], row["action_dim"], row["episode_length"], row["discount"]
        ('walker-stand', 24, 6, 500, 0.99)
    """
    if domain is None and held_out:
        names = list_tasks("held-out")
    elif domain is not None:
        names = list_tasks(domain)
    else:
        names = list_tasks()
    cache: dict[str, str] = {}
    rows = []
    for name in names:
        spec = get_task(name)
        rows.append(
            {
                "task_id": spec.task_id,
                "name": spec.name,
                "domain": spec.domain,
                "simulator": spec.builder_domain,
                "obs_dim": spec.obs_dim,
                "action_dim": spec.action_dim,
                "episode_length": spec.episode_length,
                "discount": spec.discount,
                "score": spec.score.kind,
                "status": _domain_status(spec.builder_domain, cache),
            }
        )
    return rows


def _format_table(rows: list[dict]) -> str:
    cols = [
        ("task_id", "id"),
        ("name", "task"),
        ("domain", "domain"),
        ("obs_dim", "obs"),
        ("action_dim", "act"),
        ("episode_length", "T"),
        ("discount", "gamma"),
        ("score", "score"),
        ("status", "status"),
    ]
    cells = [[("-" if r[k] is None else str(r[k])) for k, _ in cols] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h) in enumerate(cols)]
    lines = ["  ".join(h.ljust(w) for (_, h), w in zip(cols, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the task table (or JSON) to stdout.

    Examples:
        >>> main(["--domain", "dmcontrol", "--json"])  # doctest: +ELLIPSIS
        [
          {
            "task_id": 0,
            "name": "walker-stand",
        ...
        0
    """
    parser = argparse.ArgumentParser(prog="torchrl-newt-tasks", description="List the MMBench tasks torchrl_newt knows.")
    parser.add_argument("--domain", help="only this domain (e.g. dmcontrol, metaworld, held-out)")
    parser.add_argument("--held-out", action="store_true", help="list the 34 held-out tasks")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        rows = task_rows(args.domain, held_out=args.held_out)
    except ValueError as err:
        parser.error(str(err))
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        sys.stdout.write(_format_table(rows) + "\n")
        installed = sum(r["status"] == "installed" for r in rows)
        sys.stdout.write(f"{len(rows)} tasks, {installed} buildable here\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
