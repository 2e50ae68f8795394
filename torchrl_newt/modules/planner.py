"""TD-MPC2's MPPI planner in latent space, as a TensorDict policy.

The warm-start state (the previous plan's mean) travels in the tensordict under ``state_key``:
the planner reads it from the root and writes the new plan to ``("next", *state_key)``, so a
:class:`~torchrl.envs.transforms.TensorDictPrimer` (see :meth:`TDMPC2Planner.make_primer`) plus
TorchRL's ``step_mdp`` carry it from step to step and reset it at episode starts. The module holds
no per-episode Python state and stores no device.
"""

from __future__ import annotations

import logging
import warnings
from typing import Sequence

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torchrl.data import Unbounded
from torchrl.envs.transforms import TensorDictPrimer
from torchrl.envs.utils import ExplorationType, exploration_type

from torchrl_newt.modules.world_model import NewtWorldModel

__all__ = ["TDMPC2Planner"]

logger = logging.getLogger(__name__)


def _as_key_tuple(key: NestedKey) -> tuple:
    return (key,) if isinstance(key, str) else tuple(key)


def _caller_stacklevel() -> int:
    """``stacklevel`` pointing a warning at the first frame outside torch, tensordict and this module."""
    import sys

    def internal(name: str) -> bool:
        return name == __name__ or name.split(".")[0] in ("torch", "tensordict", "torchrl")

    frame, level = sys._getframe(1), 1
    while frame is not None and internal(str(frame.f_globals.get("__name__", ""))):
        frame, level = frame.f_back, level + 1
    return level


def validate_discount(discount: float | torch.Tensor, world_model: NewtWorldModel | None = None) -> torch.Tensor:
    """A float or per-task ``[num_tasks]`` discount as a float tensor, or one clear error.

    Examples:
        >>> validate_discount(0.99)
        tensor(0.9900)
        >>> try:
        ...     validate_discount(torch.tensor([0.9, 1.5]))
        ... except ValueError as err:
        ...     print(err)
        discount must be in (0, 1], got [1.5]
    """
    discount = torch.as_tensor(discount, dtype=torch.float32)
    if discount.dim() > 1:
        raise ValueError(f"discount must be a float or a [num_tasks] tensor, got shape {tuple(discount.shape)}")
    bad = (discount <= 0) | (discount > 1) | discount.isnan()
    if bool(bad.any()):
        values = discount.flatten()[bad.flatten()].tolist()
        raise ValueError(f"discount must be in (0, 1], got {values if discount.dim() else float(discount)}")
    num_tasks = getattr(world_model, "num_tasks", None)
    if discount.dim() == 1 and num_tasks is not None and discount.shape[0] != num_tasks:
        raise ValueError(
            f"per-task discount has {discount.shape[0]} entries but the world model has {num_tasks} tasks; "
            "pass one discount per task, in task-id order (e.g. task_tensors(tasks)['discount'])"
        )
    return discount


def constraint_weight(step: int, start: int = 2_000_000, final: int = 10_000_000) -> float:
    """Newt's constrained-planning weight at env step ``step``.

    ``1`` until ``start`` (Newt's ``constraint_start_step``), then ``1 - (step - start) / final``
    (``constraint_final_step``), floored at ``0`` (reference ``tdmpc2.py:242-247``,
    ``common/math.py:128-145``, ``config.py:67-69``). Feed it to
    :meth:`TDMPC2Planner.set_prior_weight` in training and evaluation.

    Examples:
        >>> constraint_weight(0), constraint_weight(2_000_000), constraint_weight(7_000_000)
        (1.0, 1.0, 0.5)
        >>> constraint_weight(12_000_000), constraint_weight(50_000_000)
        (0.0, 0.0)
        >>> constraint_weight(150, start=100, final=200)
        0.75
    """
    if step < start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / max(final, 1))


class TDMPC2Planner(TensorDictModuleBase):
    """MPPI planning with a :class:`~torchrl_newt.modules.NewtWorldModel` (TD-MPC2 / Newt).

    Each call encodes the observation, rolls ``num_pi_trajs`` trajectories of the policy prior
    through the latent dynamics, then runs ``iterations`` rounds of MPPI: sample
    ``num_samples - num_pi_trajs`` Gaussian action sequences around the current mean, score every
    sequence by ``sum_t gamma^t r_t + gamma^H Q(z_H, pi(z_H))``, keep the ``num_elites`` best and
    refit mean/std with weights ``softmax(temperature * (v - max v))``. The action is the first
    step of one elite drawn by Gumbel-max on those weights, plus ``std_0``-scaled Gaussian noise
    only under :class:`~torchrl.envs.utils.ExplorationType` ``RANDOM`` (the collector's default).

    Multitask features: per-task discount (a ``[num_tasks]`` tensor indexed by the task id), a
    per-lane action mask (read from ``action_mask_key`` when present: samples, mean, std and the
    chosen action are zero in masked dims), and *constrained planning*: with ``prior_weight``
    ``w > 0`` the initial mean/std mix the policy-prior statistics (weight ``w``) with the warm
    start (weight ``1 - w``); set it with :meth:`set_prior_weight`, e.g. to
    :func:`constraint_weight` of the env step, as Newt does after demonstration pretraining.

    Warm start: append :meth:`make_primer` (and :class:`~torchrl.envs.transforms.InitTracker`)
    to the env so the previous plan travels in the tensordict. Without that state in the input the
    planner plans from scratch every step and warns once (per planner).

    Action ranges: the planner samples and returns actions in ``[-1, 1]`` (as MMBench's envs
    expect). For an env whose action spec has other bounds (e.g. ``Pendulum-v1``'s ``[-2, 2]``),
    append TorchRL's :class:`~torchrl.envs.transforms.ActionScaling`, which exposes a ``[-1, 1]``
    action spec and maps the planner's actions affinely onto the env's bounds::

        env = TransformedEnv(GymEnv("Pendulum-v1"), Compose(ActionScaling(), InitTracker(), planner.make_primer()))

    Args:
        world_model: the world model.
        horizon: planning horizon ``H``.
        iterations: MPPI iterations.
        num_samples: action sequences per iteration (including the prior trajectories).
        num_elites: elites kept per iteration.
        num_pi_trajs: policy-prior trajectories.
        temperature: MPPI temperature.
        min_std, max_std: bounds of the sampling std (the warm-start std is ``max_std``).
        discount: a float, or a ``[num_tasks]`` tensor of per-task discounts (one per task of a
            multitask world model), all in ``(0, 1]``.
        prior_weight: initial constrained-planning weight in ``[0, 1]``.
        env_chunk_size: plan at most this many envs at once (``None``: all together). On CPU,
            chunks of ~8 envs keep the ``[envs x samples, width]`` activations in cache and make
            planning for hundreds of envs about twice as fast; on GPU leave it ``None``.
        observation_key, task_key, action_mask_key, action_key, state_key, is_init_key:
            tensordict keys. ``task_key`` is ignored by single-task world models; the mask is
            optional at run time.

    Raises:
        ValueError: at construction, a discount outside ``(0, 1]`` or a per-task discount whose
            length is not the world model's task count; when planning, a NaN/inf observation or
            an action mask whose width is not the world model's ``action_dim``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> wm = NewtWorldModel(obs_dim=8, action_dim=4, size="S", num_tasks=2)
        >>> planner = TDMPC2Planner(wm, num_samples=64, num_elites=8, num_pi_trajs=4, iterations=2)
        >>> td = TensorDict(observation=torch.randn(3, 8), task=torch.tensor([0, 1, 1]),
        ...                 action_mask=torch.tensor([[1, 1, 0, 0]] * 3).bool(), batch_size=[3])
        >>> td = planner(td)
        >>> td["action"].shape, td["next", "planner", "loc"].shape
        (torch.Size([3, 4]), torch.Size([3, 3, 4]))
        >>> bool((td["action"][:, 2:] == 0).all())
        True
    """

    def __init__(
        self,
        world_model: NewtWorldModel,
        *,
        horizon: int = 3,
        iterations: int = 6,
        num_samples: int = 512,
        num_elites: int = 64,
        num_pi_trajs: int = 24,
        temperature: float = 0.5,
        min_std: float = 0.05,
        max_std: float = 2.0,
        discount: float | torch.Tensor = 0.99,
        prior_weight: float = 0.0,
        env_chunk_size: int | None = None,
        observation_key: NestedKey = "observation",
        task_key: NestedKey = "task",
        action_mask_key: NestedKey | None = "action_mask",
        action_key: NestedKey = "action",
        state_key: NestedKey = ("planner", "loc"),
        is_init_key: NestedKey = "is_init",
    ) -> None:
        super().__init__()
        if not 0 <= num_pi_trajs < num_samples:
            raise ValueError(f"num_pi_trajs ({num_pi_trajs}) must be in [0, num_samples={num_samples})")
        if not 0 < num_elites <= num_samples:
            raise ValueError(f"num_elites ({num_elites}) must be in (0, num_samples={num_samples}]")
        if horizon < 1 or iterations < 1:
            raise ValueError("horizon and iterations must be >= 1")
        self.world_model = world_model
        self.horizon, self.iterations = horizon, iterations
        self.num_samples, self.num_elites, self.num_pi_trajs = num_samples, num_elites, num_pi_trajs
        self.temperature, self.min_std, self.max_std = temperature, min_std, max_std
        if env_chunk_size is not None and env_chunk_size < 1:
            raise ValueError(f"env_chunk_size must be >= 1 or None, got {env_chunk_size}")
        self.env_chunk_size = env_chunk_size
        discount = validate_discount(discount, world_model)
        self.register_buffer("discount", discount.clone())
        self.register_buffer("prior_weight", torch.tensor(float(prior_weight)))
        self.observation_key = observation_key
        self.task_key = task_key if world_model.task_dim or discount.dim() == 1 else None
        self.action_mask_key = action_mask_key
        self.action_key = action_key
        self.state_key = _as_key_tuple(state_key)
        self.is_init_key = is_init_key
        self.in_keys = [k for k in (observation_key, self.task_key, action_mask_key, self.state_key, is_init_key) if k is not None]
        self.out_keys = [action_key, ("next", *self.state_key)]
        self._warned_no_state = False

    # ------------------------------------------------------------------ public helpers
    def make_primer(self, batch_size: Sequence[int] = ()) -> TensorDictPrimer:
        """A primer that zeroes the warm-start state at every reset (append it to the env).

        Examples:
            >>> wm = NewtWorldModel(obs_dim=3, action_dim=1, size="S")
            >>> TDMPC2Planner(wm).make_primer()
            TensorDictPrimer(primers=Composite(...), default_value=..., random=None)
        """
        spec = Unbounded(shape=(*batch_size, self.horizon, self.world_model.action_dim))
        return TensorDictPrimer({self.state_key: spec}, default_value=0.0, expand_specs=True)

    def set_prior_weight(self, weight: float) -> None:
        """Set the constrained-planning mixing weight (in place, graph-safe)."""
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"prior weight must be in [0, 1], got {weight}")
        self.prior_weight.fill_(weight)

    def compile_plan(self, **compile_kwargs) -> TDMPC2Planner:
        """Compile the planning step with :func:`torch.compile` (call it from your script).

        The compiled function plans one chunk of ``env_chunk_size`` envs (all envs when
        chunking is off), so the graph stays the same size whatever the number of envs.
        ``compile_kwargs`` go to ``torch.compile`` (e.g. ``mode="reduce-overhead"`` for CUDA
        graphs; ``dynamic=False`` is the default here). Returns ``self``.

        Examples:
            >>> wm = NewtWorldModel(obs_dim=3, action_dim=1, size="S")
            >>> planner = TDMPC2Planner(wm).compile_plan()  # compiles lazily, at the first call
        """
        compile_kwargs.setdefault("dynamic", False)
        self._plan = torch.compile(type(self)._plan.__get__(self), **compile_kwargs)
        return self

    # ------------------------------------------------------------------ planning
    def _discount(self, task: torch.Tensor | None, batch: int, like: torch.Tensor) -> torch.Tensor:
        if self.discount.dim() == 0:
            return self.discount.to(like.dtype).expand(batch, 1)
        if task is None:
            raise ValueError(f"per-task discounts need the task key {self.task_key!r} in the input")
        return self.discount[task].to(like.dtype).view(batch, 1)

    def _estimate_value(self, z, actions, task, mask, gamma):
        """Value of action sequences: z [N,1,L] (shared by the samples), actions [N,S,H,A], gamma [N,1] -> [N,S,1].

        At ``t = 0`` the latent's share of the reward and dynamics first layers is computed once
        per env and broadcast over the samples (see :class:`~torchrl_newt.modules.layers.TaskMLP`).
        """
        wm = self.world_model
        task_s = None if task is None else task.unsqueeze(1)  # broadcasts over samples
        mask_s = None if mask is None else mask.unsqueeze(1).expand(*actions.shape[:2], -1)
        value = actions.new_zeros(*actions.shape[:2], 1)
        disc = torch.ones_like(value)
        g = gamma.unsqueeze(1)
        for t in range(self.horizon):
            a = actions[:, :, t]
            value = value + disc * wm.decode(wm.reward(z, a, task_s))
            z = wm.next(z, a, task_s)
            disc = disc * g
        a = wm.pi(z, task_s, mask_s).action
        return value + disc * wm.q_value(z, a, task_s, reduce="avg")

    @torch.no_grad()
    def plan(
        self,
        obs: torch.Tensor,
        task: torch.Tensor | None = None,
        action_mask: torch.Tensor | None = None,
        prev_mean: torch.Tensor | None = None,
        is_init: torch.Tensor | None = None,
        explore: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Plan for a batch of observations ``[N, obs_dim]`` (tensor API), ``env_chunk_size`` envs at a time.

        :meth:`compile_plan` compiles the per-chunk step this calls.

        Returns:
            ``(action [N, A], mean [N, H, A])``; ``mean`` is the warm start of the next call.
        """
        self._check_inputs(obs, action_mask)
        n, c = obs.shape[0], self.env_chunk_size
        if c is None or n <= c:
            return self._plan(obs, task, action_mask, prev_mean, is_init, explore)
        outs = [
            self._plan(*(None if x is None else x[i : i + c] for x in (obs, task, action_mask, prev_mean, is_init)), explore)
            for i in range(0, n, c)
        ]
        return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])

    def _check_inputs(self, obs: torch.Tensor, action_mask: torch.Tensor | None) -> None:
        """Readable errors for inputs that would otherwise plan garbage or fail deep inside."""
        if obs.dim() != 2:
            raise ValueError(f"plan() expects observations of shape [N, obs_dim], got {tuple(obs.shape)}")
        finite = torch.isfinite(obs).all(-1)
        if not bool(finite.all()):
            rows = (~finite).nonzero().flatten().tolist()
            raise ValueError(
                f"{type(self).__name__}: the observation contains NaN or inf (env rows {rows[:10]}); "
                "the planner would return NaN actions. Check the environment (or its normalisation)."
            )
        width = self.world_model.action_dim
        if action_mask is not None and action_mask.shape[-1] != width:
            raise ValueError(
                f"{type(self).__name__}: action_mask has width {action_mask.shape[-1]}, but the world model's "
                f"action_dim is {width}; pad the mask (and actions) to {width}"
            )

    def _plan(
        self,
        obs: torch.Tensor,
        task: torch.Tensor | None = None,
        action_mask: torch.Tensor | None = None,
        prev_mean: torch.Tensor | None = None,
        is_init: torch.Tensor | None = None,
        explore: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        wm = self.world_model
        if obs.dim() != 2:
            raise ValueError(f"plan() expects observations of shape [N, obs_dim], got {tuple(obs.shape)}")
        n, H, A = obs.shape[0], self.horizon, wm.action_dim
        S, P, K = self.num_samples, self.num_pi_trajs, self.num_elites
        if task is not None:
            task = task.reshape(n).long()
        mask = None
        if action_mask is not None:
            mask = action_mask.reshape(n, A).to(obs.dtype)
            if bool((mask.sum(-1) == 0).any()):
                raise ValueError("an action mask has no valid dimension")
        z = wm.encode(obs, task if wm.task_dim else None)  # checks the task ids first
        gamma = self._discount(task, n, obs)
        wm_task = task if wm.task_dim else None

        # trajectories of the policy prior
        pi_actions = obs.new_zeros(n, P, H, A)
        if P:
            zp = z.unsqueeze(1).expand(n, P, z.shape[-1])
            tp = None if wm_task is None else wm_task.unsqueeze(1)
            mp = None if mask is None else mask.unsqueeze(1).expand(n, P, A)
            for t in range(H):
                pi_actions[:, :, t] = wm.pi(zp, tp, mp).action
                if t < H - 1:
                    zp = wm.next(zp, pi_actions[:, :, t], tp)

        # warm start: previous mean shifted by one step (zeros at episode start)
        mean = obs.new_zeros(n, H, A)
        if prev_mean is not None:
            mean[:, :-1] = prev_mean.reshape(n, H, A)[:, 1:]
            if is_init is not None:
                mean = torch.where(is_init.reshape(n, 1, 1), torch.zeros_like(mean), mean)
        std = torch.full_like(mean, self.max_std)
        if P > 1:
            w = self.prior_weight.to(obs.dtype)
            prior_std = pi_actions.std(1).clamp(self.min_std, self.max_std)
            mean = w * pi_actions.mean(1) + (1 - w) * mean
            std = w * prior_std + (1 - w) * std
        if mask is not None:
            mean, std = mean * mask.unsqueeze(1), std * mask.unsqueeze(1)

        zs = z.unsqueeze(1)  # [N, 1, L]: broadcast over the samples
        for _ in range(self.iterations):
            noise = torch.randn(n, S - P, H, A, dtype=obs.dtype, device=obs.device)
            sampled = (mean.unsqueeze(1) + std.unsqueeze(1) * noise).clamp(-1, 1)
            actions = torch.cat([pi_actions, sampled], 1)
            if mask is not None:
                actions = actions * mask.view(n, 1, 1, A)
            value = self._estimate_value(zs, actions, wm_task, mask, gamma).squeeze(-1).nan_to_num(0.0)
            elite_value, elite_idx = value.topk(K, dim=1)
            elite_actions = actions.gather(1, elite_idx.view(n, K, 1, 1).expand(n, K, H, A))
            score = torch.softmax(self.temperature * (elite_value - elite_value.max(1, keepdim=True).values), 1)
            sw = score.view(n, K, 1, 1)
            mean = (sw * elite_actions).sum(1)
            std = ((sw * (elite_actions - mean.unsqueeze(1)).pow(2)).sum(1)).sqrt().clamp(self.min_std, self.max_std)
            if mask is not None:
                mean, std = mean * mask.unsqueeze(1), std * mask.unsqueeze(1)

        # pick one elite by Gumbel-max on its weight
        gumbel = -torch.empty_like(score).exponential_().log()
        choice = (score.clamp_min(1e-20).log() + gumbel).argmax(1)
        action = elite_actions[torch.arange(n, device=obs.device), choice, 0]
        if explore:
            action = action + std[:, 0] * torch.randn_like(action)
        action = action.clamp(-1, 1)
        if mask is not None:
            action = action * mask
        return action, mean

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        obs = tensordict.get(self.observation_key)
        batch = obs.shape[:-1]
        flat = obs.reshape(-1, obs.shape[-1])
        n = flat.shape[0]

        def _get(key):
            if key is None:
                return None
            val = tensordict.get(key, None)
            return None if val is None else val.reshape(n, *val.shape[len(batch):])

        task = _get(self.task_key)
        state = _get(self.state_key)
        if state is None and not self._warned_no_state:
            self._warned_no_state = True
            warnings.warn(
                f"{type(self).__name__}: no warm-start state {self.state_key!r} in the input, so every step plans "
                "from scratch. Append planner.make_primer() (with InitTracker()) to the env to carry the plan "
                "between steps. This warning is shown once per planner.",
                UserWarning,
                stacklevel=_caller_stacklevel(),
            )
        if self.world_model.task_dim and task is None:
            raise KeyError(f"the world model is task-conditioned but {self.task_key!r} is missing from the input")
        action, mean = self.plan(
            flat,
            task,
            _get(self.action_mask_key),
            state,
            _get(self.is_init_key),
            explore=exploration_type() == ExplorationType.RANDOM,
        )
        tensordict.set(self.action_key, action.reshape(*batch, -1))
        tensordict.set(("next", *self.state_key), mean.reshape(*batch, *mean.shape[1:]))
        return tensordict
