"""The frozen CLIP text embedder: Newt's recipe for turning task texts into vectors.

The embedding of a text is the mean over all token positions (BOS and EOS included) of the
``last_hidden_state`` of the CLIP ViT-B/32 text transformer, with no projection and no
normalisation; batched texts mask their padding out of the mean, so a text gets the same vector
alone or in a batch. :func:`task_texts` gives the text of a task (``"{embodiment}. {instruction}."``),
:class:`CLIPTextEmbedder` loads the model offline (:mod:`torchrl_newt.modules.pretrained`) and
:func:`build_tiny_clip_text` builds a random tiny one for tests and examples.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from torchrl_newt.envs.registry import TaskSpec, get_task
from torchrl_newt.modules.pretrained import (
    ModelUnavailable,
    _check_download_flags,
    _fingerprint_dir,
    _require_transformers,
    _resolve_pretrained,
    _unavailable_message,
)

if TYPE_CHECKING:  # pragma: no cover
    from transformers import CLIPTextModel, CLIPTokenizer

__all__ = [
    "CLIP_TEXT_DIM",
    "DEFAULT_CLIP_MODEL",
    "CLIPTextEmbedder",
    "LanguageModelUnavailable",
    "build_tiny_clip_text",
    "mean_pool",
    "task_texts",
]

logger = logging.getLogger(__name__)

DEFAULT_CLIP_MODEL = "openai/clip-vit-base-patch32"
"""The Hugging Face id of Newt's text encoder."""
CLIP_TEXT_DIM = 512
"""Width of the ViT-B/32 text transformer (the embedding size of the real model)."""
CLIP_PATH_ENV = "TORCHRL_NEWT_CLIP_PATH"

# Bump whenever the way an embedding is computed changes: it is part of every cache key.
_RECIPE = "clip-text/last_hidden_state/masked-mean-incl-bos-eos/truncate-max-pos/fp32/v1"


class LanguageModelUnavailable(ModelUnavailable):
    """The CLIP text weights are not available offline (and downloading was not allowed)."""


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
