"""Frozen CLIP text embeddings for language-conditioned multitask world models.

Newt conditions every component (encoder, dynamics, reward, policy, Q) on a frozen 512-d
embedding of the task's text ``"{embodiment}. {instruction}."`` (:attr:`TaskSpec.text`). The
embedding is the mean over all token positions (BOS and EOS included) of the
``last_hidden_state`` of the CLIP ViT-B/32 text transformer, with no projection and no
normalisation.

**Shipped table (the default for MMBench tasks, offline).** ``data/mmbench_clip_text.npz`` holds
Newt's own frozen CLIP instruction embeddings for all 234 MMBench tasks (the 200 training tasks
in soup order, then the 34 held-out tasks): the ``text_embedding`` field of ``tasks.json`` in
https://github.com/nicklashansen/newt, computed by Newt with the text model of CLIP
``openai/clip-vit-base-patch32`` as the mean of ``last_hidden_state`` over all tokens of
``"{embodiment}. {instruction}."`` (one text per call, no projection, no normalisation), exported
rounded to 6 significant digits and stored as float32 ``[234, 512]`` by
``scripts/make_clip_table.py``. :func:`task_embeddings` returns these rows for MMBench tasks
without loading any weights, importing :mod:`transformers` or touching the network;
:func:`newt_task_embeddings` reads only the table.

Other texts (tasks added with :func:`~torchrl_newt.envs.register_task`, edited instructions, raw
strings) are computed with :mod:`transformers` (``pip install -e .[language]``), cached on disk,
never downloading anything unless explicitly allowed:

* :func:`task_embeddings` returns a ``[num_tasks, dim]`` table for task names, :class:`TaskSpec`
  objects or raw strings: shipped rows where the text is in Newt's table (``source="auto"``, the
  default), CLIP for the rest, computed in batches (attention-mask weighted mean, so padding never
  changes a text's embedding) and cached per model id, model files and exact text.
  ``source="newt"`` uses only the table, ``source="clip"`` always runs the model.
* :func:`task_embeddings_or_none` returns ``None`` with a single warning when the weights are
  needed but not available offline, so callers can fall back to learnable task embeddings
  (TD-MPC2 style).
* :func:`save_task_table` / :func:`load_task_table` store a precomputed table (see
  ``python -m torchrl_newt.embed``) for machines without the weights.

Weights are looked up, in order, in a local directory given as ``model``, in the directory named by
``TORCHRL_NEWT_CLIP_PATH`` (when ``model`` is the default id) and in the Hugging Face cache.

This module holds the task-embedding API (:func:`task_embeddings`, :func:`task_embeddings_or_none`,
:func:`model_fingerprint`) and its on-disk cache. The pieces it combines live in one module each,
and every name stays importable from here:

* :mod:`torchrl_newt.modules.pretrained`: finding and loading Hugging Face models offline
  (:class:`ModelUnavailable`);
* :mod:`torchrl_newt.modules.clip_text`: the CLIP text embedder (:class:`CLIPTextEmbedder`,
  :func:`build_tiny_clip_text`, :func:`mean_pool`, :func:`task_texts`);
* :mod:`torchrl_newt.modules.task_tables`: Newt's shipped table (:func:`newt_task_embeddings`,
  :func:`load_newt_table`) and saved tables (:func:`save_task_table`, :func:`load_task_table`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from torchrl_newt.checkpoint import atomic_save
from torchrl_newt.envs.registry import MissingDependencyError, TaskSpec

# The loading helpers, the embedder and the tables live in their own modules; their names stay
# importable from here (``torchrl_newt.modules.vision`` and ``torchrl_newt.embed`` use them).
from torchrl_newt.modules.clip_text import (  # noqa: F401
    CLIP_PATH_ENV,
    CLIP_TEXT_DIM,
    DEFAULT_CLIP_MODEL,
    _RECIPE,
    CLIPTextEmbedder,
    LanguageModelUnavailable,
    _default_device,
    build_tiny_clip_text,
    mean_pool,
    task_texts,
)
from torchrl_newt.modules.pretrained import (  # noqa: F401
    ModelUnavailable,
    _check_download_flags,
    _fingerprint_dir,
    _hf_cache_location,
    _require_transformers,
    _resolve_pretrained,
    _unavailable_message,
)
from torchrl_newt.modules.task_tables import (  # noqa: F401
    _TABLE_FORMAT,
    NEWT_TABLE_FILE,
    MissingTaskEmbeddingError,
    NewtTextTable,
    _newt_table,
    _read_table,
    _Table,
    _task_label,
    load_newt_table,
    load_task_table,
    newt_task_embeddings,
    save_task_table,
)

__all__ = [
    "CLIP_TEXT_DIM",
    "DEFAULT_CLIP_MODEL",
    "CLIPTextEmbedder",
    "LanguageModelUnavailable",
    "MissingTaskEmbeddingError",
    "ModelUnavailable",
    "NEWT_TABLE_FILE",
    "NewtTextTable",
    "build_tiny_clip_text",
    "default_cache_dir",
    "load_newt_table",
    "load_task_table",
    "mean_pool",
    "model_fingerprint",
    "newt_task_embeddings",
    "save_task_table",
    "task_embeddings",
    "task_embeddings_or_none",
    "task_texts",
]

logger = logging.getLogger(__name__)

CACHE_ENV = "TORCHRL_NEWT_CACHE"


def default_cache_dir() -> Path:
    """Where embeddings are cached: ``$TORCHRL_NEWT_CACHE`` or ``~/.cache/torchrl_newt``.

    Examples:
        >>> isinstance(default_cache_dir(), Path)
        True
    """
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path("~/.cache/torchrl_newt").expanduser()


# ----------------------------------------------------------------------------------------------
# the on-disk embedding cache
# ----------------------------------------------------------------------------------------------
def _cache_file(cache_dir: Path, model_id: str, fingerprint: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("_")[-80:] or "model"
    return cache_dir / "text_embeddings" / f"{slug}-{fingerprint[:24]}.pt"


def _read_cache(path: Path, fingerprint: str) -> dict[str, torch.Tensor]:
    if not path.is_file():
        return {}
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - truncated/corrupt file: recompute
        logger.warning("ignoring unreadable embedding cache %s (%s)", path, err)
        return {}
    if not isinstance(blob, dict) or blob.get("fingerprint") != fingerprint or blob.get("recipe") != _RECIPE:
        return {}
    return dict(blob.get("embeddings", {}))


def _write_cache(path: Path, model_id: str, fingerprint: str, new: dict[str, torch.Tensor]) -> None:
    try:
        merged = _read_cache(path, fingerprint)  # re-read: keep entries other processes added
        merged.update(new)
        blob = {"model": model_id, "fingerprint": fingerprint, "recipe": _RECIPE, "embeddings": merged}
        atomic_save(blob, path)
        logger.debug("cached %d new embeddings in %s", len(new), path)
    except OSError as err:
        logger.warning("could not write the embedding cache %s (%s); continuing without it", path, err)


# ----------------------------------------------------------------------------------------------
# task embeddings: shipped rows, cache, model
# ----------------------------------------------------------------------------------------------
def _is_default_model(model: str | os.PathLike | CLIPTextEmbedder) -> bool:
    return not isinstance(model, CLIPTextEmbedder) and os.fspath(model) == DEFAULT_CLIP_MODEL


def task_embeddings(
    tasks: Sequence[str | TaskSpec],
    model: str | os.PathLike | CLIPTextEmbedder = DEFAULT_CLIP_MODEL,
    *,
    source: Literal["auto", "newt", "clip"] = "auto",
    device: str | torch.device | None = None,
    batch_size: int = 64,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = True,
    allow_download: bool = False,
    revision: str | None = None,
    hf_cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: bool = False,
) -> torch.Tensor:
    """Frozen CLIP text embeddings of tasks, ``[len(tasks), dim]`` (``dim`` = 512 for CLIP B/32).

    With the default ``model`` and ``source="auto"``, every task whose text is in Newt's shipped
    table (the 234 MMBench tasks, see :func:`newt_task_embeddings`) gets Newt's own vector, with no
    weights, no :mod:`transformers` and no network; only the other texts (user-registered tasks,
    edited instructions, raw strings) go through the model.

    The model path: each text (:func:`task_texts`) goes through the CLIP tokenizer (padding,
    truncation) and text transformer; the embedding is the mean of ``last_hidden_state`` over its
    real tokens, BOS and EOS included, without projection or normalisation, identical to embedding
    each text alone (it reproduces the shipped vectors to cosine > 0.999). Results are cached under
    ``cache_dir`` keyed by the model id, a fingerprint of the model files (config, tokenizer,
    weights) and the exact text, so a cache hit never loads the model and editing an instruction
    recomputes only that text.

    Args:
        tasks: task names, :class:`TaskSpec` objects, or raw texts (strings with whitespace).
        model: a local directory, a Hugging Face id, or a ready :class:`CLIPTextEmbedder`.
        source: ``"auto"``: Newt's shipped rows where available when ``model`` is the default id
            (:data:`DEFAULT_CLIP_MODEL`), the model for everything else; ``"newt"``: the shipped
            table only (raises :class:`MissingTaskEmbeddingError` for other tasks; ``model`` must be
            the default); ``"clip"``: always run ``model``.
        device: where to run the model (default: CUDA if available, else CPU). The returned table
            is always a float32 CPU tensor.
        batch_size: texts per forward pass.
        cache_dir: cache root (default: :func:`default_cache_dir`).
        local_files_only: kept for parity with :mod:`transformers`; see ``allow_download``.
        allow_download: the only switch that permits downloading weights from the Hub.
        revision: hub revision to look up in the Hugging Face cache.
        hf_cache_dir: the Hugging Face cache to search (default: the standard one).
        use_cache: read/write the on-disk embedding cache.
        progress: show a progress bar while embedding.

    Raises:
        LanguageModelUnavailable: some texts need the model, whose weights are neither local nor
            cached, and downloads are off (the message lists the tasks not in Newt's table).
        MissingDependencyError: some texts need the model and :mod:`transformers` is not installed
            (``pip install -e .[language]``).
        MissingTaskEmbeddingError: ``source="newt"`` and some tasks are not in the shipped table.
        UnknownTaskError: a task name is not registered.

    Examples:
        >>> task_embeddings(["walker-walk", "mujoco-ant"]).shape  # Newt's shipped vectors, offline
        torch.Size([2, 512])
        >>> import tempfile
        >>> tmp = tempfile.mkdtemp()
        >>> _ = build_tiny_clip_text(f"{tmp}/tiny-clip")  # stands in for a local CLIP checkout
        >>> table = task_embeddings(["walker-walk", "cartpole-swingup"], f"{tmp}/tiny-clip", cache_dir=tmp)
        >>> table.shape, table.dtype
        (torch.Size([2, 32]), torch.float32)
        >>> torch.equal(task_embeddings(["walker-walk"], f"{tmp}/tiny-clip", cache_dir=tmp), table[:1])
        True
    """
    if source not in ("auto", "newt", "clip"):
        raise ValueError(f"source must be 'auto', 'newt' or 'clip', got {source!r}")
    download = _check_download_flags(local_files_only, allow_download)
    texts = task_texts(tasks)
    if not texts:
        raise ValueError("task_embeddings() needs at least one task")
    if source == "newt":
        if not _is_default_model(model):
            raise ValueError(
                f"source='newt' returns Newt's shipped {DEFAULT_CLIP_MODEL} vectors; it cannot use "
                f"model={model!r} (pass source='clip' to run that model)"
            )
        return newt_task_embeddings(tasks)

    rows: dict[str, torch.Tensor] = {}
    if source == "auto" and _is_default_model(model):
        shipped, by_text = _newt_table()
        rows = {t: shipped.embeddings[by_text[t]] for t in texts if t in by_text}
    todo = list(dict.fromkeys(t for t in texts if t not in rows))
    if rows:
        logger.debug("task_embeddings: %d texts from Newt's shipped table, %d for the model", len(rows), len(todo))
    if todo:
        try:
            computed = _model_embeddings(
                todo,
                model,
                download=download,
                device=device,
                batch_size=batch_size,
                cache_dir=cache_dir,
                revision=revision,
                hf_cache_dir=hf_cache_dir,
                use_cache=use_cache,
                progress=progress,
            )
        except (ModelUnavailable, MissingDependencyError) as err:
            if not rows:
                raise
            needed = set(todo)
            outside = list(dict.fromkeys(_task_label(k) for k, t in zip(tasks, texts) if t in needed))
            raise type(err)(
                f"{len(outside)} task(s) are not in Newt's shipped CLIP table and need the CLIP model "
                f"({', '.join(outside)}): {err}"
            ) from err
        if rows and computed and next(iter(computed.values())).shape[-1] != CLIP_TEXT_DIM:
            raise ValueError(
                f"the model {model!r} gives {next(iter(computed.values())).shape[-1]}-d embeddings, which "
                f"cannot be mixed with Newt's {CLIP_TEXT_DIM}-d shipped rows; pass source='clip' to embed "
                f"every task with it"
            )
        rows.update(computed)
    return torch.stack([rows[t] for t in texts]).to(torch.float32).clone()


def _model_embeddings(
    texts: list[str],
    model: str | os.PathLike | CLIPTextEmbedder,
    *,
    download: bool,
    device: str | torch.device | None,
    batch_size: int,
    cache_dir: str | os.PathLike | None,
    revision: str | None,
    hf_cache_dir: str | os.PathLike | None,
    use_cache: bool,
    progress: bool,
) -> dict[str, torch.Tensor]:
    """``{text: embedding}`` for unique texts, from the on-disk cache or the model."""
    embedder: CLIPTextEmbedder | None = None
    if isinstance(model, CLIPTextEmbedder):
        embedder = model
        if device is not None:
            embedder = embedder.to(device)
        model_id, fingerprint = embedder.name, embedder.fingerprint
    else:
        directory, model_id = _resolve_pretrained(
            model, revision=revision, hf_cache_dir=hf_cache_dir, env_var=CLIP_PATH_ENV, default_id=DEFAULT_CLIP_MODEL
        )
        if directory is None:
            if not download:
                raise LanguageModelUnavailable(_unavailable_message("CLIP text", model_id, hf_cache_dir, CLIP_PATH_ENV))
            embedder = CLIPTextEmbedder.from_pretrained(
                model, device=device, revision=revision, allow_download=True, hf_cache_dir=hf_cache_dir
            )
            model_id, fingerprint = embedder.name, embedder.fingerprint
        else:
            fingerprint = _fingerprint_dir(directory, _RECIPE)

    cached: dict[str, torch.Tensor] = {}
    cache_file = None
    if use_cache:
        cache_file = _cache_file(
            Path(cache_dir) if cache_dir is not None else default_cache_dir(), model_id, fingerprint
        )
        cached = _read_cache(cache_file, fingerprint)
    missing = [t for t in texts if t not in cached]
    logger.debug(
        "task_embeddings: %d texts, %d cached, %d to compute", len(texts), len(texts) - len(missing), len(missing)
    )
    if missing:
        if embedder is None:
            embedder = CLIPTextEmbedder.from_pretrained(
                model, device=device, revision=revision, hf_cache_dir=hf_cache_dir
            )
            embedder._fingerprint = fingerprint
        new = embedder(missing, batch_size=batch_size, progress=progress)
        computed = {text: row.clone() for text, row in zip(missing, new)}
        cached.update(computed)
        if cache_file is not None:
            _write_cache(cache_file, model_id, fingerprint, computed)
    return {t: cached[t] for t in texts}


def model_fingerprint(
    model: str | os.PathLike | CLIPTextEmbedder = DEFAULT_CLIP_MODEL,
    *,
    revision: str | None = None,
    hf_cache_dir: str | os.PathLike | None = None,
) -> tuple[str, str]:
    """The ``(model_id, fingerprint)`` pair that keys the embedding cache, without loading weights.

    Raises:
        LanguageModelUnavailable: the model is not on this machine.

    Examples:
        >>> import tempfile
        >>> path = f"{tempfile.mkdtemp()}/tiny"
        >>> fp = build_tiny_clip_text(path).fingerprint
        >>> model_fingerprint(path)[1] == fp
        True
    """
    if isinstance(model, CLIPTextEmbedder):
        return model.name, model.fingerprint
    directory, model_id = _resolve_pretrained(
        model, revision=revision, hf_cache_dir=hf_cache_dir, env_var=CLIP_PATH_ENV, default_id=DEFAULT_CLIP_MODEL
    )
    if directory is None:
        raise LanguageModelUnavailable(_unavailable_message("CLIP text", model_id, hf_cache_dir, CLIP_PATH_ENV))
    return model_id, _fingerprint_dir(directory, _RECIPE)


_WARNED: set[str] = set()


def task_embeddings_or_none(
    tasks: Sequence[str | TaskSpec],
    model: str | os.PathLike | CLIPTextEmbedder = DEFAULT_CLIP_MODEL,
    **kwargs: Any,
) -> torch.Tensor | None:
    """Like :func:`task_embeddings`, but returns ``None`` when the language model is unavailable.

    With the default ``model``, MMBench tasks come from Newt's shipped table, so a list of MMBench
    tasks always gets its (language-conditioned) table, offline; ``None`` only happens when some
    task needs the model (a user-registered task, an edited instruction, another ``model`` or
    ``source="clip"``) and its weights or :mod:`transformers` are missing. Logs one warning (once
    per model per process) explaining why and how to fix it, so callers can fall back to learnable
    task embeddings (TD-MPC2's multitask setup) for all tasks instead of failing.

    Examples:
        >>> task_embeddings_or_none(["walker-walk", "cheetah-run"]).shape
        torch.Size([2, 512])
        >>> import tempfile
        >>> task_embeddings_or_none(["walker-walk"], model=f"{tempfile.mkdtemp()}/no-such-model") is None
        True
    """
    try:
        return task_embeddings(tasks, model, **kwargs)
    except (ModelUnavailable, MissingDependencyError) as err:
        key = os.fspath(model) if not isinstance(model, CLIPTextEmbedder) else model.name
        if key not in _WARNED:
            _WARNED.add(key)
            logger.warning("language conditioning is unavailable, falling back to learnable task embeddings: %s", err)
        return None
