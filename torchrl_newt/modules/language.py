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
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from torchrl_newt.checkpoint import atomic_save
from torchrl_newt.envs.registry import (
    MissingDependencyError,
    TaskSpec,
    UnknownTaskError,
    get_task,
)

if TYPE_CHECKING:  # pragma: no cover
    from transformers import CLIPTextModel, CLIPTokenizer

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

DEFAULT_CLIP_MODEL = "openai/clip-vit-base-patch32"
"""The Hugging Face id of Newt's text encoder."""
CLIP_TEXT_DIM = 512
"""Width of the ViT-B/32 text transformer (the embedding size of the real model)."""
CLIP_PATH_ENV = "TORCHRL_NEWT_CLIP_PATH"
NEWT_TABLE_FILE = Path(__file__).resolve().with_name("data") / "mmbench_clip_text.npz"
"""Newt's CLIP text embeddings of the 234 MMBench tasks, shipped as package data (see the module docstring)."""
CACHE_ENV = "TORCHRL_NEWT_CACHE"

# Bump whenever the way an embedding is computed changes: it is part of every cache key.
_RECIPE = "clip-text/last_hidden_state/masked-mean-incl-bos-eos/truncate-max-pos/fp32/v1"
_TABLE_FORMAT = "torchrl_newt/task-table"
_SMALL_FILE = 1 << 20  # files up to 1 MiB are fingerprinted by content, larger ones by stat / blob id


# ----------------------------------------------------------------------------------------------
# errors and shared loading helpers (also used by torchrl_newt.modules.vision)
# ----------------------------------------------------------------------------------------------
class ModelUnavailable(OSError):
    """Pretrained weights are neither in a local directory nor in the Hugging Face cache."""


class LanguageModelUnavailable(ModelUnavailable):
    """The CLIP text weights are not available offline (and downloading was not allowed)."""


class MissingTaskEmbeddingError(KeyError):
    """Some requested tasks are absent from a precomputed task-embedding table."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


def _require_transformers(extra: str) -> Any:
    """Import :mod:`transformers` or raise an error naming the pip extra."""
    try:
        import transformers
    except ImportError as err:
        raise MissingDependencyError(
            f"this feature needs the `transformers` package; install it with "
            f"`pip install torchrl_newt[{extra}]` (or `pip install -e .[{extra}]` from a checkout)"
        ) from err
    return transformers


def _hf_cache_location(hf_cache_dir: str | os.PathLike | None) -> str:
    if hf_cache_dir is not None:
        return str(hf_cache_dir)
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except Exception:  # noqa: BLE001  # pragma: no cover - huggingface_hub ships with transformers
        return "~/.cache/huggingface/hub"


def _resolve_pretrained(
    model: str | os.PathLike,
    *,
    revision: str | None,
    hf_cache_dir: str | os.PathLike | None,
    env_var: str | None,
    default_id: str | None,
) -> tuple[Path | None, str]:
    """Find a model's files on this machine without any network access.

    Returns:
        ``(directory, model_id)``: the directory holding ``config.json`` (a local checkout or a
        Hugging Face cache snapshot), or ``None`` when the model is not on this machine, and the id
        used in cache keys (the absolute path for local directories).
    """
    model = os.fspath(model)
    if env_var and default_id and model == default_id and os.environ.get(env_var):
        env_path = Path(os.environ[env_var]).expanduser()
        if env_path.is_dir():
            logger.info("using %s=%s for %s", env_var, env_path, model)
            return env_path.resolve(), str(env_path.resolve())
        logger.warning("%s=%s is not a directory; ignoring it", env_var, env_path)
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve(), str(path.resolve())
    if model.startswith((".", "/", "~")) or path.is_file() or model.count("/") > 1:
        return None, model  # an explicit path that does not exist (or is not a directory)
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model, "config.json", cache_dir=hf_cache_dir, revision=revision)
    except Exception as err:  # noqa: BLE001 - invalid repo id, unreadable cache...
        logger.debug("Hugging Face cache lookup for %r failed: %s", model, err)
        found = None
    if isinstance(found, str) and os.path.isfile(found):
        return Path(found).parent, model
    return None, model


def _unavailable_message(what: str, model: str, hf_cache_dir, env_var: str | None) -> str:
    env_hint = f", or set {env_var}=/path/to/model" if env_var else ""
    return (
        f"{what} weights {model!r} are not available offline: not a local directory and not in the "
        f"Hugging Face cache ({_hf_cache_location(hf_cache_dir)}). Pass a local directory as model="
        f"{env_hint}, pre-populate the Hugging Face cache on a machine with network access, or pass "
        f"allow_download=True (CLI: --allow-download) to download it."
    )


def _check_download_flags(local_files_only: bool, allow_download: bool) -> bool:
    """Return whether a download may be attempted (only ever with ``allow_download=True``)."""
    if not local_files_only and not allow_download:
        raise ValueError(
            "local_files_only=False does not permit downloads on its own; pass allow_download=True "
            "to let torchrl_newt download pretrained weights"
        )
    return bool(allow_download)


def _fingerprint_dir(directory: Path, extra: str = "") -> str:
    """A content fingerprint of a model directory that never reads large weight files.

    Small files (configs, tokenizer files) are hashed by content; large files are identified by
    their Hugging Face blob id (a content hash, for cache snapshots) or by size and mtime.
    """
    h = hashlib.sha256(extra.encode())
    files = (p for p in directory.rglob("*") if p.is_file())
    for file in sorted(f for f in files if not any(part.startswith(".") for part in f.relative_to(directory).parts)):
        rel = file.relative_to(directory).as_posix()
        real = Path(os.path.realpath(file))
        stat = real.stat()
        h.update(rel.encode() + b"\0")
        if real.parent.name == "blobs":
            h.update(b"blob:" + real.name.encode())
        elif stat.st_size <= _SMALL_FILE:
            h.update(b"content:" + hashlib.sha256(real.read_bytes()).hexdigest().encode())
        else:
            h.update(f"stat:{stat.st_size}:{stat.st_mtime_ns}".encode())
        h.update(b"\0")
    return h.hexdigest()


def default_cache_dir() -> Path:
    """Where embeddings are cached: ``$TORCHRL_NEWT_CACHE`` or ``~/.cache/torchrl_newt``.

    Examples:
        >>> isinstance(default_cache_dir(), Path)
        True
    """
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path("~/.cache/torchrl_newt").expanduser()


# ----------------------------------------------------------------------------------------------
# texts and pooling
# ----------------------------------------------------------------------------------------------
def task_texts(tasks: Iterable[str | TaskSpec]) -> list[str]:
    """The text embedded for each task.

    A :class:`TaskSpec` or a registered task name gives :attr:`TaskSpec.text`
    (``"{embodiment}. {instruction}."``); any other string containing whitespace is used verbatim
    (task names never contain whitespace, so a mistyped name is an error, not a silent embedding).

    Raises:
        UnknownTaskError: a string without whitespace that is not a registered task.

    Examples:
        >>> task_texts(["walker-walk", "Pick up the red cube."])
        ['2D walker with 6 controllable joints across 2 legs. Walk forward at moderate speed.', 'Pick up the red cube.']
    """
    out = []
    for task in tasks:
        if isinstance(task, TaskSpec):
            out.append(task.text)
        elif isinstance(task, str):
            if task and not any(ch.isspace() for ch in task):
                out.append(get_task(task).text)  # raises UnknownTaskError with close matches
            elif task.strip():
                out.append(task)
            else:
                raise ValueError("cannot embed an empty text")
        else:
            raise TypeError(f"expected a task name, a TaskSpec or a string, got {type(task).__name__}")
    return out


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of the hidden states over real (unmasked) token positions.

    With ``attention_mask=None`` (or a mask of ones) this is the plain mean over all positions, the
    reference recipe for one text per call; with padding, pad positions are excluded so a batched
    text gets the same embedding as alone.

    Args:
        last_hidden_state: ``[batch, seq, dim]``.
        attention_mask: ``[batch, seq]`` with 1 for real tokens and 0 for padding.

    Returns:
        ``[batch, dim]``.

    Examples:
        >>> h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
        >>> mean_pool(h, torch.tensor([[1, 1, 0]]))
        tensor([[2., 3.]])
        >>> mean_pool(h[:, :2])
        tensor([[2., 3.]])
    """
    if attention_mask is None:
        return last_hidden_state.mean(dim=-2)
    mask = attention_mask.to(last_hidden_state.dtype).unsqueeze(-1)
    count = mask.sum(dim=-2).clamp_min(1.0)
    return (last_hidden_state * mask).sum(dim=-2) / count


# ----------------------------------------------------------------------------------------------
# the embedder
# ----------------------------------------------------------------------------------------------
class CLIPTextEmbedder(nn.Module):
    """A frozen CLIP text transformer + tokenizer that maps texts to mean-pooled embeddings.

    Args:
        text_model: a :class:`transformers.CLIPTextModel` (put in eval mode, gradients off).
        tokenizer: its :class:`transformers.CLIPTokenizer`.
        name: the model id used in cache keys (a hub id or an absolute path).
        fingerprint: identifies the exact weights/config/tokenizer; computed from the parameters
            and tokenizer when omitted (models loaded with :meth:`from_pretrained` use their files).

    Examples:
        >>> embedder = build_tiny_clip_text()  # random tiny model, for examples and tests
        >>> embedder(["2D walker. Walk.", "A longer text, so the batch gets padded."]).shape
        torch.Size([2, 32])
    """

    def __init__(
        self,
        text_model: CLIPTextModel,
        tokenizer: CLIPTokenizer,
        *,
        name: str = "custom",
        fingerprint: str | None = None,
    ) -> None:
        super().__init__()
        self.text_model = text_model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.name = name
        self._fingerprint = fingerprint

    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike = DEFAULT_CLIP_MODEL,
        *,
        device: str | torch.device | None = None,
        revision: str | None = None,
        local_files_only: bool = True,
        allow_download: bool = False,
        hf_cache_dir: str | os.PathLike | None = None,
    ) -> CLIPTextEmbedder:
        """Load CLIP's text transformer and tokenizer from a local directory or the HF cache.

        Args:
            model: a local directory or a Hugging Face id (``TORCHRL_NEWT_CLIP_PATH`` overrides the
                default id). A full CLIP checkpoint works: only its text tower is loaded.
            device: where to put the model (default: CUDA if available, else CPU).
            revision: hub revision (branch, tag or commit) to look up.
            local_files_only: kept for parity with :mod:`transformers`; downloads only ever happen
                with ``allow_download=True``.
            allow_download: permit downloading the weights from the Hugging Face Hub.
            hf_cache_dir: the Hugging Face cache to use (default: the standard one).

        Raises:
            LanguageModelUnavailable: the weights are not on this machine and downloading is off.
            MissingDependencyError: :mod:`transformers` is not installed.
        """
        download = _check_download_flags(local_files_only, allow_download)
        transformers = _require_transformers("language")
        directory, model_id = _resolve_pretrained(
            model, revision=revision, hf_cache_dir=hf_cache_dir, env_var=CLIP_PATH_ENV, default_id=DEFAULT_CLIP_MODEL
        )
        if directory is None:
            if not download:
                raise LanguageModelUnavailable(_unavailable_message("CLIP text", model_id, hf_cache_dir, CLIP_PATH_ENV))
            logger.warning("downloading %s from the Hugging Face Hub (allow_download=True)", model_id)
            kw = {"revision": revision, "cache_dir": hf_cache_dir, "local_files_only": False}
            tokenizer = transformers.CLIPTokenizer.from_pretrained(model_id, **kw)
            text_model = transformers.CLIPTextModel.from_pretrained(model_id, **kw)
            directory, _ = _resolve_pretrained(
                model_id, revision=revision, hf_cache_dir=hf_cache_dir, env_var=None, default_id=None
            )
        else:
            logger.info("loading CLIP text model from %s", directory)
            try:
                if not any((directory / f).is_file() for f in ("tokenizer.json", "vocab.json")):
                    # CLIPTokenizer would silently fall back to a 3-token vocabulary
                    raise OSError(f"no tokenizer files (tokenizer.json or vocab.json + merges.txt) in {directory}")
                tokenizer = transformers.CLIPTokenizer.from_pretrained(directory, local_files_only=True)
                text_model = transformers.CLIPTextModel.from_pretrained(directory, local_files_only=True)
            except OSError as err:  # e.g. a partial cache snapshot without weights or tokenizer files
                raise LanguageModelUnavailable(
                    f"CLIP text model {model_id!r} was found at {directory} but could not be loaded "
                    f"offline ({err}); re-download it or point model= to a complete checkout"
                ) from err
        fingerprint = _fingerprint_dir(directory, _RECIPE) if directory is not None else None
        embedder = cls(text_model.float(), tokenizer, name=model_id, fingerprint=fingerprint)
        return embedder.to(_default_device(device))

    @property
    def dim(self) -> int:
        """Embedding size (the text transformer's hidden size)."""
        return int(self.text_model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.text_model.parameters()).device

    @property
    def max_length(self) -> int:
        """Truncation length: the tokenizer's limit, capped by the model's position embeddings."""
        return int(min(self.tokenizer.model_max_length, self.text_model.config.max_position_embeddings))

    @property
    def fingerprint(self) -> str:
        """A hash identifying the weights, config, tokenizer and pooling recipe (for cache keys)."""
        if self._fingerprint is None:
            h = hashlib.sha256(_RECIPE.encode())
            h.update(self.text_model.config.to_json_string().encode())
            backend = getattr(self.tokenizer, "backend_tokenizer", None)
            h.update((backend.to_str() if backend is not None else repr(self.tokenizer.get_vocab())).encode())
            for key, value in sorted(self.text_model.state_dict().items()):
                h.update(key.encode())
                h.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    @torch.no_grad()
    def forward(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> torch.Tensor:
        """Embed texts: ``[len(texts), dim]`` float32 on the CPU.

        Args:
            texts: the strings to embed.
            batch_size: texts per forward pass (padding is masked out of the mean, so the result
                does not depend on it).
            progress: show a tqdm progress bar over batches.
        """
        texts = list(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if not texts:
            return torch.zeros(0, self.dim)
        chunks = [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]
        iterator: Iterable[list[str]] = chunks
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(chunks, desc=f"embedding {len(texts)} texts", unit="batch")
        out = []
        device = self.device
        for chunk in iterator:
            enc = self.tokenizer(chunk, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
            enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            hidden = self.text_model(**enc).last_hidden_state.float()
            out.append(mean_pool(hidden, enc["attention_mask"]).cpu())
        return torch.cat(out)


def _default_device(device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_tiny_clip_text(
    save_dir: str | os.PathLike | None = None,
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    seed: int = 0,
) -> CLIPTextEmbedder:
    """A randomly initialised tiny CLIP text model with a byte-level tokenizer, built offline.

    For tests, examples and benchmarks of the plumbing only: the embeddings are meaningless. The
    tokenizer covers every byte (so any text tokenizes), with a handful of merges, and keeps CLIP's
    special tokens (``<|startoftext|>`` = BOS, ``<|endoftext|>`` = EOS = pad).

    Args:
        save_dir: if given, also ``save_pretrained`` model and tokenizer there, so the directory
            can be passed as ``model=`` to :func:`task_embeddings`.
        hidden_size: embedding size.
        num_layers: transformer layers.
        seed: initialisation seed.

    Examples:
        >>> tiny = build_tiny_clip_text(hidden_size=16)
        >>> tiny.dim, tiny.tokenizer.bos_token_id, tiny.tokenizer.eos_token_id
        (16, 0, 1)
    """
    transformers = _require_transformers("language")
    from tokenizers.pre_tokenizers import ByteLevel

    alphabet = sorted(ByteLevel.alphabet())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in alphabet:
        vocab.setdefault(ch, len(vocab))
    for ch in alphabet:
        vocab.setdefault(ch + "</w>", len(vocab))
    merges = [("t", "h"), ("th", "e</w>"), ("w", "a"), ("wa", "l"), ("wal", "k</w>"), ("a", "n"), ("an", "d</w>")]
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    tokenizer = transformers.CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    config = transformers.CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        projection_dim=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        max_position_embeddings=77,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_model = transformers.CLIPTextModel(config).eval()
    if save_dir is None:
        return CLIPTextEmbedder(text_model, tokenizer, name=f"tiny-clip-text-{hidden_size}-{num_layers}-{seed}")
    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(save_dir)
    text_model.save_pretrained(save_dir)
    return CLIPTextEmbedder(
        text_model, tokenizer, name=str(save_dir.resolve()), fingerprint=_fingerprint_dir(save_dir, _RECIPE)
    )


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


# ----------------------------------------------------------------------------------------------
# precomputed tables
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
