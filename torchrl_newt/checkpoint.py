"""Atomic checkpoints: nothing is lost if a job dies (or is preempted) while writing one.

A checkpoint is written to a temporary file in the destination folder, flushed and fsync-ed,
then renamed over the destination with :func:`os.replace` (atomic on POSIX), so a reader sees
either the previous complete file or the new complete file, never a truncated one. Files get the
permissions ``open()`` would give them (``0666`` minus the umask, usually ``0644``); the temporary
files a killed write leaves behind (``.NAME.*.tmp``) are removed by :func:`remove_stale_temp_files`.

:func:`load_checkpoint` turns an empty, truncated or foreign file into a :class:`CheckpointError`
that says which, and :func:`compact_replay_state` / :func:`expand_replay_state` store a replay
buffer by the data it holds rather than by its capacity.
"""

from __future__ import annotations

import logging
import copy
import os
import pickle
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "CheckpointError",
    "atomic_save",
    "atomic_write_text",
    "compact_replay_state",
    "expand_replay_state",
    "latest_checkpoint",
    "load_checkpoint",
    "remove_stale_temp_files",
    "rng_state",
    "set_rng_state",
]

logger = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint file cannot be used: empty, truncated, not a checkpoint, or for another run."""


def _umask() -> int:
    """The process umask, read without changing it where Linux allows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no race-free read elsewhere: set and restore at once
    os.umask(mask)
    return mask


def _atomic_write(path: str | os.PathLike, write: Any) -> Path:
    """Write ``path`` through ``write(binary_file)`` into a temporary file, then rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` that never leaves a partial file at ``path``.

    The file gets the mode a plain ``open(path, "wb")`` would give (``0666 & ~umask``).

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = atomic_save({"step": 3}, f"{d}/ckpt.pt")
        ...     torch.load(p)["step"], oct(p.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
        (3, True)
    """
    return _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, with the mode of a plain ``open(path, "w")``.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = atomic_write_text('{"a": 1}', f"{d}/scores.json")
        ...     p.read_text(), [f.name for f in p.parent.iterdir()]
        ('{"a": 1}', ['scores.json'])
    """
    return _atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def remove_stale_temp_files(folder: str | os.PathLike, names: tuple[str, ...] = ("checkpoint.pt",)) -> list[Path]:
    """Delete the temporary files that killed :func:`atomic_save` calls left in ``folder``.

    Only ``.NAME.*.tmp`` files of the given ``names`` are touched. Call it when no other process
    writes to ``folder``. Returns the removed paths.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = (Path(d) / ".checkpoint.pt.x1y2.tmp").write_bytes(b"partial")
        ...     [p.name for p in remove_stale_temp_files(d)], list(Path(d).iterdir())
        (['.checkpoint.pt.x1y2.tmp'], [])
    """
    removed = []
    folder = Path(folder)
    for name in names:
        for tmp in folder.glob(f".{name}.*.tmp"):
            try:
                tmp.unlink()
            except FileNotFoundError:
                continue
            removed.append(tmp)
    if removed:
        logger.info("removed %d stale temporary file(s) in %s", len(removed), folder)
    return removed


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", *, required: tuple[str, ...] = ()) -> dict:
    """Load a checkpoint written by :func:`atomic_save`, with a clear error for a bad file.

    Args:
        path: the file.
        map_location: as in :func:`torch.load`.

    Keyword Args:
        required: top-level keys the checkpoint must have (a dict without them is foreign).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is empty, truncated or not a (matching) checkpoint.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = (Path(d) / "empty.pt").write_bytes(b"")
        ...     try:
        ...         load_checkpoint(f"{d}/empty.pt")
        ...     except CheckpointError as err:
        ...         print(str(err).split(":")[-1].strip())
        the file is empty (a write that never happened)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"cannot resume from {path}: the file is empty (a write that never happened)")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=False)
    except (EOFError, RuntimeError, pickle.UnpicklingError, ValueError, OSError) as err:
        raise CheckpointError(
            f"cannot resume from {path}: it is truncated or not a torch checkpoint ({size} bytes; "
            f"{type(err).__name__}: {str(err)[:200]})"
        ) from err
    if required and not (isinstance(obj, dict) and all(k in obj for k in required)):
        keys = sorted(map(str, obj))[:10] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(
            f"cannot resume from {path}: it is not a training checkpoint of this program (expected keys "
            f"{list(required)}, found {keys}); to start from another model's weights use --init-from/--finetune"
        )
    return obj


# ---------------------------------------------------------------------------------------- replay
def _filled_rows(state: dict) -> tuple[int, int] | None:
    """(rows written, row capacity) of a 2-D TorchRL tensor storage's state, if it is one."""
    storage = state.get("_storage")
    data = storage.get("_storage") if isinstance(storage, dict) else None
    writer = state.get("_writer", {})
    if not isinstance(data, dict) or not data or "_write_count" not in writer:
        return None
    leaves = _leaves(data)
    if not leaves:
        return None
    capacity = leaves[0].shape[0]
    return min(int(writer["_write_count"]), capacity), capacity


def _leaves(d: dict) -> list[torch.Tensor]:
    out = []
    for v in d.values():
        out += _leaves(v) if isinstance(v, dict) else [v] if isinstance(v, torch.Tensor) else []
    return out


def _map_tensors(d: dict, fn, rows: int | None = None) -> dict:
    """``d`` with ``fn`` applied to its tensors (type and TensorDict ``_metadata`` kept; with
    ``rows``, the recorded batch sizes get ``rows`` as first dim)."""
    out = type(d)()
    for k, v in d.items():
        out[k] = _map_tensors(v, fn, rows) if isinstance(v, dict) else fn(v) if isinstance(v, torch.Tensor) else v
    meta = getattr(d, "_metadata", None)
    if meta is not None:
        meta = copy.deepcopy(meta)
        if rows is not None:
            for entry in meta.values():
                bs = entry.get("batch_size") if isinstance(entry, dict) else None
                if bs is not None and len(bs):
                    entry["batch_size"] = torch.Size([rows, *bs[1:]])
        out._metadata = meta
    return out


def compact_replay_state(state: dict) -> dict:
    """A replay buffer's ``state_dict()`` cut down to the rows written so far.

    A lazily allocated storage holds its whole capacity; only the rows written (all of them once
    the buffer wrapped around) are kept, with the capacity noted for :func:`expand_replay_state`.
    Other states are returned unchanged.

    Examples:
        >>> from tensordict import TensorDict
        >>> from torchrl_newt.data import MultitaskReplayBuffer
        >>> rb = MultitaskReplayBuffer(1000, slice_len=2)
        >>> td = TensorDict({"task": torch.zeros(2, 5, dtype=torch.long), "step_count": torch.arange(5).expand(2, 5),
        ...     ("collector", "traj_ids"): torch.tensor([[0], [1]]).expand(2, 5)}, batch_size=[2, 5])
        >>> _ = rb.extend(td)
        >>> small = compact_replay_state(rb.state_dict())
        >>> small["_storage"]["_storage"]["task"].shape, small["_compact_capacity_rows"]
        (torch.Size([5, 2]), 500)
        >>> rb2 = MultitaskReplayBuffer(1000, slice_len=2)
        >>> rb2.load_state_dict(expand_replay_state(small))
        >>> len(rb2), rb2.sample(3).shape
        (10, torch.Size([3, 2]))
    """
    if "_compact_capacity_rows" in state:
        return state
    info = _filled_rows(state)
    if info is None:
        return state
    rows, capacity = info
    out = dict(state)
    out["_storage"] = dict(state["_storage"])
    out["_storage"]["_storage"] = _map_tensors(state["_storage"]["_storage"], lambda t: t[:rows].clone(), rows)
    sampler = state.get("_sampler")
    if isinstance(sampler, dict) and isinstance(sampler.get("priority"), torch.Tensor):
        lanes = sampler["priority"].numel() // capacity if capacity else 0
        out["_sampler"] = dict(sampler, priority=sampler["priority"][: rows * lanes].clone())
    out["_compact_capacity_rows"] = capacity
    return out


def expand_replay_state(state: dict) -> dict:
    """Undo :func:`compact_replay_state` (zero rows up to the capacity, as a fresh storage has)."""
    if "_compact_capacity_rows" not in state:
        return state
    capacity = int(state["_compact_capacity_rows"])

    def pad(t: torch.Tensor) -> torch.Tensor:
        full = torch.zeros((capacity, *t.shape[1:]), dtype=t.dtype, device=t.device)
        full[: t.shape[0]] = t
        return full

    out = {k: v for k, v in state.items() if k != "_compact_capacity_rows"}
    data = state["_storage"]["_storage"]
    rows = _leaves(data)[0].shape[0]
    out["_storage"] = dict(state["_storage"], _storage=_map_tensors(data, pad, capacity))
    sampler = state.get("_sampler")
    if isinstance(sampler, dict) and isinstance(sampler.get("priority"), torch.Tensor) and rows:
        p = sampler["priority"]
        lanes = p.numel() // rows
        full = torch.zeros(capacity * lanes, dtype=p.dtype, device=p.device)
        full[: p.numel()] = p
        out["_sampler"] = dict(sampler, priority=full)
    return out


def latest_checkpoint(folder: str | os.PathLike, name: str = "checkpoint.pt") -> Path | None:
    """The checkpoint file in ``folder`` if one exists."""
    path = Path(folder) / name
    return path if path.is_file() else None


def rng_state() -> dict:
    """RNG states of Python, NumPy, torch (and CUDA when initialised)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore :func:`rng_state` output."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(state["cuda"])
        except RuntimeError as err:  # different number of devices
            logger.warning("could not restore CUDA RNG state: %s", err)
