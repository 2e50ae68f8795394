"""Precompute a task-embedding table: ``python -m torchrl_newt.embed``.

Examples::

    # all 200 MMBench tasks, weights from a local CLIP checkout
    python -m torchrl_newt.embed --tasks mmbench --model /models/clip-vit-base-patch32 --out mmbench.pt
    # one domain, or a comma-separated list (selectors can be mixed)
    python -m torchrl_newt.embed --tasks domain:dmcontrol --out dmc.pt
    python -m torchrl_newt.embed --tasks walker-walk,walker-run,held-out --out some.pt
    # user tasks registered by a module of yours (it calls register_task at import)
    python -m torchrl_newt.embed --import my_tasks --tasks my-task --out mine.pt

Selectors: ``mmbench`` (the 200 training tasks), ``held-out`` (the 34 held-out tasks), ``all``
(every registered task), ``domain:NAME``, or a task name. Load the result with
:func:`torchrl_newt.modules.language.load_task_table`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from torchrl_newt.envs.registry import list_tasks
from torchrl_newt.modules.language import (
    DEFAULT_CLIP_MODEL,
    CLIPTextEmbedder,
    ModelUnavailable,
    model_fingerprint,
    save_task_table,
    task_embeddings,
    task_texts,
)

__all__ = ["main", "parse_task_selection"]

logger = logging.getLogger("torchrl_newt.embed")


def parse_task_selection(selection: str) -> list[str]:
    """Task names for a ``--tasks`` selection, in registry order, without duplicates.

    Examples:
        >>> len(parse_task_selection("mmbench"))
        200
        >>> parse_task_selection("walker-walk, domain:mujoco")[:3]
        ['walker-walk', 'mujoco-ant', 'mujoco-halfcheetah']
    """
    names: list[str] = []
    for item in (s.strip() for s in selection.split(",")):
        if not item:
            continue
        if item == "mmbench":
            names += list_tasks()
        elif item == "all":
            names += list_tasks(include_held_out=True)
        elif item == "held-out":
            names += list_tasks("held-out")
        elif item.startswith("domain:"):
            names += list_tasks(item.split(":", 1)[1])
        else:
            task_texts([item])  # validates the name (UnknownTaskError lists close matches)
            names.append(item)
    if not names:
        raise ValueError(f"--tasks {selection!r} selects no task")
    return list(dict.fromkeys(names))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m torchrl_newt.embed",
        description="Precompute frozen CLIP text embeddings of tasks into a table file.",
    )
    p.add_argument("--tasks", required=True, help="mmbench | held-out | all | domain:NAME | comma,separated,names")
    p.add_argument(
        "--model", default=DEFAULT_CLIP_MODEL, help="local directory or Hugging Face id (default: %(default)s)"
    )
    p.add_argument("--out", required=True, help="output table file (.pt)")
    p.add_argument("--device", default=None, help="e.g. cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--revision", default=None, help="hub revision to use from the Hugging Face cache")
    p.add_argument("--cache-dir", default=None, help="embedding cache root (default: ~/.cache/torchrl_newt)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    p.add_argument("--allow-download", action="store_true", help="permit downloading the weights from the Hub")
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module first (e.g. one that calls register_task); repeatable",
    )
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for module in args.imports:
        importlib.import_module(module)
    names = parse_task_selection(args.tasks)
    texts = task_texts(names)
    logger.info("embedding %d tasks with %s", len(names), args.model)
    try:
        embedder = (
            CLIPTextEmbedder.from_pretrained(
                args.model, device=args.device, revision=args.revision, allow_download=args.allow_download
            )
            if args.no_cache
            else None
        )
        table = task_embeddings(
            names,
            embedder if embedder is not None else args.model,
            device=args.device,
            batch_size=args.batch_size,
            cache_dir=args.cache_dir,
            allow_download=args.allow_download,
            revision=args.revision,
            use_cache=not args.no_cache,
            progress=True,
            source="clip",  # this command runs the model (Newt's shipped vectors need no command)
        )
    except ModelUnavailable as err:
        logger.error("%s", err)
        return 2
    model_id, fingerprint = model_fingerprint(embedder if embedder is not None else args.model, revision=args.revision)
    save_task_table(args.out, names, table, texts=texts, model=model_id, fingerprint=fingerprint)
    logger.info("wrote %s: %d tasks x %d dims", args.out, table.shape[0], table.shape[1])
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
