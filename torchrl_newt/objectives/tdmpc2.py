"""TD-MPC2 / Newt losses as TorchRL :class:`~torchrl.objectives.LossModule` s.

* :class:`TDMPC2WorldModelLoss`: latent consistency, two-hot reward and two-hot value losses
  over a sub-trajectory (plus an optional behaviour-cloning term for demonstration pretraining).
  It owns the target Q parameters (``target_qvalue_network_params``), updated with
  :class:`torchrl.objectives.SoftUpdate` (``tau=0.01`` in Newt).
* :class:`TDMPC2ActorLoss`: the policy prior's max-Q objective with a running Q scale, an entropy
  bonus scaled by the number of valid action dims and a masked behaviour-cloning prior.

Inputs are tensordicts of shape ``[B, T]`` holding ``T`` consecutive transitions of one episode
(``T + 1`` observations, the last one under ``("next", "observation")``). The losses never write
into their input: everything they produce is in the returned tensordict, including the world-model
loss's rolled-out latents (``latent``, ``[B, T + 1, L]``, which the actor loss can reuse) and its
per-sample priorities (``td_error``, ``[B]``). With prioritized replay, the importance weights of
the sampled batch (``priority_weight``, TorchRL's key, configurable with ``set_keys``) weight the
mean over samples of every loss term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import dispatch
from tensordict.utils import NestedKey
from torch import nn
from torchrl.objectives import LossModule

from torchrl_newt.modules.planner import validate_discount
from torchrl_newt.modules.world_model import NewtWorldModel

__all__ = [
    "NonFiniteLossError",
    "RunningScale",
    "TDMPC2ActorLoss",
    "TDMPC2WorldModelLoss",
    "assert_finite_losses",
    "masked_mse",
]


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite."""


def assert_finite_losses(losses: TensorDictBase, step: int | None = None) -> None:
    """Raise :class:`NonFiniteLossError` naming the first NaN/inf ``loss_*`` term (and the step).

    Examples:
        >>> from tensordict import TensorDict
        >>> assert_finite_losses(TensorDict(loss_value=torch.tensor(1.0)), step=3)
        >>> try:
        ...     assert_finite_losses(TensorDict(loss_value=torch.tensor(float("nan"))), step=3)
        ... except FloatingPointError as err:
        ...     print(err)
        loss term 'loss_value' is nan at update step 3
    """
    keys = [k for k in losses.keys() if isinstance(k, str) and k.startswith("loss_")]
    if not keys:
        return
    values = torch.stack([losses.get(k).detach().float().sum() for k in keys])
    finite = torch.isfinite(values)
    if bool(finite.all()):
        return
    bad = int((~finite).nonzero()[0])
    where = f" at update step {step}" if step is not None else ""
    raise NonFiniteLossError(f"loss term {keys[bad]!r} is {float(values[bad])}{where}")


def _check_batch(tensordict: TensorDictBase) -> None:
    if tensordict.ndim != 2:
        raise ValueError(
            f"expected a batch of sub-trajectories with shape [B, T], got batch_size {tuple(tensordict.shape)}"
        )


def _task_ids(tensordict: TensorDictBase, key: NestedKey, shape: tuple[int, int] | None = None) -> torch.Tensor:
    """Task ids as a ``[B, T]`` long tensor (``[B]`` ids are broadcast); ``shape`` defaults to the batch's."""
    shape = tuple(tensordict.shape) if shape is None else tuple(shape)
    task = tensordict.get(key, None)
    if task is None:
        raise KeyError(f"task-conditioned loss: key {key!r} is missing from the batch")
    if task.dim() == 1:
        task = task.unsqueeze(-1).expand(shape)
    return task.reshape(shape).long()


def _priority_weights(
    tensordict: TensorDictBase, key: NestedKey, use: str | bool, batch: int, like: torch.Tensor
) -> torch.Tensor | None:
    """Per-sample importance weights ``[B]`` read from ``key``, or ``None`` (no prioritized replay).

    Follows TorchRL's ``use_prioritized_weights`` switch: ``"auto"`` uses the key when present,
    ``True`` likewise, ``False`` never. Weights may be ``[B]``, ``[B, 1]`` or per step
    (``[B, T(, 1)]``, as the replay buffers write them); per-step weights are averaged over time.

    Examples:
        >>> from tensordict import TensorDict
        >>> td = TensorDict({"priority_weight": torch.tensor([[0.5, 0.5], [1.0, 1.0]])}, batch_size=[2, 2])
        >>> _priority_weights(td, "priority_weight", "auto", 2, torch.zeros(()))
        tensor([0.5000, 1.0000])
        >>> _priority_weights(td, "priority_weight", False, 2, torch.zeros(())) is None
        True
    """
    if use not in (True, False, "auto"):
        raise ValueError(f"use_prioritized_weights must be True, False or 'auto', got {use!r}")
    if use is False:
        return None
    weights = tensordict.get(key, None)
    if weights is None:
        return None
    weights = torch.as_tensor(weights)
    if weights.shape[:1] != (batch,):
        raise ValueError(
            f"importance weights {key!r} must have one row per sample ([B] or [B, T]), got shape "
            f"{tuple(weights.shape)} for a batch of {batch} samples"
        )
    return weights.reshape(batch, -1).to(like.dtype).mean(-1)


def _weighted_mean(per_sample: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean over samples, importance-weighted as in TorchRL: ``sum(w * l) / sum(w)``.

    Examples:
        >>> _weighted_mean(torch.tensor([1.0, 3.0]), None)
        tensor(2.)
        >>> _weighted_mean(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0]))
        tensor(3.)
    """
    if weights is None:
        return per_sample.mean()
    return (per_sample * weights).sum() / weights.sum()


TIME_WEIGHTS = ("newt", "horizon")


def _rho_weights(rho: float, steps: int, like: torch.Tensor, norm_steps: int | None = None) -> torch.Tensor:
    """``rho^t / sum_{s < norm_steps} rho^s`` for ``t < steps`` (``norm_steps`` defaults to ``steps``).

    Examples:
        >>> _rho_weights(0.5, 3, torch.zeros(()), norm_steps=4)  # Newt: 1, 1/2, 1/4 over 15/8
        tensor([0.5333, 0.2667, 0.1333])
    """
    norm_steps = steps if norm_steps is None else norm_steps
    w = rho ** torch.arange(max(steps, norm_steps), dtype=like.dtype, device=like.device)
    return w[:steps] / w[:norm_steps].sum()


def _check_time_weights(time_weights: str) -> None:
    if time_weights not in TIME_WEIGHTS:
        raise ValueError(f"time_weights must be one of {TIME_WEIGHTS}, got {time_weights!r}")


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Squared error averaged over the valid (``mask == 1``) action dims: ``[*B, A] -> [*B]``.

    Examples:
        >>> masked_mse(torch.tensor([[1.0, 2.0, 5.0]]), torch.zeros(1, 3), torch.tensor([[1.0, 1.0, 0.0]]))
        tensor([2.5000])
    """
    err = (pred - target).pow(2)
    if mask is None:
        return err.mean(-1)
    return (err * mask).sum(-1) / mask.sum(-1).clamp_min(1)


class RunningScale(nn.Module):
    """Running estimate of the 5-95 percentile range of Q values (clamped at 1), TD-MPC2 style.

    Under ``torch.distributed`` (world size > 1) the measured range is averaged across ranks
    before the update, so every rank keeps the same scale.

    Args:
        tau: lerp rate of the running estimate.

    Examples:
        >>> scale = RunningScale(tau=0.5)
        >>> scale.update(torch.linspace(0, 100, 101))
        >>> round(float(scale.value), 2)
        45.5
    """

    def __init__(self, tau: float = 0.01) -> None:
        super().__init__()
        self.tau = tau
        self.register_buffer("value", torch.ones(()))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.detach().float().flatten()
        q = torch.quantile(x, torch.tensor([0.05, 0.95], device=x.device, dtype=x.dtype))
        span = (q[1] - q[0]).clamp_min(1.0)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(span)
            span = span / dist.get_world_size()
        self.value.lerp_(span.to(self.value.dtype), self.tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.value


class _KeysMixin:
    def _forward_value_estimator_keys(self, **kwargs) -> None:
        pass


class TDMPC2WorldModelLoss(_KeysMixin, LossModule):
    """World-model and value loss of TD-MPC2 / Newt.

    With latents ``z_0 = h(o_0)``, ``z_{t+1} = d(z_t, a_t)`` rolled out over the ``T`` transitions of
    each sample and Newt's weights ``rho_t = rho^t / sum_{s=0..T} rho^s`` (normalised over ``T + 1``
    terms, of which these losses use the first ``T``; reference ``tdmpc2.py:50-51``):

    * ``loss_consistency = consistency_coef * sum_t rho_t * MSE(z_{t+1}, sg(h(o_{t+1})))``
    * ``loss_reward = reward_coef * sum_t rho_t * CE(R(z_t, a_t), r_t)`` (two-hot, symlog space)
    * ``loss_value = value_coef * sum_t rho_t * mean_i CE(Q_i(z_t, a_t), y_t)`` with
      ``y_t = r_t + gamma_task * (1 - terminated_t) * min_{2 random target heads}
      Q'(h(o_{t+1}), pi(h(o_{t+1})))``: the bootstrap stops at ``("next", "terminated")`` (absent:
      never terminated, as in MMBench, whose lanes never terminate)
    * optionally, for demonstration pretraining, Newt's policy-prior term
      ``loss_prior = prior_coef * mean_{t,b} rho_t * (masked_MSE(a~_t, a_t) - entropy_coef *
      scaled_entropy_t)`` where ``a~_t`` is the policy's sampled (reparameterised) action at the
      rolled-out latent ``z_t`` (reference ``tdmpc2.py:25-31, 368-372``). It trains the policy
      prior (and, through ``z_t``, the encoder and dynamics) with the model's optimiser.

    The mean over samples ``b`` is importance-weighted when the batch holds prioritized-replay
    weights ``w_b`` under ``priority_weight`` (TorchRL's convention, as in its SAC and TD3 losses):
    ``sum_b w_b l_b / sum_b w_b``.

    Gradients reach the encoder, dynamics, reward head, Q ensemble and a learnable task table,
    never the policy (unless ``prior_coef > 0``).

    The input batch is only read, never written. Besides the losses, the output holds

    * ``td_target``: the mean TD target (a metric);
    * ``latent``: the rolled-out latents ``z_0..z_T`` (``[B, T + 1, L]``, detached), which
      :class:`TDMPC2ActorLoss` reads instead of encoding the observations again;
    * ``td_error``: per-sample priorities ``sum_t rho_t * mean_i CE(Q_i(z_t, a_t), y_t)``
      (``[B]``, detached, not importance-weighted) for
      :meth:`~torchrl_newt.data.MultitaskReplayBuffer.update_priority`.

    Args:
        world_model: the :class:`~torchrl_newt.modules.NewtWorldModel`.
        discount: float or ``[num_tasks]`` tensor of per-task discounts.
        rho: temporal weight decay.
        consistency_coef, reward_coef, value_coef: loss coefficients (Newt: 20, 0.1, 0.1).
        prior_coef: weight of the policy-prior term (Newt: 1.0 while pretraining on demos, 0
            online, which skips the term).
        entropy_coef: entropy coefficient inside the policy-prior term (Newt: 1e-4).
        num_target_heads: target heads whose minimum forms the TD target.
        time_weights: ``"newt"`` (default) normalises ``rho^t`` over ``T + 1`` terms as the
            reference does; ``"horizon"`` normalises over the ``T`` terms used (our earlier
            variant, every term ``(T + 1)``-weights-sum / ``T``-weights-sum larger: 15/14 for
            ``T = 3``).
        use_prioritized_weights: TorchRL's switch: ``"auto"`` (default) and ``True`` weight the
            losses by ``priority_weight`` when the batch has it, ``False`` ignores it.

    Examples:
        >>> from tensordict import TensorDict
        >>> from torchrl.objectives import SoftUpdate
        >>> wm = NewtWorldModel(obs_dim=6, action_dim=2, size="S", num_tasks=3)
        >>> loss_fn = TDMPC2WorldModelLoss(wm, discount=torch.tensor([0.99, 0.95, 0.9]))
        >>> updater = SoftUpdate(loss_fn, tau=0.01)
        >>> B, T = 4, 3
        >>> td = TensorDict({"observation": torch.randn(B, T, 6), "action": torch.rand(B, T, 2) * 2 - 1,
        ...                  "task": torch.randint(3, (B, 1)).expand(B, T),
        ...                  "priority_weight": torch.ones(B, T),
        ...                  "next": {"observation": torch.randn(B, T, 6), "reward": torch.randn(B, T, 1),
        ...                           "terminated": torch.zeros(B, T, 1, dtype=torch.bool)}},
        ...                 batch_size=[B, T])
        >>> losses = loss_fn(td)
        >>> sorted(losses.keys())
        ['latent', 'loss_consistency', 'loss_reward', 'loss_value', 'td_error', 'td_target']
        >>> losses["latent"].shape == (B, T + 1, wm.latent_dim)  # z_0..z_T of the rollout
        True
        >>> losses["td_error"].shape  # one priority per sample
        torch.Size([4])
        >>> "latent" in td.keys()  # the batch is left alone
        False
        >>> sum(v for k, v in losses.items() if k.startswith("loss_")).backward()
        >>> updater.step()
    """

    @dataclass
    class _AcceptedKeys:
        """Tensordict keys of the loss (configure with ``set_keys``).

        Attributes:
            observation: observations ``[B, T, obs_dim]`` (the next ones under ``("next", ...)``).
            action: actions ``[B, T, action_dim]``.
            reward: rewards under ``"next"``, ``[B, T, 1]``.
            terminated: termination flags under ``"next"``, ``[B, T, 1]`` (optional: absent means
                never terminated); a terminated transition's TD target is its reward alone.
            task: task ids ``[B, T]`` (or ``[B]``); ignored by single-task models.
            action_mask: optional ``[B, T, action_dim]`` mask (used by the BC term and pi targets).
            priority_weight: optional importance weights of prioritized replay, ``[B]`` or
                ``[B, T]`` (TorchRL's key; the buffers of :mod:`torchrl_newt.data` write it).
            latent: output key of the detached rolled-out latents ``z_0..z_T`` (``[B, T + 1, L]``).
            priority: output key of the per-sample priorities ``[B]`` (the value loss per sample).
        """

        observation: NestedKey = "observation"
        action: NestedKey = "action"
        reward: NestedKey = "reward"
        terminated: NestedKey = "terminated"
        task: NestedKey = "task"
        action_mask: NestedKey = "action_mask"
        priority_weight: NestedKey = "priority_weight"
        latent: NestedKey = "latent"
        priority: NestedKey = "td_error"

    tensor_keys: _AcceptedKeys
    default_keys = _AcceptedKeys
    out_keys = ["loss_consistency", "loss_reward", "loss_value", "loss_prior", "prior_bc", "td_target", "latent", "td_error"]
    world_model: NewtWorldModel
    qvalue_network: nn.Module
    qvalue_network_params: TensorDictBase
    target_qvalue_network_params: TensorDictBase

    def __init__(
        self,
        world_model: NewtWorldModel,
        *,
        discount: float | torch.Tensor = 0.99,
        rho: float = 0.5,
        consistency_coef: float = 20.0,
        reward_coef: float = 0.1,
        value_coef: float = 0.1,
        prior_coef: float = 0.0,
        entropy_coef: float = 1e-4,
        num_target_heads: int = 2,
        time_weights: str = "newt",
        use_prioritized_weights: str | bool = "auto",
    ) -> None:
        super().__init__()
        self.world_model = world_model
        self.convert_to_functional(world_model.qnet, "qvalue_network", create_target_params=True)
        discount = validate_discount(discount, world_model)
        self.register_buffer("discount", discount.clone())
        self.rho = rho
        self.consistency_coef, self.reward_coef, self.value_coef = consistency_coef, reward_coef, value_coef
        self.prior_coef, self.entropy_coef = prior_coef, entropy_coef
        self.num_target_heads = num_target_heads
        _check_time_weights(time_weights)
        self.time_weights = time_weights
        if use_prioritized_weights not in (True, False, "auto"):
            raise ValueError(f"use_prioritized_weights must be True, False or 'auto', got {use_prioritized_weights!r}")
        self.use_prioritized_weights = use_prioritized_weights

    @property
    def in_keys(self):
        k = self.tensor_keys
        keys = [k.observation, k.action, ("next", k.observation), ("next", k.reward)]
        if self.world_model.task_dim or self.discount.dim() == 1:
            keys.append(k.task)
        return keys

    def _task(self, td: TensorDictBase) -> torch.Tensor | None:
        if not (self.world_model.task_dim or self.discount.dim() == 1):
            return None
        return _task_ids(td, self.tensor_keys.task)

    def _discount(self, task: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        if self.discount.dim() == 0:
            return self.discount.to(like.dtype)
        return self.discount[task].unsqueeze(-1).to(like.dtype)

    @dispatch
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        _check_batch(tensordict)
        wm = self.world_model
        k = self.tensor_keys
        obs = tensordict.get(k.observation)
        next_obs = tensordict.get(("next", k.observation))
        action = tensordict.get(k.action)
        reward = tensordict.get(("next", k.reward))
        if reward.shape[-1] != 1:
            reward = reward.unsqueeze(-1)
        terminated = tensordict.get(("next", k.terminated), None)
        mask = tensordict.get(k.action_mask, None)
        mask = None if mask is None else mask.to(obs.dtype)
        task = self._task(tensordict)
        wtask = task if wm.task_dim else None
        B, T = tensordict.shape
        rho = _rho_weights(self.rho, T, obs, norm_steps=T + 1 if self.time_weights == "newt" else T)
        weights = _priority_weights(tensordict, k.priority_weight, self.use_prioritized_weights, B, obs)

        # targets
        with torch.no_grad():
            next_z = wm.encode(next_obs, wtask)
            next_a = wm.pi(next_z, wtask, mask).action
            heads = torch.randperm(wm.num_q, device=obs.device)[: self.num_target_heads]
            with self.target_qvalue_network_params.to_module(wm.qnet):
                q_next = wm.decode(wm.q(next_z, next_a, wtask, heads=heads)).min(0).values
            gamma = self._discount(task, obs)
            if terminated is not None:
                gamma = gamma * (1 - terminated.reshape(B, T, 1).to(obs.dtype))
            td_target = reward + gamma * q_next

        # latent rollout
        z = wm.encode(obs[:, 0], None if wtask is None else wtask[:, 0])
        zs = [z]
        for t in range(T):
            z = wm.next(z, action[:, t], None if wtask is None else wtask[:, t])
            zs.append(z)
        zs = torch.stack(zs, 1)  # [B, T+1, L]
        consistency = (zs[:, 1:] - next_z).pow(2).mean(-1)  # [B, T]
        _zs = zs[:, :-1]
        reward_ce = wm.two_hot_loss(wm.reward(_zs, action, wtask), reward).squeeze(-1)  # [B, T]
        q_logits = wm.q(_zs, action, wtask)  # [M, B, T, bins]
        value_ce = wm.two_hot_loss(q_logits, td_target.unsqueeze(0).expand(q_logits.shape[0], *td_target.shape))
        value_ce = value_ce.squeeze(-1).mean(0)  # [B, T]
        value_per_sample = (value_ce * rho).sum(-1)  # [B]

        out = TensorDict(
            {
                "loss_consistency": self.consistency_coef * _weighted_mean((consistency * rho).sum(-1), weights),
                "loss_reward": self.reward_coef * _weighted_mean((reward_ce * rho).sum(-1), weights),
                "loss_value": self.value_coef * _weighted_mean(value_per_sample, weights),
            },
            batch_size=[],
        )
        if self.prior_coef:
            pi = wm.pi(_zs, wtask, mask)
            bc = masked_mse(pi.action, action, mask)  # [B, T]
            prior = (bc - self.entropy_coef * pi.scaled_entropy.squeeze(-1)) * rho
            prior = prior.mean() if weights is None else _weighted_mean(prior.mean(-1), weights)
            out.set("loss_prior", self.prior_coef * prior)
            out.set("prior_bc", bc.detach().mean())
        out.set("td_target", td_target.mean().detach())
        out.set(k.latent, zs.detach())
        out.set(k.priority, value_per_sample.detach())
        return out


class TDMPC2ActorLoss(_KeysMixin, LossModule):
    """Policy-prior loss of TD-MPC2 / Newt.

    On detached latents ``z_0..z_T`` (``latent``, ``[B, T + 1, L]``, as returned by
    :class:`TDMPC2WorldModelLoss`, when the input holds them; else the observations are encoded
    here without gradients) and frozen Q parameters:

    * ``loss_pi = sum_{t=0..T} rho_t * (-entropy_coef * scaled_entropy_t - Q(z_t, pi(z_t)) / S)``
      where ``S`` is the running 5-95 percentile range of Q (:class:`RunningScale`) and Q the mean
      of two random heads;
    * ``loss_bc = bc_coef * sum_{t<T} rho_t * masked_MSE(pi(z_t), a_t)`` for the transitions with
      actions (the masked behaviour-cloning prior), where ``pi(z_t)`` is the same sampled
      (reparameterised) action that enters Q (reference ``masked_bc_per_timestep``,
      ``tdmpc2.py:259-263``).

    ``rho_t = rho^t / sum_{s=0..T} rho^s`` (the reference's weights). As in Newt, ``S`` divides Q
    *before* this batch updates it; the update (with this batch's ``Q(z_0, pi(z_0))``, in training
    mode) comes after the loss is computed, i.e. after the policy step (``tdmpc2.py:267, 308``).
    The mean over samples is importance-weighted by ``priority_weight`` when present (TorchRL's
    convention, as in :class:`TDMPC2WorldModelLoss`).

    Gradients reach only the policy prior.

    The input is either the ``[B, T]`` replay batch (latents are then encoded from the
    observations) or any tensordict holding ``latent`` (``[B, T + 1, L]``) next to the batch's
    ``action`` (``[B, T, A]``), ``task``, ``action_mask`` and ``priority_weight`` entries: since
    ``T + 1`` latents do not fit a ``[B, T]`` tensordict, give it batch size ``[B]`` (or ``[]``),
    as in the example below. The input is never written.

    Args:
        world_model: the world model.
        rho: temporal weight decay.
        entropy_coef: entropy bonus coefficient (Newt: 1e-4).
        bc_coef: behaviour-cloning coefficient (Newt: 1; 0 disables it, giving TD-MPC2's prior).
        scale_tau: lerp rate of the running Q scale.
        scale_update: ``"after"`` (Newt, default): divide by the scale from before this batch,
            then update it; ``"before"`` (TD-MPC2): update with this batch first, then divide.
        bc_target: ``"sample"`` (Newt, default): the BC term compares the sampled policy
            action; ``"mean"``: the deterministic ``tanh(mean)`` (our earlier variant).
        use_prioritized_weights: TorchRL's switch: ``"auto"`` (default) and ``True`` weight the
            losses by ``priority_weight`` when present, ``False`` ignores it.

    Examples:
        >>> from tensordict import TensorDict
        >>> wm = NewtWorldModel(obs_dim=6, action_dim=2, size="S", num_tasks=3)
        >>> wm_loss, actor_loss = TDMPC2WorldModelLoss(wm), TDMPC2ActorLoss(wm)
        >>> batch = TensorDict({"observation": torch.randn(4, 3, 6), "action": torch.zeros(4, 3, 2),
        ...                     "task": torch.zeros(4, 3, dtype=torch.long),
        ...                     "next": {"observation": torch.randn(4, 3, 6), "reward": torch.zeros(4, 3, 1)}},
        ...                    batch_size=[4, 3])
        >>> sorted(actor_loss(batch).keys())  # encodes the observations itself
        ['entropy', 'loss_bc', 'loss_pi', 'q_scale']
        >>> wm_out = wm_loss(batch)
        >>> actor_in = batch.exclude("next")  # a new tensordict sharing the tensors
        >>> actor_in.batch_size = batch.shape[:1]  # [B]: room for the T + 1 latents
        >>> actor_in["latent"] = wm_out["latent"]  # reuse the world-model loss's rollout
        >>> sorted(actor_loss(actor_in).keys())
        ['entropy', 'loss_bc', 'loss_pi', 'q_scale']
    """

    @dataclass
    class _AcceptedKeys:
        """Tensordict keys read by the loss (configure with ``set_keys``).

        Attributes:
            observation: observations (used only when no latents are present).
            action: replay actions ``[B, T, action_dim]`` (behaviour-cloning target).
            task: task ids ``[B, T]`` (or ``[B]``).
            action_mask: optional action mask ``[B, T, action_dim]``.
            priority_weight: optional importance weights of prioritized replay, ``[B]`` or ``[B, T]``.
            latent: detached latents ``z_0..z_T`` (``[B, T + 1, L]``), as returned by the
                world-model loss.
        """

        observation: NestedKey = "observation"
        action: NestedKey = "action"
        task: NestedKey = "task"
        action_mask: NestedKey = "action_mask"
        priority_weight: NestedKey = "priority_weight"
        latent: NestedKey = "latent"

    tensor_keys: _AcceptedKeys
    default_keys = _AcceptedKeys
    out_keys = ["loss_pi", "loss_bc", "entropy", "q_scale"]
    world_model: NewtWorldModel
    qvalue_network: nn.Module
    qvalue_network_params: TensorDictBase
    target_qvalue_network_params: TensorDictBase

    def __init__(
        self,
        world_model: NewtWorldModel,
        *,
        rho: float = 0.5,
        entropy_coef: float = 1e-4,
        bc_coef: float = 1.0,
        scale_tau: float = 0.01,
        scale_update: str = "after",
        bc_target: str = "sample",
        use_prioritized_weights: str | bool = "auto",
    ) -> None:
        super().__init__()
        if scale_update not in ("after", "before"):
            raise ValueError(f"scale_update must be 'after' or 'before', got {scale_update!r}")
        if bc_target not in ("sample", "mean"):
            raise ValueError(f"bc_target must be 'sample' or 'mean', got {bc_target!r}")
        if use_prioritized_weights not in (True, False, "auto"):
            raise ValueError(f"use_prioritized_weights must be True, False or 'auto', got {use_prioritized_weights!r}")
        self.world_model = world_model
        self.convert_to_functional(world_model.qnet, "qvalue_network", create_target_params=False)
        self.rho, self.entropy_coef, self.bc_coef = rho, entropy_coef, bc_coef
        self.scale_update, self.bc_target = scale_update, bc_target
        self.use_prioritized_weights = use_prioritized_weights
        self.running_scale = RunningScale(scale_tau)

    @property
    def in_keys(self):
        k = self.tensor_keys
        keys = [k.observation, k.action, ("next", k.observation)]
        if self.world_model.task_dim:
            keys.append(k.task)
        return keys

    def _latents(self, tensordict: TensorDictBase, task_fn) -> tuple[torch.Tensor, int, int]:
        """``(z_0..z_T [B, T+1, L] detached, B, T)`` from ``latent`` or by encoding the observations."""
        k = self.tensor_keys
        z = tensordict.get(k.latent, None)
        if z is not None:
            if z.dim() != 3:
                raise ValueError(f"expected latents {k.latent!r} of shape [B, T + 1, L], got {tuple(z.shape)}")
            B, T = z.shape[0], z.shape[1] - 1
            if tensordict.batch_dims and tuple(tensordict.shape) != (B, T)[: tensordict.batch_dims]:
                raise ValueError(
                    f"latents {k.latent!r} of shape {tuple(z.shape)} ([B, T + 1, L]) do not match the batch "
                    f"size {tuple(tensordict.shape)} (expected [B] or [B, T])"
                )
            return z.detach(), B, T
        if tensordict.ndim != 2:
            raise ValueError(
                f"expected a batch of sub-trajectories with shape [B, T] (or latents {k.latent!r} of shape "
                f"[B, T + 1, L]), got batch_size {tuple(tensordict.shape)}"
            )
        B, T = tensordict.shape
        with torch.no_grad():
            obs = torch.cat([tensordict.get(k.observation), tensordict.get(("next", k.observation))[:, -1:]], 1)
            zs = self.world_model.encode(obs, task_fn(B, T))
        return zs.detach(), B, T

    @dispatch
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        wm = self.world_model
        k = self.tensor_keys

        def task_fn(B: int, T: int) -> torch.Tensor | None:
            if not wm.task_dim:
                return None
            task = _task_ids(tensordict, k.task, (B, T))
            return torch.cat([task, task[:, -1:]], 1)  # [B, T+1]

        zs, B, T = self._latents(tensordict, task_fn)
        task = task_fn(B, T)
        weights = _priority_weights(tensordict, k.priority_weight, self.use_prioritized_weights, B, zs)
        mask = tensordict.get(k.action_mask, None)
        if mask is not None:
            mask = mask.to(zs.dtype)
            mask = torch.cat([mask, mask[:, -1:]], 1)
        table = wm.task_table()
        table = None if table is None else table.detach()
        pi = wm.pi(zs, task, mask, task_table=table)
        with self.qvalue_network_params.detach().to_module(wm.qnet):
            q = wm.q_value(zs, pi.action, task, reduce="avg", task_table=table)  # [B, T+1, 1]
        if self.training and self.scale_update == "before":
            self.running_scale.update(q[:, 0])
        scale = self.running_scale.value.detach().clone()
        rho = _rho_weights(self.rho, T + 1, zs)
        objective = (-self.entropy_coef * pi.scaled_entropy - q / scale).squeeze(-1)
        out = TensorDict(
            {
                "loss_pi": _weighted_mean((objective * rho).sum(-1), weights),
                "entropy": pi.entropy.detach().mean(),
                "q_scale": scale,
            },
            batch_size=[],
        )
        if self.bc_coef:
            action = tensordict.get(k.action)
            pred = pi.action[:, :T] if self.bc_target == "sample" else pi.mean[:, :T]
            err = masked_mse(pred, action, None if mask is None else mask[:, :T])
            out.set("loss_bc", self.bc_coef * _weighted_mean((err * rho[:T]).sum(-1), weights))
        if self.training and self.scale_update == "after":
            self.running_scale.update(q[:, 0])
        return out
