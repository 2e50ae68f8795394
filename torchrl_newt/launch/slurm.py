"""Slurm launching with submitit: multi-node training jobs and single-task array jobs.

* :class:`SlurmConfig` + :func:`make_executor`: a :class:`submitit.AutoExecutor` for a partition,
  nodes x tasks-per-node (one process per GPU), GPUs per node, a time limit and array parallelism.
* :class:`TrainJob`: the job callable. It runs a training entry point (by default the packaged
  :func:`torchrl_newt.train.main`, the package's copy of ``examples/newt_mmbench.py``; never a
  script path) with a fixed, deterministic ``--output-dir``, adds ``--resume`` whenever that folder holds a checkpoint, and writes ``result.json`` (atomically)
  when training ends. It is a :class:`submitit.helpers.Checkpointable`: when Slurm signals a
  time-out or a preemption, submitit calls :meth:`TrainJob.checkpoint`, requeues the job and the
  requeued run resumes from the latest checkpoint (written atomically by the entry point, so a
  kill during a write never leaves a truncated file). A run whose ``result.json`` exists returns it
  without training again, so a requeue after completion never trains twice.
* :func:`submit_training`: one (multi-node) data-parallel training job; every Slurm task runs the
  entry point, which initialises ``torch.distributed`` from the submitit job environment
  (:func:`~torchrl_newt.launch.init_distributed`).
* :func:`submit_array` / :func:`collect_results`: one single-task run per array element
  (:meth:`submitit.AutoExecutor.map_array`), skipping tasks already finished, then their results.
* :class:`DemoJob` / :func:`submit_demo_array` / :func:`collect_demos`: Newt's second stage, one
  demonstration-generation run per array element (``python -m torchrl_newt.demos generate`` with
  the expert ``EXPERTS_ROOT/<task>/checkpoint.pt``, writing ``DEMOS_DIR/<task>.pt``), skipping
  tasks whose demo file exists. ``docs/pipeline.md`` chains the three stages.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import submitit

try:  # the base class must exist at import time; submitit is an optional dependency
    from submitit.helpers import Checkpointable as _Checkpointable
except ImportError:  # pragma: no cover

    class _Checkpointable:  # type: ignore[no-redef]
        """Stand-in when submitit is missing (jobs cannot be submitted then)."""

__all__ = [
    "CHECKPOINT_FILE",
    "DEFAULT_ENTRY_POINT",
    "DemoJob",
    "JOB_FILE",
    "MissingExpertError",
    "RESULT_FILE",
    "SlurmConfig",
    "TrainJob",
    "add_array_options",
    "array_config",
    "collect_demos",
    "collect_results",
    "demo_path",
    "expert_checkpoint",
    "load_entry_point",
    "make_executor",
    "read_result",
    "split_passthrough",
    "submit_array",
    "submit_demo_array",
    "submit_training",
    "task_dir",
]

logger = logging.getLogger(__name__)

#: The training script run by default (its ``main(argv)``).
DEFAULT_ENTRY_POINT = "torchrl_newt.train:main"
#: Written in a run's output folder when it finishes; its presence marks the run as done.
RESULT_FILE = "result.json"
#: Written in a run's output folder at submission: the Slurm job id and submitit folder.
JOB_FILE = "job.json"
#: The checkpoint a training run writes in its output folder (what demo generation reads).
CHECKPOINT_FILE = "checkpoint.pt"
#: Sub-folder of a demo folder holding each demo job's ``<task>.json`` (its Slurm job id).
DEMO_JOBS_DIR = ".jobs"


# ---------------------------------------------------------------------------------------- executors
@dataclass
class SlurmConfig:
    """Slurm resources of a job (see ``sbatch`` for the meaning of each).

    Attributes:
        folder: where submitit writes job pickles and logs (``%j`` is the job id).
        partition: Slurm partition (``None``: the cluster's default).
        nodes: number of nodes.
        tasks_per_node: processes per node (one per GPU for data-parallel training).
        gpus_per_node: GPUs per node (``0`` for CPU jobs).
        cpus_per_task: CPU cores per process.
        timeout_min: time limit in minutes; Slurm signals the job ``signal_delay_s`` before it.
        mem_gb: memory per node in GB (``None``: the cluster's default).
        array_parallelism: at most this many array elements run at once.
        job_name: Slurm job name.
        signal_delay_s: seconds between the time-out signal and the kill (time for a checkpoint).
        max_num_timeout: how many times a timed-out job is requeued.
        additional: extra ``#SBATCH`` options, e.g. ``{"qos": "high", "account": "rl"}``.
        setup: shell lines run in the job before the training processes start (module loads,
            ``source venv/bin/activate``...). With ``cpus_per_task``, ``OMP_NUM_THREADS`` is
            exported to it unless a line sets it (OpenMP pools sized for the whole node make
            processes sharing a node oversubscribe its cores badly).
        cluster: submitit cluster: ``None`` (auto: Slurm when ``sbatch`` exists), ``"slurm"``,
            ``"local"`` or ``"debug"`` (in-process, for debugging).

    Examples:
        >>> cfg = SlurmConfig("logs/%j", partition="gpu", nodes=2, tasks_per_node=8, gpus_per_node=8)
        >>> p = cfg.executor_parameters()
        >>> p["slurm_partition"], p["nodes"], p["tasks_per_node"], p["gpus_per_node"], p["timeout_min"]
        ('gpu', 2, 8, 8, 240)
        >>> SlurmConfig(cpus_per_task=4).executor_parameters()["slurm_setup"]
        ['export OMP_NUM_THREADS=4']
    """

    folder: str | os.PathLike = "slurm_logs/%j"
    partition: str | None = None
    nodes: int = 1
    tasks_per_node: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    timeout_min: int = 240
    mem_gb: float | None = None
    array_parallelism: int = 32
    job_name: str = "newt"
    signal_delay_s: int = 120
    max_num_timeout: int = 10
    additional: dict[str, Any] = field(default_factory=dict)
    setup: list[str] = field(default_factory=list)
    cluster: str | None = None

    def executor_parameters(self) -> dict[str, Any]:
        """Keyword arguments of :meth:`submitit.AutoExecutor.update_parameters`."""
        params: dict[str, Any] = {
            "name": self.job_name,
            "nodes": self.nodes,
            "tasks_per_node": self.tasks_per_node,
            "timeout_min": self.timeout_min,
            "slurm_array_parallelism": self.array_parallelism,
            "slurm_signal_delay_s": self.signal_delay_s,
        }
        if self.gpus_per_node:
            params["gpus_per_node"] = self.gpus_per_node
        if self.cpus_per_task:
            params["cpus_per_task"] = self.cpus_per_task
        if self.mem_gb:
            params["mem_gb"] = self.mem_gb
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.additional:
            params["slurm_additional_parameters"] = dict(self.additional)
        setup = list(self.setup)
        if self.cpus_per_task and not any("OMP_NUM_THREADS" in line for line in setup):
            setup.append(f"export OMP_NUM_THREADS={self.cpus_per_task}")
        if setup:
            params["slurm_setup"] = setup
        return params


def make_executor(config: SlurmConfig) -> submitit.AutoExecutor:
    """A :class:`submitit.AutoExecutor` configured from ``config``.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     ex = make_executor(SlurmConfig(f"{d}/%j", cluster="debug", timeout_min=5))
        ...     ex.cluster
        'debug'
    """
    import submitit

    executor = submitit.AutoExecutor(
        folder=str(config.folder), cluster=config.cluster, slurm_max_num_timeout=config.max_num_timeout
    )
    params = config.executor_parameters()
    if executor.cluster != "slurm":  # keep the options every executor understands
        params = {k: v for k, v in params.items() if not k.startswith("slurm_")}
    executor.update_parameters(**params)
    return executor


# ---------------------------------------------------------------------------------------- the job
def load_entry_point(entry_point: str) -> Callable[[list[str]], Any]:
    """The training function named by ``entry_point``: ``"path/to/script.py"`` (its ``main``),
    ``"path/to/script.py:fn"`` or ``"package.module:fn"``.

    Examples:
        >>> load_entry_point("json:dumps")([1, 2])
        '[1, 2]'
    """
    target, _, fn = entry_point.partition(":")
    fn = fn or "main"
    if target.endswith(".py"):
        path = Path(target).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"entry point script {path} does not exist")
        name = "_newt_entry_" + re.sub(r"\W", "_", path.stem)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pickling look modules up by name
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    if not hasattr(module, fn):
        raise AttributeError(f"entry point {entry_point!r}: {module.__name__} has no {fn!r}")
    return getattr(module, fn)


def task_dir(root: str | os.PathLike, task: str) -> Path:
    """The deterministic output folder of a single-task run (a file-system-safe task name).

    Examples:
        >>> task_dir("runs", "mw-pick-place").as_posix()
        'runs/mw-pick-place'
        >>> task_dir("runs", "a/b c").as_posix()
        'runs/a_b_c'
    """
    return Path(root) / re.sub(r"[^\w.\-]", "_", task)


def _atomic_write_json(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_result(output_dir: str | os.PathLike) -> dict | None:
    """The ``result.json`` of a finished run, or ``None`` while it is not finished.

    Examples:
        >>> read_result("/nonexistent") is None
        True
    """
    path = Path(output_dir) / RESULT_FILE
    if not path.is_file():
        return None
    with open(path) as f:
        return json.load(f)


def _set_option(argv: list[str], option: str, value: str | None) -> list[str]:
    """``argv`` with ``option`` (and its value) replaced: ``--opt V``/``--opt=V`` forms removed."""
    out: list[str] = []
    skip = False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == option:
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            skip = nxt is not None and not nxt.startswith("-")
            continue
        if a.startswith(option + "="):
            continue
        out.append(a)
    out.append(option)
    if value is not None:
        out.append(value)
    return out


def _setup_job_process(imports: Sequence[str], custom_tasks: Mapping[str, Mapping[str, Any]],
                       threads: int | None) -> None:
    """Inside a job: import ``imports``, register ``custom_tasks``, size torch's CPU thread pool."""
    import torch

    for name in imports:
        importlib.import_module(name)
    if custom_tasks:
        from torchrl_newt.envs import register_task

        for name, kwargs in custom_tasks.items():
            register_task(name, overwrite=True, **kwargs)
    threads = threads or int(os.environ.get("SLURM_CPUS_PER_TASK") or 0)
    if threads:
        torch.set_num_threads(threads)


class TrainJob(_Checkpointable):
    """A preemption-safe training run: the submitit callable of :func:`submit_training` and
    :func:`submit_array`.

    Calling it (inside the job) imports ``imports``, registers ``custom_tasks``, then runs the
    entry point's ``main(argv + ["--output-dir", output_dir] [+ ["--resume"]])``; ``--resume`` is
    added when ``output_dir`` holds a checkpoint, so the first run and every requeued run use the
    same callable. When training ends, rank 0 writes ``output_dir/result.json``; if that file is
    there already, the call returns it without training.

    Args:
        argv: the entry point's command line (without ``--output-dir``/``--resume``).
        output_dir: the run's folder (deterministic: requeued runs find their checkpoint there).

    Keyword Args:
        entry_point: see :func:`load_entry_point`. Defaults to ``"torchrl_newt.train:main"``.
        imports: modules imported first in the job (for example one that registers tasks).
        custom_tasks: tasks to register in the job, ``{name: register_task kwargs}``.
        threads: torch CPU threads; defaults to ``SLURM_CPUS_PER_TASK`` when set.

    Examples:
        >>> job = TrainJob(["--tasks", "walker-walk", "--frames", "1000"], "runs/walker-walk",
        ...                custom_tasks={"short": {"base": "cartpole-balance", "episode_length": 12}})
        >>> job.command()
        ['--tasks', 'walker-walk', '--frames', '1000', '--output-dir', 'runs/walker-walk']
        >>> job.checkpoint().function is job  # requeued as is: the next call resumes
        True
    """

    def __init__(
        self,
        argv: Sequence[str],
        output_dir: str | os.PathLike,
        *,
        entry_point: str = DEFAULT_ENTRY_POINT,
        imports: Sequence[str] = (),
        custom_tasks: Mapping[str, Mapping[str, Any]] | None = None,
        threads: int | None = None,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.output_dir = str(output_dir)
        self.entry_point = entry_point
        self.imports = list(imports)
        self.custom_tasks = {k: dict(v) for k, v in (custom_tasks or {}).items()}
        self.threads = threads
        for opt in ("--output-dir", "--resume"):
            if any(a == opt or a.startswith(opt + "=") for a in self.argv):
                raise ValueError(f"TrainJob sets {opt} itself; remove it from argv")

    def command(self) -> list[str]:
        """The entry point's argv for the next call (``--resume`` once a checkpoint exists)."""
        from torchrl_newt.checkpoint import latest_checkpoint

        argv = _set_option(list(self.argv), "--output-dir", self.output_dir)
        if latest_checkpoint(self.output_dir) is not None:
            argv = _set_option(argv, "--resume", None)
        return argv

    def setup(self) -> None:
        """Imports and task registrations needed in the job process (idempotent)."""
        _setup_job_process(self.imports, self.custom_tasks, self.threads)

    def for_task(self, task: str) -> TrainJob:
        """The single-task run of ``task``: ``--tasks task`` in ``task_dir(output_dir, task)``.

        Examples:
            >>> TrainJob(["--frames", "100"], "runs/sweep").for_task("walker-walk").command()
            ['--frames', '100', '--tasks', 'walker-walk', '--output-dir', 'runs/sweep/walker-walk']
        """
        return TrainJob(
            _set_option(list(self.argv), "--tasks", task),
            task_dir(self.output_dir, task),
            entry_point=self.entry_point,
            imports=self.imports,
            custom_tasks=self.custom_tasks,
            threads=self.threads,
        )

    def __call__(self, task: str | None = None) -> dict:
        """Run (or resume) training; with ``task``, run :meth:`for_task` (array elements)."""
        if task is not None:
            return self.for_task(task)()
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        done = read_result(self.output_dir)
        if done is not None:
            logger.info("%s is finished already; returning its result", self.output_dir)
            return done
        from torchrl_newt.launch.distributed import read_launch_env

        rank = read_launch_env().rank  # read before: the entry point may tear its process group down
        self.setup()
        argv = self.command()
        logger.info("running %s %s", self.entry_point, " ".join(argv))
        out = load_entry_point(self.entry_point)(argv)
        result = _summary(out)
        if rank == 0:
            _atomic_write_json(result, Path(self.output_dir) / RESULT_FILE)
        return result

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Called by submitit on time-out/preemption: requeue this same callable.

        Nothing is saved here (the signal may arrive in the middle of an update); the entry
        point's periodic atomic checkpoints are what the requeued run resumes from.
        """
        import submitit

        logger.warning("time-out or preemption: requeueing %s (it resumes from its latest checkpoint)",
                       self.output_dir)
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(output_dir={self.output_dir!r}, argv={self.argv})"


def _summary(out: Any) -> dict:
    """A JSON-friendly summary of the entry point's return value."""
    if isinstance(out, Mapping) and "results" in out:
        state = out.get("state", {})
        return {
            "results": out["results"],
            "frames": int(state.get("frames", 0)),
            "updates": int(state.get("updates", 0)),
            "pretrain_updates": int(state.get("pretrain_updates", 0)),
            "history": [{"frames": h["frames"], "mean_score": h["mean_score"]} for h in state.get("history", [])],
        }
    return {"results": out}


# ---------------------------------------------------------------------------------------- submission
def submit_training(
    config: SlurmConfig,
    argv: Sequence[str],
    output_dir: str | os.PathLike,
    **job_kwargs: Any,
) -> submitit.Job:
    """Submit one data-parallel training job over ``config.nodes x config.tasks_per_node`` ranks.

    Every rank runs the entry point, which initialises ``torch.distributed`` from the submitit
    job environment, trains its share of the tasks and joins the all-reduces; rank 0 logs,
    checkpoints to ``output_dir`` and writes ``result.json``. ``job.results()`` holds one result per
    rank (all equal: the gathered score table), rank 0's first.

    Args:
        config: Slurm resources.
        argv: the entry point's arguments (without ``--output-dir``/``--resume``).
        output_dir: the run's folder.
        **job_kwargs: forwarded to :class:`TrainJob`.
    """
    executor = make_executor(config)
    job = executor.submit(TrainJob(argv, output_dir, **job_kwargs))
    logger.info("submitted training job %s (%d node(s) x %d task(s)) -> %s",
                job.job_id, config.nodes, config.tasks_per_node, output_dir)
    return job


def submit_array(
    config: SlurmConfig,
    tasks: Sequence[str],
    root: str | os.PathLike,
    argv: Sequence[str] = (),
    **job_kwargs: Any,
) -> tuple[dict[str, submitit.Job], dict[str, dict]]:
    """Submit one single-task run per task as a Slurm array (``config.array_parallelism`` at once).

    Each run trains in ``task_dir(root, task)``. Tasks whose ``result.json`` exists are not
    submitted again (their result is returned instead), and tasks whose recorded job
    (``job.json``) is still queued or running are re-attached instead of submitted twice, so
    re-running a sweep only fills gaps.

    Args:
        config: Slurm resources of one array element (``nodes``/``tasks_per_node`` should be 1).
        tasks: task names, one run each.
        root: parent folder of the runs.
        argv: the entry point's arguments shared by all runs (``--tasks`` is set per run).
        **job_kwargs: forwarded to :class:`TrainJob`.

    Returns:
        ``(jobs, finished)``: the jobs by task (new or still running), and the results of tasks
        already done.
    """
    if config.nodes * config.tasks_per_node != 1:
        raise ValueError("array elements are single-process runs: use nodes=1, tasks_per_node=1")
    finished: dict[str, dict] = {}
    jobs: dict[str, submitit.Job] = {}
    todo: list[str] = []
    for task in dict.fromkeys(tasks):
        out = task_dir(root, task)
        done = read_result(out)
        if done is not None:
            finished[task] = done
        elif (active := _active_job(out / JOB_FILE)) is not None:
            jobs[task] = active  # submitted earlier and still queued or running: do not duplicate
        else:
            todo.append(task)
    if todo:
        # one checkpointable callable for the whole array, one task argument per element
        template = TrainJob(argv, root, **job_kwargs)
        executor = make_executor(config)
        submitted = executor.map_array(template, todo)
        for task, job in zip(todo, submitted):
            jobs[task] = job
            _atomic_write_json({"job_id": job.job_id, "folder": str(config.folder), "cluster": executor.cluster},
                               task_dir(root, task) / JOB_FILE)
        logger.info("submitted array %s: %d run(s); %d running already, %d finished",
                    submitted[0].job_id.split("_")[0], len(todo), len(jobs) - len(todo), len(finished))
    else:
        logger.info("nothing to submit: %d run(s) running, %d finished", len(jobs), len(finished))
    return jobs, finished


def _active_job(path: Path) -> submitit.Job | None:
    """The Slurm job recorded in the job file ``path`` if Slurm still has it pending or running."""
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    if info.get("cluster") != "slurm":
        return None
    try:
        state = subprocess.run(["squeue", "-h", "-j", info["job_id"], "-o", "%T"], capture_output=True,
                               text=True, timeout=60, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    if state not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED"):
        return None
    import submitit

    return submitit.SlurmJob(folder=info["folder"], job_id=info["job_id"])


def collect_results(
    jobs: Mapping[str, submitit.Job],
    finished: Mapping[str, dict] | None = None,
    *,
    raise_on_error: bool = True,
) -> dict[str, dict]:
    """Wait for ``jobs`` and merge their results with ``finished`` (task order kept).

    Args:
        jobs: submitted jobs by task (from :func:`submit_array`).
        finished: results known already.

    Keyword Args:
        raise_on_error: re-raise the first failed job's error; otherwise log it and leave the
            task out.
    """
    results = dict(finished or {})
    for task, job in jobs.items():
        try:
            results[task] = job.result()
        except Exception as err:
            if raise_on_error:
                raise
            logger.error("task %s (job %s) failed: %s", task, job.job_id, err)
    return results


# ---------------------------------------------------------------------------------------- demonstrations
class MissingExpertError(FileNotFoundError):
    """Demo generation was asked for tasks whose expert run has no usable checkpoint.

    Attributes:
        tasks: the tasks without an expert checkpoint (or, with ``require_finished``, without a
            finished expert run).
    """

    def __init__(self, message: str, tasks: Sequence[str]) -> None:
        super().__init__(message)
        self.tasks = list(tasks)


def expert_checkpoint(experts_root: str | os.PathLike, task: str) -> Path:
    """Where stage 1 leaves ``task``'s expert: ``task_dir(experts_root, task)/checkpoint.pt``.

    Examples:
        >>> expert_checkpoint("runs/experts", "walker-walk").as_posix()
        'runs/experts/walker-walk/checkpoint.pt'
    """
    return task_dir(experts_root, task) / CHECKPOINT_FILE


def demo_path(demos_dir: str | os.PathLike, task: str) -> Path:
    """The demo file ``python -m torchrl_newt.demos generate --out DEMOS_DIR`` writes for ``task``
    (Newt's layout: the file name is the task name, which :func:`~torchrl_newt.data.demos.load_demos`
    maps back to the task).

    Examples:
        >>> demo_path("runs/demos", "walker-walk").as_posix()
        'runs/demos/walker-walk.pt'
    """
    return Path(demos_dir) / f"{task}.pt"


def _demo_job_file(demos_dir: str | os.PathLike, task: str) -> Path:
    return Path(demos_dir) / DEMO_JOBS_DIR / f"{task_dir('', task).name}.json"


def _check_experts(experts_root: str | os.PathLike, tasks: Sequence[str], require_finished: bool) -> None:
    """Raise :class:`MissingExpertError` naming every task whose expert is not usable."""
    missing = [t for t in tasks if not expert_checkpoint(experts_root, t).is_file()]
    unfinished = [t for t in tasks if t not in missing and require_finished
                  and read_result(task_dir(experts_root, t)) is None]
    if not missing and not unfinished:
        return
    lines = []
    if missing:
        lines.append(f"no expert checkpoint for {', '.join(missing)} (looked for "
                     f"{', '.join(str(expert_checkpoint(experts_root, t)) for t in missing[:3])}"
                     f"{', ...' if len(missing) > 3 else ''})")
    if unfinished:
        lines.append(f"the expert run of {', '.join(unfinished)} has not finished (no {RESULT_FILE} in "
                     f"{task_dir(experts_root, unfinished[0])}{', ...' if len(unfinished) > 1 else ''})")
    raise MissingExpertError(
        "; ".join(lines) + ". Train the experts first (stage 1: examples/slurm_array.py --root "
        f"{experts_root}), or leave these tasks out (skip_missing=True / --skip-missing).",
        missing + unfinished,
    )


class DemoJob(_Checkpointable):
    """One task's demonstrations from its expert: the submitit callable of :func:`submit_demo_array`.

    Calling it with a task (inside the job) imports ``imports``, registers ``custom_tasks``, then
    runs ``python -m torchrl_newt.demos generate --checkpoint EXPERTS_ROOT/<task>/checkpoint.pt
    --task TASK --num-demos N --out DEMOS_DIR`` (:func:`torchrl_newt.demos.main`) with ``argv``
    appended (seed, ``--max-attempts``, planner overrides, ``--device``...). The demo file is
    written atomically once all ``N`` demos are accepted, so a run killed half-way leaves nothing;
    if ``DEMOS_DIR/<task>.pt`` exists the call returns without generating (a requeued element
    whose file was written never plans twice). On time-out or preemption submitit requeues the
    element, which starts the task's generation again.

    Args:
        experts_root: the stage-1 root (each expert in ``EXPERTS_ROOT/<task>/``).
        demos_dir: the folder of the demo files.
        num_demos: accepted demonstrations per task.
        argv: extra ``torchrl_newt.demos generate`` options shared by all tasks.

    Keyword Args:
        imports: modules imported first in the job (for example one that registers tasks).
        custom_tasks: tasks to register in the job, ``{name: register_task kwargs}``.
        threads: torch CPU threads; defaults to ``SLURM_CPUS_PER_TASK`` when set.

    Examples:
        >>> job = DemoJob("runs/experts", "runs/demos", 10, ["--seed", "2"])
        >>> job.command("walker-walk")  # doctest: +NORMALIZE_WHITESPACE
        ['generate', '--checkpoint', 'runs/experts/walker-walk/checkpoint.pt', '--task', 'walker-walk',
         '--num-demos', '10', '--out', 'runs/demos', '--quiet', '--seed', '2']
    """

    _OWN_OPTIONS = ("--checkpoint", "--task", "--num-demos", "--out")

    def __init__(
        self,
        experts_root: str | os.PathLike,
        demos_dir: str | os.PathLike,
        num_demos: int,
        argv: Sequence[str] = (),
        *,
        imports: Sequence[str] = (),
        custom_tasks: Mapping[str, Mapping[str, Any]] | None = None,
        threads: int | None = None,
    ) -> None:
        if int(num_demos) < 1:
            raise ValueError(f"num_demos must be >= 1, got {num_demos}")
        self.experts_root = str(experts_root)
        self.demos_dir = str(demos_dir)
        self.num_demos = int(num_demos)
        self.argv = [str(a) for a in argv]
        self.imports = list(imports)
        self.custom_tasks = {k: dict(v) for k, v in (custom_tasks or {}).items()}
        self.threads = threads
        for opt in self._OWN_OPTIONS:
            if any(a == opt or a.startswith(opt + "=") for a in self.argv):
                raise ValueError(f"DemoJob sets {opt} itself; remove it from argv")

    def command(self, task: str) -> list[str]:
        """``torchrl_newt.demos``'s argv for ``task``."""
        argv = ["generate", "--checkpoint", expert_checkpoint(self.experts_root, task).as_posix(), "--task", task,
                "--num-demos", str(self.num_demos), "--out", Path(self.demos_dir).as_posix()]
        if "--quiet" not in self.argv:
            argv.append("--quiet")  # a progress bar in a Slurm log is noise
        return argv + self.argv

    def __call__(self, task: str) -> dict:
        """Generate ``task``'s demos (or return at once when its demo file exists).

        Returns:
            ``{"task", "path", "accepted", "attempted", "batches", "threshold", "mean_return",
            "min_return"}``, or ``{"task", "path", "existing": True}`` for a file written before.

        Raises:
            MissingExpertError: ``EXPERTS_ROOT/<task>/checkpoint.pt`` does not exist.
            DemoAcceptanceError: too few episodes passed Newt's acceptance rule.
        """
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        path = demo_path(self.demos_dir, task)
        if path.is_file():
            logger.info("%s exists already; not generating %s's demos again", path, task)
            return {"task": task, "path": str(path), "existing": True}
        _setup_job_process(self.imports, self.custom_tasks, self.threads)
        _check_experts(self.experts_root, [task], require_finished=False)
        from torchrl_newt.demos import main as demos_main

        argv = self.command(task)
        logger.info("running python -m torchrl_newt.demos %s", " ".join(argv))
        out = demos_main(argv)
        report, returns = out["report"], out["demos"]["episode_reward"]
        return {"task": task, "path": str(out["path"]), "accepted": report.accepted, "attempted": report.attempted,
                "batches": report.batches, "threshold": float(report.threshold),
                "mean_return": float(returns.mean()), "min_return": float(returns.min())}

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Called by submitit on time-out/preemption: requeue this element (it starts over; a demo
        file is only ever written whole)."""
        import submitit

        logger.warning("time-out or preemption: requeueing demo generation into %s", self.demos_dir)
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(experts_root={self.experts_root!r}, demos_dir={self.demos_dir!r}, "
                f"num_demos={self.num_demos}, argv={self.argv})")


def submit_demo_array(
    config: SlurmConfig,
    tasks: Sequence[str],
    experts_root: str | os.PathLike,
    demos_dir: str | os.PathLike,
    num_demos: int,
    argv: Sequence[str] = (),
    *,
    skip_missing: bool = False,
    require_finished: bool = True,
    **job_kwargs: Any,
) -> tuple[dict[str, submitit.Job], dict[str, dict]]:
    """Stage 2 of Newt's recipe: one demo-generation run per task as a Slurm array.

    Element ``task`` reads ``EXPERTS_ROOT/<task>/checkpoint.pt`` (stage 1, :func:`submit_array`)
    and writes ``DEMOS_DIR/<task>.pt`` in Newt's demo format (see :class:`DemoJob`), the folder
    stage 3 reads (``torchrl_newt.train --demos DEMOS_DIR``). Tasks whose demo file exists are not
    submitted again, and tasks whose recorded job (``DEMOS_DIR/.jobs/<task>.json``) is still
    queued or running are re-attached, so re-running the command only fills gaps.

    Every expert is checked before anything is submitted: a task without
    ``EXPERTS_ROOT/<task>/checkpoint.pt`` (or, with ``require_finished``, whose expert run has
    not written ``result.json`` yet: its checkpoint is an intermediate one) raises
    :class:`MissingExpertError` naming the tasks, unless ``skip_missing`` leaves them out with a
    warning.

    Args:
        config: Slurm resources of one array element (``nodes``/``tasks_per_node`` must be 1).
        tasks: task names, one element each.
        experts_root: the stage-1 root.
        demos_dir: the folder of the demo files (created).
        num_demos: accepted demonstrations per task (``2 * num_demos``
            parallel episodes per batch).
        argv: extra ``python -m torchrl_newt.demos generate`` options for every task.

    Keyword Args:
        skip_missing: leave out (with a warning) tasks whose expert is missing instead of raising.
        require_finished: an expert counts only once its run wrote ``result.json``.
        **job_kwargs: forwarded to :class:`DemoJob` (``imports``, ``custom_tasks``, ``threads``).

    Returns:
        ``(jobs, finished)``: the jobs by task (new or still running), and
        ``{"task", "path", "existing": True}`` for tasks whose demo file exists.

    Raises:
        MissingExpertError: (a ``FileNotFoundError``) experts are missing and ``skip_missing`` is off.
        ValueError: ``num_demos < 1`` or a multi-process ``config``.
    """
    if config.nodes * config.tasks_per_node != 1:
        raise ValueError("array elements are single-process runs: use nodes=1, tasks_per_node=1")
    template = DemoJob(experts_root, demos_dir, num_demos, argv, **job_kwargs)  # checks the arguments
    tasks = list(dict.fromkeys(tasks))
    finished: dict[str, dict] = {}
    jobs: dict[str, submitit.Job] = {}
    pending: list[str] = []
    for task in tasks:
        path = demo_path(demos_dir, task)
        if path.is_file():
            finished[task] = {"task": task, "path": str(path), "existing": True}
        elif (active := _active_job(_demo_job_file(demos_dir, task))) is not None:
            jobs[task] = active  # submitted earlier and still queued or running: do not duplicate
        else:
            pending.append(task)
    try:
        _check_experts(experts_root, pending, require_finished)
        todo = pending
    except MissingExpertError as err:
        if not skip_missing:
            raise
        logger.warning("%s; leaving out %d task(s)", err, len(err.tasks))
        todo = [t for t in pending if t not in err.tasks]
    if todo:
        Path(demos_dir).mkdir(parents=True, exist_ok=True)
        executor = make_executor(config)
        submitted = executor.map_array(template, todo)
        for task, job in zip(todo, submitted):
            jobs[task] = job
            _atomic_write_json({"job_id": job.job_id, "folder": str(config.folder), "cluster": executor.cluster},
                               _demo_job_file(demos_dir, task))
        logger.info("submitted demo array %s: %d task(s); %d running already, %d with demos already",
                    submitted[0].job_id.split("_")[0], len(todo), len(jobs) - len(todo), len(finished))
    else:
        logger.info("no demos to generate: %d job(s) running, %d task(s) with demos", len(jobs), len(finished))
    return jobs, finished


def collect_demos(
    jobs: Mapping[str, submitit.Job],
    finished: Mapping[str, dict] | None = None,
    *,
    raise_on_error: bool = True,
) -> dict[str, dict]:
    """Wait for the demo jobs of :func:`submit_demo_array` and merge their reports with ``finished``.

    Every returned task's demo file is checked to exist.

    Args:
        jobs: submitted jobs by task.
        finished: reports known already (tasks whose demo file existed).

    Keyword Args:
        raise_on_error: re-raise the first failed job's error (for example a
            :class:`~torchrl_newt.demos.DemoAcceptanceError` naming the task and its counts);
            otherwise log it and leave the task out.

    Raises:
        FileNotFoundError: a job reported success but its demo file is not there.
    """
    results = collect_results(jobs, finished, raise_on_error=raise_on_error)
    for task, report in results.items():
        if not Path(report["path"]).is_file():
            raise FileNotFoundError(f"the demo job of {task} finished but {report['path']} does not exist")
    return results


# ---------------------------------------------------------------------------------------- array CLIs
def add_array_options(parser: Any, *, time_min: int, job_name: str) -> Any:
    """Add the Slurm options every array command shares (``examples/slurm_array.py``,
    ``examples/slurm_demos.py``) to an :class:`argparse.ArgumentParser`; read them back with
    :func:`array_config`.

    Examples:
        >>> import argparse
        >>> p = add_array_options(argparse.ArgumentParser(), time_min=30, job_name="x")
        >>> array_config(p.parse_args(["--cluster", "debug", "--parallelism", "4"])).array_parallelism
        4
    """
    parser.add_argument("--folder", default="slurm_logs/%j", help="submitit's job folder (%%j: job id)")
    parser.add_argument("--partition", default=None)
    parser.add_argument("--gpus-per-node", type=int, default=0, help="GPUs per array element")
    parser.add_argument("--cpus-per-task", type=int, default=None)
    parser.add_argument("--mem-gb", type=float, default=None)
    parser.add_argument("--time", type=int, default=time_min,
                        help="time limit per element in minutes (elements requeue themselves)")
    parser.add_argument("--parallelism", type=int, default=32, help="array elements running at once")
    parser.add_argument("--signal-delay", type=int, default=120)
    parser.add_argument("--job-name", default=job_name)
    parser.add_argument("--cluster", default=None, choices=["slurm", "local", "debug"], help="default: auto")
    parser.add_argument("--import", dest="imports", action="append", default=[],
                        help="module imported first, here and in the jobs (e.g. one registering custom tasks)")
    parser.add_argument("--no-wait", action="store_true", help="submit and exit (re-run later to collect)")
    return parser


def array_config(args: Any) -> SlurmConfig:
    """The :class:`SlurmConfig` of options added by :func:`add_array_options`; also imports the
    ``--import`` modules here (custom tasks must resolve before submission)."""
    for module in args.imports:
        importlib.import_module(module)
    return SlurmConfig(
        folder=args.folder, partition=args.partition, gpus_per_node=args.gpus_per_node,
        cpus_per_task=args.cpus_per_task, mem_gb=args.mem_gb, timeout_min=args.time,
        array_parallelism=args.parallelism, signal_delay_s=args.signal_delay, job_name=args.job_name,
        cluster=args.cluster,
    )


def split_passthrough(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(ours, theirs)``: the options before ``--`` and those after it (passed on to the jobs).

    Examples:
        >>> split_passthrough(["--tasks", "a", "--", "--frames", "10"])
        (['--tasks', 'a'], ['--frames', '10'])
    """
    argv = list(argv)
    if "--" not in argv:
        return argv, []
    i = argv.index("--")
    return argv[:i], argv[i + 1:]
