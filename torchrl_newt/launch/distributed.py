"""Data-parallel training helpers on :mod:`torch.distributed` (NCCL on GPU, gloo on CPU).

Newt's data-parallel recipe: every rank steps its own environments with its own subset of the
tasks (:func:`split_tasks`, round-robin), samples its share of the batch
(:func:`split_batch_size`) from its own replay, and the world model's and policy's gradients are
all-reduced (:func:`all_reduce_grads`) before clipping and the optimiser step, so the parameters
stay identical on every rank. Evaluation results are gathered from all ranks
(:func:`gather_results`); rank 0 logs and checkpoints (:func:`is_main`).

The losses are functional TorchRL :class:`~torchrl.objectives.LossModule` s (their Q parameters
live in the loss module), so instead of wrapping a module in
:class:`~torch.nn.parallel.DistributedDataParallel` the gradients of the optimised parameters are
all-reduced explicitly (one flattened all-reduce per dtype and device).

:func:`init_distributed` reads the launcher's environment: ``torchrun`` (``RANK``/``WORLD_SIZE``...),
a submitit Slurm job (:class:`submitit.JobEnvironment`), or a plain ``srun`` step
(``SLURM_PROCID``/``SLURM_STEP_NUM_TASKS``...). With a single process it initialises nothing and
every helper here degrades to a no-op, so the same training code runs unchanged.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
import torch.distributed as dist

__all__ = [
    "DistributedContext",
    "LaunchEnv",
    "all_reduce_grads",
    "barrier",
    "broadcast_module",
    "cleanup",
    "gather_objects",
    "gather_results",
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_distributed",
    "is_main",
    "read_launch_env",
    "split_batch_size",
    "split_tasks",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_MIN_PORT, _PORT_RANGE = 20_000, 40_000


@dataclass(frozen=True)
class LaunchEnv:
    """Where this process sits in a multi-process launch (read from the environment).

    Attributes:
        launcher: ``"torchrun"``, ``"submitit"``, ``"slurm"`` (a plain ``srun`` step) or ``"none"``.
        rank: global rank.
        world_size: number of processes.
        local_rank: rank on this node (selects the GPU).
        local_world_size: processes on this node.
        master_addr: address of rank 0 (``None`` when the launcher already exported it).
        master_port: rendezvous port (``None`` when the launcher already exported it).
    """

    launcher: str
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    master_addr: str | None = None
    master_port: int | None = None


@dataclass(frozen=True)
class DistributedContext:
    """The result of :func:`init_distributed`.

    Attributes:
        rank: global rank (``0`` in a single process).
        world_size: number of processes (``1`` in a single process).
        local_rank: rank on this node.
        backend: ``"nccl"``, ``"gloo"``, or ``None`` when nothing was initialised.
        device: the device this rank should train on.
        launcher: see :class:`LaunchEnv`.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    launcher: str = "none"

    @property
    def initialized(self) -> bool:
        """Whether a process group is up (``world_size > 1``)."""
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the rank that logs and checkpoints)."""
        return self.rank == 0


def _first_host(nodelist: str) -> str:
    """First host of a Slurm node list such as ``"gpu[003-005,9],cpu1"``.

    Examples:
        >>> _first_host("gpu[003-005,9],cpu1"), _first_host("node7"), _first_host("a-b[2]")
        ('gpu003', 'node7', 'a-b2')
    """
    m = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if m is None:
        raise ValueError(f"cannot parse the Slurm node list {nodelist!r}")
    prefix, ranges = m.group(1), m.group(2)
    if ranges is None:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def _port_for(job_id: str | None) -> int:
    """A rendezvous port derived from the job id (the same on every task of a job)."""
    digits = re.sub(r"\D", "", job_id or "")
    return _MIN_PORT + (int(digits) % _PORT_RANGE if digits else 9_500)


def read_launch_env(environ: Mapping[str, str] | None = None) -> LaunchEnv:
    """Detect the launcher from environment variables, without initialising anything.

    Precedence: ``torchrun`` (``RANK`` and ``WORLD_SIZE`` set), then a submitit Slurm job
    (``SUBMITIT_EXECUTOR=slurm``; read with :class:`submitit.JobEnvironment` when ``environ`` is
    the process environment), then a plain ``srun`` step (``SLURM_STEP_NUM_TASKS``). A Slurm
    *batch* script without ``srun`` is a single process, whatever ``--ntasks`` says.

    Args:
        environ: the variables to read. Defaults to :data:`os.environ`.

    Examples:
        >>> read_launch_env({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
        LaunchEnv(launcher='torchrun', rank=1, world_size=4, local_rank=1, local_world_size=2, master_addr=None, master_port=None)
        >>> env = read_launch_env({"SLURM_PROCID": "5", "SLURM_STEP_NUM_TASKS": "8", "SLURM_LOCALID": "1",
        ...                        "SLURM_STEP_NUM_NODES": "2", "SLURM_STEP_NODELIST": "gpu[12-13]",
        ...                        "SLURM_JOB_ID": "4242"})
        >>> env.launcher, env.rank, env.world_size, env.local_world_size, env.master_addr, env.master_port
        ('slurm', 5, 8, 4, 'gpu12', 24242)
        >>> read_launch_env({}).world_size
        1
    """
    from_process = environ is None
    env = os.environ if environ is None else environ
    if "RANK" in env and "WORLD_SIZE" in env:
        world = int(env["WORLD_SIZE"])
        return LaunchEnv(
            "torchrun",
            rank=int(env["RANK"]),
            world_size=world,
            local_rank=int(env.get("LOCAL_RANK", 0)),
            local_world_size=int(env.get("LOCAL_WORLD_SIZE", world)),
        )
    if env.get("SUBMITIT_EXECUTOR") == "slurm" and from_process:
        import submitit

        job = submitit.JobEnvironment()
        return LaunchEnv(
            "submitit",
            rank=job.global_rank,
            world_size=job.num_tasks,
            local_rank=job.local_rank,
            local_world_size=max(job.num_tasks // max(job.num_nodes, 1), 1),
            master_addr=job.hostnames[0],
            master_port=int(env["MASTER_PORT"]) if "MASTER_PORT" in env else _port_for(job.job_id),
        )
    if "SLURM_STEP_NUM_TASKS" in env and "SLURM_PROCID" in env:
        world = int(env["SLURM_STEP_NUM_TASKS"])
        nodes = int(env.get("SLURM_STEP_NUM_NODES", env.get("SLURM_NNODES", 1)))
        nodelist = env.get("SLURM_STEP_NODELIST", env.get("SLURM_JOB_NODELIST", "localhost"))
        return LaunchEnv(
            "slurm",
            rank=int(env["SLURM_PROCID"]),
            world_size=world,
            local_rank=int(env.get("SLURM_LOCALID", 0)),
            local_world_size=max(world // max(nodes, 1), 1),
            master_addr=env.get("MASTER_ADDR", _first_host(nodelist)),
            master_port=int(env["MASTER_PORT"]) if "MASTER_PORT" in env else _port_for(env.get("SLURM_JOB_ID")),
        )
    return LaunchEnv("none")


def init_distributed(
    backend: str | None = None,
    *,
    device: str | torch.device | None = "auto",
    timeout_s: float = 1800.0,
) -> DistributedContext:
    """Initialise the default process group from the launcher's environment (idempotent).

    With one process (no launcher, or a world size of 1) nothing is initialised and the
    returned context has ``world_size == 1``; all helpers of this module then act locally.

    Args:
        backend: ``"nccl"`` or ``"gloo"``. Defaults to NCCL when training on CUDA, gloo otherwise.

    Keyword Args:
        device: ``"auto"`` (``cuda:LOCAL_RANK`` when CUDA is available, else CPU), ``None`` (CPU),
            or an explicit device; a bare ``"cuda"`` becomes ``cuda:LOCAL_RANK``.
        timeout_s: collective timeout in seconds.

    Returns:
        The :class:`DistributedContext` of this process.

    Raises:
        RuntimeError: NCCL was requested without CUDA, or the rank/world size are inconsistent.

    Examples:
        >>> ctx = init_distributed(device="cpu")  # a plain process: nothing to initialise
        >>> ctx.world_size, ctx.is_main, ctx.initialized
        (1, True, False)
    """
    env = read_launch_env()
    if dist.is_available() and dist.is_initialized():
        return DistributedContext(
            rank=dist.get_rank(),
            world_size=dist.get_world_size(),
            local_rank=env.local_rank,
            backend=dist.get_backend(),
            device=_resolve_device(device, env.local_rank),
            launcher=env.launcher,
        )
    if not 0 <= env.rank < env.world_size:
        raise RuntimeError(f"inconsistent launch environment: rank {env.rank} of world size {env.world_size}")
    dev = _resolve_device(device, env.local_rank)
    if env.world_size == 1:
        return DistributedContext(device=dev, launcher=env.launcher)
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this build of PyTorch")
    backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
    if backend == "nccl" and not torch.cuda.is_available():
        raise RuntimeError("backend='nccl' needs CUDA; use backend='gloo' on CPU")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if env.master_addr is not None:
        os.environ.setdefault("MASTER_ADDR", env.master_addr)
    if env.master_port is not None:
        os.environ.setdefault("MASTER_PORT", str(env.master_port))
    for key, value in (("RANK", env.rank), ("WORLD_SIZE", env.world_size), ("LOCAL_RANK", env.local_rank),
                       ("LOCAL_WORLD_SIZE", env.local_world_size)):
        os.environ.setdefault(key, str(value))
    logger.info(
        "initialising %s process group: rank %d/%d (local %d) via %s, rendezvous %s:%s",
        backend, env.rank, env.world_size, env.local_rank, env.launcher,
        os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT"),
    )
    kwargs: dict[str, Any] = {}
    if backend == "nccl":
        kwargs["device_id"] = dev
    dist.init_process_group(
        backend,
        init_method="env://",
        rank=env.rank,
        world_size=env.world_size,
        timeout=datetime.timedelta(seconds=timeout_s),
        **kwargs,
    )
    return DistributedContext(
        rank=env.rank,
        world_size=env.world_size,
        local_rank=env.local_rank,
        backend=backend,
        device=dev,
        launcher=env.launcher,
    )


def _resolve_device(device: str | torch.device | None, local_rank: int) -> torch.device:
    if device is None:
        return torch.device("cpu")
    if device == "auto":
        return torch.device("cuda", local_rank % torch.cuda.device_count()) if torch.cuda.is_available() else (
            torch.device("cpu"))
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        if not torch.cuda.is_available():
            raise RuntimeError("a CUDA device was requested but CUDA is not available")
        dev = torch.device("cuda", local_rank % torch.cuda.device_count())
    return dev


def is_distributed() -> bool:
    """Whether a process group with more than one rank is initialised.

    Examples:
        >>> is_distributed()
        False
    """
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """Global rank (``0`` without a process group).

    Examples:
        >>> get_rank()
        0
    """
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """Number of ranks (``1`` without a process group).

    Examples:
        >>> get_world_size()
        1
    """
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """Whether this process is rank 0 (logs, checkpoints, prints).

    Examples:
        >>> is_main()
        True
    """
    return get_rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single process).

    Examples:
        >>> barrier()
    """
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    """Destroy the default process group if one is up (safe to call twice).

    Examples:
        >>> cleanup()
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def split_tasks(tasks: Sequence[T], rank: int, world_size: int) -> list[T]:
    """The tasks of ``rank``: round-robin, ``tasks[rank::world_size]``.

    Round-robin keeps the domains mixed on every rank when ``tasks`` is sorted by domain (as
    MMBench is), so the ranks' environment costs stay similar.

    Args:
        tasks: all tasks, in their global order.
        rank: this rank.
        world_size: number of ranks.

    Raises:
        ValueError: more ranks than tasks (a rank would have no environment), or a bad rank.

    Examples:
        >>> split_tasks(["a", "b", "c", "d", "e"], 1, 2)
        ['b', 'd']
        >>> [split_tasks(range(5), r, 3) for r in range(3)]
        [[0, 3], [1, 4], [2]]
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is out of range for world_size {world_size}")
    tasks = list(tasks)
    if world_size > len(tasks):
        raise ValueError(
            f"{world_size} ranks but only {len(tasks)} tasks: every rank needs at least one task "
            "(use fewer processes or more tasks)"
        )
    return tasks[rank::world_size]


def split_batch_size(batch_size: int, rank: int, world_size: int) -> int:
    """This rank's share of a global batch (shares differ by at most one).

    Use ``split_batch_size(B, rank, world) / B`` as the ``weight`` of :func:`all_reduce_grads` so
    the reduced gradient is exactly the gradient of the global batch's mean loss.

    Examples:
        >>> [split_batch_size(10, r, 4) for r in range(4)]
        [3, 3, 2, 2]
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is out of range for world_size {world_size}")
    if batch_size < world_size:
        raise ValueError(f"batch size {batch_size} cannot be split across {world_size} ranks")
    return batch_size // world_size + int(rank < batch_size % world_size)


@torch.no_grad()
def all_reduce_grads(
    params: Iterable[torch.nn.Parameter],
    *,
    weight: float | None = None,
    group: dist.ProcessGroup | None = None,
) -> None:
    """All-reduce the gradients of ``params`` in place (no-op in a single process).

    Gradients are flattened into one buffer per ``(device, dtype)`` and reduced with one
    collective each. Parameters without a gradient take part with zeros (every rank must reduce
    the same buffers), and get the reduced gradient afterwards.

    Args:
        params: the parameters (for example an optimiser's), in the same order on every rank.

    Keyword Args:
        weight: this rank's weight; the result is ``sum_r weight_r * grad_r``. Defaults to
            ``1 / world_size`` (the mean). Pass the rank's fraction of the global batch when the
            ranks' batches differ in size (see :func:`split_batch_size`).
        group: process group. Defaults to the default group.

    Examples:
        >>> lin = torch.nn.Linear(2, 1)
        >>> lin(torch.ones(1, 2)).sum().backward()
        >>> all_reduce_grads(lin.parameters())  # one process: gradients are left as they are
        >>> lin.weight.grad
        tensor([[1., 1.]])
    """
    params = [p for p in params if p.requires_grad]
    if not dist.is_available() or not dist.is_initialized():
        return
    world = dist.get_world_size(group)
    if world == 1:
        return
    scale = 1.0 / world if weight is None else float(weight)
    buckets: dict[tuple[torch.device, torch.dtype], list[torch.nn.Parameter]] = {}
    for p in params:
        buckets.setdefault((p.device, p.dtype), []).append(p)
    for bucket in buckets.values():
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in bucket]
        flat = torch.cat([g.reshape(-1) for g in grads]).mul_(scale)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
        offset = 0
        for p in bucket:
            n = p.numel()
            value = flat[offset:offset + n].view_as(p)
            if p.grad is None:
                p.grad = value.clone()
            else:
                p.grad.copy_(value)
            offset += n


@torch.no_grad()
def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Copy ``src``'s parameters and buffers to every rank (no-op in a single process).

    Call it once after building the model so every rank starts from the same weights.

    Examples:
        >>> broadcast_module(torch.nn.Linear(2, 1))
    """
    if not is_distributed():
        return
    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=src)


def gather_objects(obj: T) -> list[T]:
    """Every rank's ``obj`` (picklable), in rank order, on every rank.

    Examples:
        >>> gather_objects({"x": 1})
        [{'x': 1}]
    """
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def gather_results(results: Mapping[str, T], order: Sequence[str] | None = None) -> dict[str, T]:
    """Merge per-rank ``{task: result}`` tables into one, on every rank.

    Args:
        results: this rank's results (keys must not repeat across ranks).
        order: the global key order of the merged table (for example all task names); keys not
            listed come after, in rank order. Defaults to rank order.

    Raises:
        ValueError: two ranks reported the same key.

    Examples:
        >>> gather_results({"walker-walk": {"score": 0.5}, "cartpole-balance": {"score": 1.0}},
        ...                order=["cartpole-balance", "walker-walk"])
        {'cartpole-balance': {'score': 1.0}, 'walker-walk': {'score': 0.5}}
    """
    merged: dict[str, T] = {}
    for rank, part in enumerate(gather_objects(dict(results))):
        for key, value in part.items():
            if key in merged:
                raise ValueError(f"result {key!r} was reported by more than one rank (again by rank {rank})")
            merged[key] = value
    if order is None:
        return merged
    ordered = {k: merged[k] for k in order if k in merged}
    ordered.update({k: v for k, v in merged.items() if k not in ordered})
    return ordered
