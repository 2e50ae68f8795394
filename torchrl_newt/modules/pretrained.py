"""Finding and loading pretrained Hugging Face models offline (shared by the CLIP and DINOv2 helpers).

Weights are looked up, without any network access, in a local directory given as ``model``, in a
directory named by an environment variable (for the default id) and in the Hugging Face cache;
downloads only ever happen with ``allow_download=True``. Model directories are fingerprinted by
content (large weight files by blob id or size and mtime) to key on-disk caches.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from torchrl_newt.envs.registry import MissingDependencyError

__all__ = ["ModelUnavailable"]

logger = logging.getLogger(__name__)

_SMALL_FILE = 1 << 20  # files up to 1 MiB are fingerprinted by content, larger ones by stat / blob id


class ModelUnavailable(OSError):
    """Pretrained weights are neither in a local directory nor in the Hugging Face cache."""


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
