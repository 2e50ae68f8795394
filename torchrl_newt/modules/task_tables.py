"""Precomputed task-embedding tables: Newt's shipped MMBench table and user-saved tables.

**Shipped table (the default for MMBench tasks, offline).** ``data/mmbench_clip_text.npz`` holds
Newt's own frozen CLIP instruction embeddings for all 234 MMBench tasks (the 200 training tasks
in soup order, then the 34 held-out tasks): the ``text_embedding`` field of ``tasks.json`` in
https://github.com/nicklashansen/newt, computed by Newt with the text model of CLIP
``openai/clip-vit-base-patch32`` as the mean of ``last_hidden_state`` over all tokens of
``"{embodiment}. {instruction}."`` (one text per call, no projection, no normalisation), exported
rounded to 6 significant digits and stored as float32 ``[234, 512]`` by
``scripts/make_clip_table.py``. :func:`load_newt_table` and :func:`newt_task_embeddings` read it
without loading any weights, importing :mod:`transformers` or touching the network.

**Saved tables.** :func:`save_task_table` / :func:`load_task_table` store a precomputed table (see
``python -m torchrl_newt.embed``) for machines without the weights.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torchrl_newt.checkpoint import atomic_save
from torchrl_newt.envs.registry import TaskSpec, UnknownTaskError, get_task
from torchrl_newt.modules.clip_text import _RECIPE, task_texts

__all__ = [
    "MissingTaskEmbeddingError",
    "NEWT_TABLE_FILE",
    "NewtTextTable",
    "load_newt_table",
    "load_task_table",
    "newt_task_embeddings",
    "save_task_table",
]

logger = logging.getLogger(__name__)

NEWT_TABLE_FILE = Path(__file__).resolve().with_name("data") / "mmbench_clip_text.npz"
"""Newt's CLIP text embeddings of the 234 MMBench tasks, shipped as package data (see the module docstring)."""
_TABLE_FORMAT = "torchrl_newt/task-table"


class MissingTaskEmbeddingError(KeyError):
    """Some requested tasks are absent from a precomputed task-embedding table."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


# ----------------------------------------------------------------------------------------------
# Newt's shipped table (MMBench tasks, no weights, no network)
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NewtTextTable:
    """Newt's CLIP text embeddings of the MMBench tasks, as shipped in :data:`NEWT_TABLE_FILE`.

    Attributes:
        names: the 234 task names in MMBench order (200 training tasks in soup order, then the 34
            held-out tasks; ``list_tasks(include_held_out=True)``).
        texts: the embedded text ``"{embodiment}. {instruction}."`` of each row.
        embeddings: float32 ``[234, 512]``, Newt's ``tasks.json`` ``text_embedding`` vectors.
        meta: the header of the source export (``model``, ``text_template``, ``pooling``, ``dim``,
            ``precision``) plus ``source_sha256`` and ``upstream``.
    """

    names: tuple[str, ...]
    texts: tuple[str, ...]
    embeddings: torch.Tensor
    meta: dict[str, Any]


@functools.lru_cache(maxsize=1)
def _newt_table() -> tuple[NewtTextTable, dict[str, int]]:
    """The shipped table (read once per process) and its ``{text: row}`` index."""
    if not NEWT_TABLE_FILE.is_file():
        raise FileNotFoundError(
            f"Newt's CLIP task table is missing from the installation ({NEWT_TABLE_FILE}); reinstall "
            f"torchrl_newt or rebuild it with `python scripts/make_clip_table.py`"
        )
    with np.load(NEWT_TABLE_FILE, allow_pickle=False) as data:
        table = NewtTextTable(
            names=tuple(str(n) for n in data["names"]),
            texts=tuple(str(t) for t in data["texts"]),
            embeddings=torch.from_numpy(np.array(data["embeddings"], dtype=np.float32)),
            meta=json.loads(data["meta"].item()),
        )
    # tasks sharing a text (e.g. walker-stand / walker-stand-incline) share one identical vector
    by_text: dict[str, int] = {}
    for i, text in enumerate(table.texts):
        by_text.setdefault(text, i)
    logger.debug("loaded Newt's task table: %d tasks x %d dims", *table.embeddings.shape)
    return table, by_text


def load_newt_table() -> NewtTextTable:
    """Newt's shipped CLIP text embeddings of all 234 MMBench tasks (a copy; no weights needed).

    Examples:
        >>> t = load_newt_table()
        >>> len(t.names), tuple(t.embeddings.shape), t.embeddings.dtype
        (234, (234, 512), torch.float32)
        >>> t.names[:2], t.meta["model"], t.meta["text_template"]
        (('walker-stand', 'walker-walk'), 'openai/clip-vit-base-patch32', '{embodiment}. {instruction}.')
    """
    table, _ = _newt_table()
    return NewtTextTable(table.names, table.texts, table.embeddings.clone(), dict(table.meta))


def _task_label(task: str | TaskSpec) -> str:
    return task.name if isinstance(task, TaskSpec) else str(task)


def newt_task_embeddings(tasks: Sequence[str | TaskSpec]) -> torch.Tensor:
    """Rows of Newt's shipped CLIP table for ``tasks``, ``[len(tasks), 512]`` float32 on the CPU.

    Rows are matched by the task's text (:func:`task_texts`), so registered MMBench names, their
    :class:`TaskSpec` and the exact raw text all work, while a task whose instruction was edited
    with :func:`~torchrl_newt.envs.register_task` is (correctly) not found. Needs neither weights,
    :mod:`transformers` nor network access.

    Raises:
        MissingTaskEmbeddingError: some tasks have no row (all are listed); embed them with
            ``task_embeddings(..., source="clip")``.
        UnknownTaskError: a task name is not registered.

    Examples:
        >>> emb = newt_task_embeddings(["walker-walk", "cheetah-run"])
        >>> emb.shape, emb.dtype
        (torch.Size([2, 512]), torch.float32)
        >>> torch.equal(emb[:1], newt_task_embeddings([get_task("walker-walk").text]))
        True
    """
    texts = task_texts(tasks)
    table, by_text = _newt_table()
    missing = [_task_label(task) for task, text in zip(tasks, texts) if text not in by_text]
    if missing:
        raise MissingTaskEmbeddingError(
            f"{len(missing)} task(s) have no row in Newt's shipped CLIP table (only the 234 MMBench "
            f"tasks with their original instructions do): {', '.join(missing)}; embed them with "
            f"task_embeddings(..., source='clip') (needs the CLIP weights)"
        )
    rows = torch.as_tensor([by_text[t] for t in texts], dtype=torch.long)
    return table.embeddings[rows].clone()


# ----------------------------------------------------------------------------------------------
# saved tables
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Table:
    names: list[str]
    table: torch.Tensor
    texts: list[str] | None
    meta: dict[str, Any]


def save_task_table(
    path: str | os.PathLike,
    names: Sequence[str | TaskSpec],
    table: torch.Tensor,
    *,
    texts: Sequence[str] | None = None,
    model: str | None = None,
    fingerprint: str | None = None,
) -> Path:
    """Save a precomputed task-embedding table (atomically) for :func:`load_task_table`.

    Args:
        path: output file (``.pt``).
        names: one unique task name (or spec) per row.
        table: ``[len(names), dim]`` embeddings.
        texts: the embedded text of each row (default: the registered texts of ``names`` where
            they are registered); lets :func:`load_task_table` detect edited instructions.
        model: the model id the table was computed with (metadata).
        fingerprint: the model fingerprint (metadata).

    Returns:
        The path written.

    Examples:
        >>> import tempfile
        >>> p = save_task_table(f"{tempfile.mkdtemp()}/t.pt", ["walker-walk", "walker-run"], torch.eye(2, 4))
        >>> load_task_table(p, ["walker-run"])
        tensor([[0., 1., 0., 0.]])
    """
    names = [n.name if isinstance(n, TaskSpec) else str(n) for n in names]
    table = torch.as_tensor(table).detach().to("cpu", torch.float32).contiguous()
    if table.ndim != 2 or table.shape[0] != len(names):
        raise ValueError(f"table must be [len(names)={len(names)}, dim], got {tuple(table.shape)}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate task names in the table: {dupes}")
    if texts is None:
        derived = []
        for n in names:
            try:
                derived.append(get_task(n).text)
            except UnknownTaskError:
                derived.append(None)
        texts = derived
    elif len(texts) != len(names):
        raise ValueError(f"got {len(texts)} texts for {len(names)} names")
    blob = {
        "format": _TABLE_FORMAT,
        "version": 1,
        "names": names,
        "texts": list(texts),
        "table": table,
        "model": model,
        "fingerprint": fingerprint,
        "recipe": _RECIPE,
    }
    path = Path(path)
    atomic_save(blob, path)
    logger.info("saved %d task embeddings (dim %d) to %s", len(names), table.shape[1], path)
    return path


def _read_table(path: Path) -> _Table:
    if not path.is_file():
        raise FileNotFoundError(f"no task-embedding table at {path} (make one with `python -m torchrl_newt.embed`)")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != _TABLE_FORMAT:
        raise ValueError(f"{path} is not a torchrl_newt task-embedding table")
    meta = {k: v for k, v in blob.items() if k not in ("names", "texts", "table")}
    return _Table(list(blob["names"]), blob["table"], blob.get("texts"), meta)


def load_task_table(
    path: str | os.PathLike,
    tasks: Sequence[str | TaskSpec],
    *,
    check_texts: bool = True,
) -> torch.Tensor:
    """Rows of a precomputed table, ordered like ``tasks``.

    Args:
        path: a file written by :func:`save_task_table` or ``python -m torchrl_newt.embed``.
        tasks: task names or specs; a raw text also matches a row with that exact text.
        check_texts: raise if a registered task's current text differs from the text the table was
            computed from (its instruction was edited since).

    Raises:
        MissingTaskEmbeddingError: some tasks are not in the table (all of them are listed).
        ValueError: a stored text is stale (with ``check_texts``).

    Examples:
        >>> import tempfile
        >>> p = save_task_table(f"{tempfile.mkdtemp()}/t.pt", ["walker-walk"], torch.ones(1, 3))
        >>> try:
        ...     load_task_table(p, ["walker-walk", "walker-run"])
        ... except KeyError as err:
        ...     print(str(err).split(";")[0])
        1 task(s) missing from .../t.pt: walker-run
    """
    t = _read_table(Path(path))
    by_name = {n: i for i, n in enumerate(t.names)}
    by_text = {txt: i for i, txt in enumerate(t.texts or []) if txt is not None}
    rows, missing, stale = [], [], []
    for task in tasks:
        name = task.name if isinstance(task, TaskSpec) else str(task)
        if name in by_name:
            i = by_name[name]
            if check_texts and t.texts is not None and t.texts[i] is not None:
                try:
                    current = task.text if isinstance(task, TaskSpec) else get_task(name).text
                except UnknownTaskError:
                    current = None
                if current is not None and current != t.texts[i]:
                    stale.append(f"{name}: table has {t.texts[i]!r}, registry has {current!r}")
            rows.append(i)
        elif name in by_text:
            rows.append(by_text[name])
        else:
            missing.append(name)
    if missing:
        raise MissingTaskEmbeddingError(
            f"{len(missing)} task(s) missing from {path}: {', '.join(missing)}; recompute the table with "
            f"`python -m torchrl_newt.embed --tasks ... --out {path}`"
        )
    if stale:
        raise ValueError(
            f"task texts changed since {path} was computed (recompute it, or pass check_texts=False): "
            + "; ".join(stale)
        )
    return t.table[torch.as_tensor(rows, dtype=torch.long)].clone()
