"""The MMBench task registry: task specs, score rules and pluggable domain builders.

Every task has a :class:`TaskSpec` holding the benchmark's facts (instruction, embodiment, dims,
episode length, discount, score rule). The 200 MMBench tasks come first, in the benchmark's order,
followed by its 34 held-out tasks; users may append their own with :func:`register_task`.

Simulator families plug in with :func:`register_domain`: a domain module registers a *builder*
that turns a :class:`TaskSpec` into a raw single-task environment following the
:class:`RawTask` protocol (numpy in, numpy out, actions in ``[-1, 1]``, action repeat applied,
never terminating). Padding, masking, truncation and scoring live in
:mod:`torchrl_newt.envs.transforms`, never in domain code.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from torchrl_newt.envs._mmbench_facts import MMBENCH_DOMAINS, TASK_ROWS

__all__ = [
    "MMBENCH_DOMAINS",
    "DomainInfo",
    "MissingDependencyError",
    "RawTask",
    "SCORE_KINDS",
    "ScoreRule",
    "TaskSpec",
    "UnknownTaskError",
    "discount_heuristic",
    "get_domain",
    "get_task",
    "list_domains",
    "list_tasks",
    "register_domain",
    "register_task",
    "require_installed",
    "score_episodes",
]


class UnknownTaskError(KeyError):
    """Raised for a task name that is not in the registry (the message lists close matches)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class MissingDependencyError(ImportError):
    """Raised when a task's simulator is not installed; the message names the pip extra."""


#: The score rule kinds, in the order of :attr:`ScoreRule.code`.
SCORE_KINDS: tuple[str, ...] = ("return", "return_clip", "success")


@dataclass(frozen=True)
class ScoreRule:
    """How an episode's undiscounted return (and final success flag) maps to a score.

    Args:
        kind: ``"return"`` (``R / high``, no clipping), ``"return_clip"``
            (``(clip(R, low, high) - low) / (high - low)``) or ``"success"`` (the final step's
            success flag).
        low: lower bound of the return range.
        high: upper bound of the return range (the divisor for ``"return"``).

    Examples:
        >>> ScoreRule("return_clip", 0.0, 250.0)(300.0)
        1.0
        >>> ScoreRule("return", 0.0, 1000.0)(512.0)
        0.512
        >>> ScoreRule("success")(3.0, success=True)
        1.0
    """

    kind: str
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in SCORE_KINDS:
            raise ValueError(f"unknown score kind {self.kind!r}; expected return, return_clip or success")
        if self.kind != "success" and not self.high > self.low:
            raise ValueError(f"score range must have high > low, got [{self.low}, {self.high}]")

    @property
    def code(self) -> int:
        """The rule's kind as an integer (its index in :data:`SCORE_KINDS`), for batched scoring."""
        return SCORE_KINDS.index(self.kind)

    def __call__(self, episode_return: float, success: bool | float = False) -> float:
        """Score one episode from its undiscounted return and final success flag."""
        ret = torch.tensor(float(episode_return), dtype=torch.float64)
        succ = torch.tensor(float(bool(success)), dtype=torch.float64)
        return float(self.torch(ret, succ))

    def torch(self, episode_return: torch.Tensor, success: torch.Tensor) -> torch.Tensor:
        """Vectorised form of :meth:`__call__` on tensors of any (broadcastable) shape.

        Examples:
            >>> ScoreRule("return_clip", 0.0, 10.0).torch(torch.tensor([-1.0, 5.0, 20.0]), torch.zeros(3))
            tensor([0.0000, 0.5000, 1.0000])
        """
        like = episode_return
        return score_episodes(
            torch.tensor(self.code, device=like.device),
            torch.tensor(self.low, dtype=like.dtype, device=like.device),
            torch.tensor(self.high, dtype=like.dtype, device=like.device),
            episode_return,
            success,
        )

    @staticmethod
    def stack(rules: Sequence[ScoreRule]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-rule ``(code, low, high)`` tensors of shape ``[len(rules)]`` for :func:`score_episodes`.

        Examples:
            >>> ScoreRule.stack([ScoreRule("return", 0.0, 1000.0), ScoreRule("success")])
            (tensor([0, 2]), tensor([0., 0.]), tensor([1000.,    1.]))
        """
        code = torch.tensor([r.code for r in rules], dtype=torch.int64)
        low = torch.tensor([r.low for r in rules], dtype=torch.float32)
        high = torch.tensor([r.high for r in rules], dtype=torch.float32)
        return code, low, high


def score_episodes(
    code: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
    episode_return: torch.Tensor,
    success: torch.Tensor,
) -> torch.Tensor:
    """The one implementation of the score rules, on tensors (rules may differ element-wise).

    ``code`` holds each element's rule kind (index in :data:`SCORE_KINDS`); ``low``/``high`` its
    return range; all arguments broadcast together. :class:`ScoreRule` (scalar and tensor forms),
    :class:`~torchrl_newt.envs.EpisodeScore` and :class:`~torchrl_newt.envs.MultitaskVecEnv` all
    score through this function.

    Examples:
        >>> code, low, high = ScoreRule.stack([ScoreRule("return", 0.0, 100.0), ScoreRule("return_clip", 0.0, 100.0),
        ...                                    ScoreRule("success")])
        >>> score_episodes(code, low, high, torch.tensor([150.0, 150.0, 150.0]), torch.tensor([0.0, 0.0, 1.0]))
        tensor([1.5000, 1.0000, 1.0000])
    """
    ret = episode_return
    clipped = (torch.minimum(torch.maximum(ret, low), high) - low) / (high - low)
    score = torch.where(code == 0, ret / high, clipped)
    return torch.where(code == 2, success.to(ret.dtype), score)


def discount_heuristic(episode_length: int) -> float:
    """Newt's default per-task discount: ``clip((f - 1) / f, 0.95, 0.995)`` with ``f = T / 5``.

    Examples:
        >>> discount_heuristic(500)
        0.99
        >>> discount_heuristic(100)
        0.95
    """
    frac = episode_length / 5
    return float(min(max((frac - 1) / frac, 0.95), 0.995))


@dataclass(frozen=True)
class TaskSpec:
    """The facts of one task.

    Attributes:
        name: unique task name, e.g. ``"walker-walk"``.
        domain: MMBench domain (``"held-out"`` for held-out tasks; see ``base_domain``).
        instruction: the language instruction.
        embodiment: the embodiment description.
        obs_dim: length of the raw state observation (``None`` where unknown until built).
        action_dim: number of real action dimensions.
        episode_length: agent steps per episode (after action repeat).
        discount: per-task discount factor.
        score: the :class:`ScoreRule` mapping return/success to ``[0, 1]``.
        success_defined: whether the task reports a meaningful ``success`` flag.
        action_repeat: simulator sub-steps per agent step (applied by the raw task).
        base_domain: simulator family whose builder makes the env (equals ``domain`` except for
            held-out tasks).
        task_id: position in the registry (MMBench order, then held-out, then user tasks).
        source: domain-specific construction facts (env ids, kwargs...).
        in_soup: whether the task is one of the 200 MMBench training tasks.

    Examples:
        >>> spec = get_task("walker-walk")
        >>> spec.obs_dim, spec.action_dim, spec.episode_length, spec.discount
        (24, 6, 500, 0.99)
        >>> spec.text
        '2D walker with 6 controllable joints across 2 legs. Walk forward at moderate speed.'
    """

    name: str
    domain: str
    instruction: str
    embodiment: str
    obs_dim: int | None
    action_dim: int
    episode_length: int
    discount: float
    score: ScoreRule
    success_defined: bool = False
    action_repeat: int = 1
    base_domain: str = ""
    task_id: int = -1
    source: Mapping[str, Any] = field(default_factory=dict)
    in_soup: bool = False

    @property
    def text(self) -> str:
        """The text embedded for language conditioning: ``"{embodiment}. {instruction}."``."""
        return f"{self.embodiment}. {self.instruction}."

    @property
    def builder_domain(self) -> str:
        return self.base_domain or self.domain


@runtime_checkable
class RawTask(Protocol):
    """What a domain builder returns: one single-task simulator with a numpy interface.

    Contract: actions are float arrays in ``[-1, 1]`` of length ``action_dim``; ``step`` applies
    the task's action repeat (summing rewards) and never ends an episode (the transform stack
    truncates at the task's episode length); observations are 1-d float32 arrays of length
    ``obs_dim``; ``info`` may hold ``"success"`` (bool/float).
    """

    obs_dim: int
    action_dim: int

    def reset(self, seed: int | None = None) -> np.ndarray: ...

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, dict]: ...

    def render(self, width: int = 224, height: int = 224) -> np.ndarray: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class DomainInfo:
    """A registered simulator family.

    Attributes:
        name: the domain name (``"dmcontrol"``...).
        builder: ``builder(spec, **kwargs) -> RawTask``.
        extra: the pip extra that installs its simulator (``pip install -e .[extra]``).
        requires: importable module names that must be present to build its tasks.
    """

    name: str
    builder: Callable[..., RawTask]
    extra: str
    requires: tuple[str, ...] = ()

    def missing(self) -> list[str]:
        """Names of required modules that cannot be imported."""
        out = []
        for mod in self.requires:
            if importlib.util.find_spec(mod) is None:
                out.append(mod)
        return out

    def installed(self) -> bool:
        return not self.missing()


# Domain modules that register builders, imported lazily on first use.
_DOMAIN_MODULES = {
    "dmcontrol": "torchrl_newt.envs.domains.dmcontrol",
    "dmcontrol-ext": "torchrl_newt.envs.domains.dmcontrol_ext",
    "mujoco": "torchrl_newt.envs.domains.gym_mujoco",
    "box2d": "torchrl_newt.envs.domains.box2d",
    "metaworld": "torchrl_newt.envs.domains.metaworld",
    "maniskill": "torchrl_newt.envs.domains.maniskill",
    "ogbench": "torchrl_newt.envs.domains.ogbench",
    "robodesk": "torchrl_newt.envs.domains.robodesk",
    "atari": "torchrl_newt.envs.domains.atari",
    "pygame": "torchrl_newt.envs.domains.arcade",
}

_TASKS: dict[str, TaskSpec] = {}
_DOMAINS: dict[str, DomainInfo] = {}


def _load_facts() -> None:
    for i, row in enumerate(TASK_ROWS):
        (name, domain, base, emb, instr, obs_dim, act_dim, T, gamma, score, succ, repeat, source) = row
        _TASKS[name] = TaskSpec(
            name=name,
            domain=domain,
            instruction=instr,
            embodiment=emb,
            obs_dim=obs_dim,
            action_dim=act_dim,
            episode_length=T,
            discount=gamma,
            score=ScoreRule(*score),
            success_defined=succ,
            action_repeat=repeat,
            base_domain=base,
            task_id=i,
            source=source,
            in_soup=domain != "held-out",
        )


_load_facts()


def _close_matches(name: str, n: int = 5) -> list[str]:
    return difflib.get_close_matches(name, list(_TASKS), n=n, cutoff=0.5)


def get_task(name: str | TaskSpec) -> TaskSpec:
    """Return the :class:`TaskSpec` of a task.

    Args:
        name: the task name (or a spec, returned as is).

    Raises:
        UnknownTaskError: the name is not registered; the message lists close matches.

    Examples:
        >>> get_task("cartpole-swingup").action_dim
        1
        >>> try:
        ...     get_task("cheetah-rn")
        ... except KeyError as err:
        ...     print(err)
        unknown task 'cheetah-rn'. Did you mean: cheetah-run, cheetah-run-back, cheetah-run-front, cheetah-jump, cheetah-run-backward?
    """
    if isinstance(name, TaskSpec):
        return name
    try:
        return _TASKS[name]
    except KeyError:
        close = _close_matches(str(name))
        hint = f" Did you mean: {', '.join(close)}?" if close else " See torchrl_newt.envs.list_tasks()."
        raise UnknownTaskError(f"unknown task {name!r}.{hint}") from None


def list_tasks(domain: str | None = None, *, include_held_out: bool = False) -> list[str]:
    """Task names in registry order (MMBench order for the benchmark's tasks).

    Args:
        domain: keep only this domain (``"held-out"`` lists the held-out tasks).
        include_held_out: with ``domain=None``, also list the 34 held-out tasks and user tasks
            registered as not in the soup.

    Examples:
        >>> len(list_tasks())
        200
        >>> list_tasks("mujoco")[:2]
        ['mujoco-ant', 'mujoco-halfcheetah']
    """
    if domain is not None:
        known = {t.domain for t in _TASKS.values()}
        if domain not in known:
            close = difflib.get_close_matches(domain, sorted(known), n=3)
            raise ValueError(f"unknown domain {domain!r}; known domains: {sorted(known)}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return [n for n, t in _TASKS.items() if t.domain == domain]
    return [n for n, t in _TASKS.items() if include_held_out or t.in_soup]


def register_task(
    name: str,
    *,
    base: str | TaskSpec | None = None,
    domain: str | None = None,
    instruction: str | None = None,
    embodiment: str | None = None,
    overwrite: bool = False,
    **facts: Any,
) -> TaskSpec:
    """Register a new task, usually a variant of an existing one with a new instruction.

    The new task gets the next free task id. Unspecified facts are copied from ``base``.

    Args:
        name: the new task's name.
        base: an existing task to copy facts from (its simulator builder is reused).
        domain: MMBench-style domain label (defaults to the base's).
        instruction: the language instruction (how adaptation to unseen tasks is specified).
        embodiment: the embodiment description.
        overwrite: allow replacing a task registered earlier by the user.
        **facts: any other :class:`TaskSpec` field (``obs_dim``, ``episode_length``, ``score``,
            ``source``...).

    Examples:
        >>> spec = register_task("walker-walk-slowly", base="walker-walk",
        ...                      instruction="Walk forward slowly", overwrite=True)
        >>> spec.text
        '2D walker with 6 controllable joints across 2 legs. Walk forward slowly.'
    """
    if name in _TASKS and not overwrite:
        raise ValueError(f"task {name!r} is already registered (pass overwrite=True to replace it)")
    if name in _TASKS and _TASKS[name].task_id < len(TASK_ROWS):
        raise ValueError(f"task {name!r} is an MMBench task and cannot be replaced")
    task_id = _TASKS[name].task_id if name in _TASKS else max(t.task_id for t in _TASKS.values()) + 1
    if base is not None:
        spec = replace(get_task(base), name=name, task_id=task_id, in_soup=False)
    else:
        required = ("obs_dim", "action_dim", "episode_length")
        missing = [k for k in required if k not in facts] + [
            k for k, v in (("domain", domain), ("instruction", instruction), ("embodiment", embodiment)) if v is None
        ]
        if missing:
            raise ValueError(f"register_task({name!r}) without base= needs: {', '.join(missing)}")
        T = int(facts["episode_length"])
        spec = TaskSpec(
            name=name,
            domain=domain,
            instruction=instruction,
            embodiment=embodiment,
            obs_dim=facts["obs_dim"],
            action_dim=facts["action_dim"],
            episode_length=T,
            discount=facts.get("discount", discount_heuristic(T)),
            score=facts.get("score", ScoreRule("return", 0.0, float(T))),
            task_id=task_id,
        )
    updates = {k: v for k, v in facts.items()}
    if domain is not None:
        updates["domain"] = domain
    if instruction is not None:
        updates["instruction"] = instruction
    if embodiment is not None:
        updates["embodiment"] = embodiment
    if isinstance(updates.get("score"), tuple):
        updates["score"] = ScoreRule(*updates["score"])
    spec = replace(spec, **updates)
    if spec.action_dim < 1:
        raise ValueError(f"task {name!r} must have at least one action dimension")
    if not 0.0 < spec.discount <= 1.0:
        raise ValueError(f"task {name!r}: discount must be in (0, 1], got {spec.discount}")
    _TASKS[name] = spec
    return spec


def register_domain(
    name: str,
    builder: Callable[..., RawTask],
    *,
    extra: str,
    requires: Iterable[str] = (),
) -> None:
    """Register the builder of a simulator family.

    Args:
        name: domain name as used by :attr:`TaskSpec.builder_domain`.
        builder: ``builder(spec, **kwargs) -> RawTask``.
        extra: the pip extra installing the simulator (named in missing-dependency errors).
        requires: module names needed to build the domain's tasks.

    Examples:
        >>> class _Const:
        ...     obs_dim, action_dim = 1, 1
        ...     def reset(self, seed=None): return np.zeros(1, np.float32)
        ...     def step(self, a): return np.zeros(1, np.float32), 0.0, {}
        ...     def render(self, width=224, height=224): return np.zeros((height, width, 3), np.uint8)
        ...     def close(self): pass
        >>> register_domain("toy", lambda spec, **kw: _Const(), extra="toy")
        >>> get_domain("toy").installed()
        True
    """
    _DOMAINS[name] = DomainInfo(name=name, builder=builder, extra=extra, requires=tuple(requires))


def get_domain(name: str) -> DomainInfo:
    """Return a registered domain, importing its module on first use.

    Raises:
        KeyError: no module registers this domain.
    """
    if name not in _DOMAINS and name in _DOMAIN_MODULES:
        try:
            importlib.import_module(_DOMAIN_MODULES[name])
        except ModuleNotFoundError as err:
            # the domain module itself is not written yet, or failed on a missing simulator
            if err.name == _DOMAIN_MODULES[name]:
                raise KeyError(f"domain {name!r} is not implemented in this version of torchrl_newt") from None
            raise
    if name not in _DOMAINS:
        raise KeyError(f"no builder registered for domain {name!r}; known: {sorted(set(_DOMAINS) | set(_DOMAIN_MODULES))}")
    return _DOMAINS[name]


def list_domains() -> list[str]:
    """Names of the simulator families torchrl_newt knows how to build (registered or lazy)."""
    return sorted(set(_DOMAINS) | set(_DOMAIN_MODULES))


def require_installed(tasks: Iterable[str | TaskSpec]) -> None:
    """Raise :class:`MissingDependencyError` naming the pip extra if a task's simulator is missing.

    Examples:
        >>> require_installed(["walker-walk"])  # dm_control is installed here
    """
    specs = [get_task(t) for t in tasks]
    for domain in dict.fromkeys(s.builder_domain for s in specs):
        info = get_domain(domain)
        missing = info.missing()
        if missing:
            names = [s.name for s in specs if s.builder_domain == domain]
            raise MissingDependencyError(
                f"{'task' if len(names) == 1 else 'tasks'} {', '.join(map(repr, names))} need{'s' if len(names) == 1 else ''} "
                f"{', '.join(missing)}; install with `pip install torchrl_newt[{info.extra}]` "
                f"(or `pip install -e .[{info.extra}]` from a checkout)"
            )


def build_raw_task(task: str | TaskSpec, **kwargs: Any) -> RawTask:
    """Build the raw single-task simulator of a task (no padding, masking or truncation).

    Raises:
        MissingDependencyError: the simulator is not installed; the message names the pip extra.
    """
    spec = get_task(task)
    require_installed([spec])
    raw = get_domain(spec.builder_domain).builder(spec, **kwargs)
    check_raw_dims(spec, raw)
    return raw


def check_raw_dims(spec: TaskSpec, raw: RawTask) -> None:
    """Raise ``RuntimeError`` if a built simulator's sizes disagree with its registry facts.

    Examples:
        >>> class _Raw:
        ...     obs_dim, action_dim = 5, 2
        >>> try:
        ...     check_raw_dims(get_task("cartpole-balance"), _Raw())
        ... except RuntimeError as err:
        ...     print(err)
        task 'cartpole-balance': simulator gives action_dim=2, registry says 1
    """
    if spec.obs_dim is not None and raw.obs_dim != spec.obs_dim:
        raise RuntimeError(f"task {spec.name!r}: simulator gives obs_dim={raw.obs_dim}, registry says {spec.obs_dim}")
    if raw.action_dim != spec.action_dim:
        raise RuntimeError(
            f"task {spec.name!r}: simulator gives action_dim={raw.action_dim}, registry says {spec.action_dim}"
        )

