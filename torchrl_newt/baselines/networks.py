"""Task-conditioned networks of the baselines (BC, PPO, TD3) on the masked multitask env stack.

Every network reads the padded ``"observation"`` and the lane's ``"task"`` id; the task id is turned
into a vector by a :class:`TaskEncoder` (a learned projection of the task's frozen CLIP instruction
embedding, Newt's language conditioning, or a learnable embedding per task when no table is given).
Actions live in ``[-1, 1]^action_pad`` and every actor multiplies its output by the lane's
``"action_mask"``, so the dims a task does not have are exactly zero in what the env receives.

* :class:`MaskedTanhActor`: deterministic ``tanh`` actor (BC, TD3).
* :class:`MaskedTanhNormal`: PPO's action distribution, with masked dims excluded from the
  log-probability (and hence from the importance ratio and the Monte-Carlo entropy).
* :class:`TaskConditionedMLP`: the shared trunk (also the PPO/TD3 critics).
* :func:`make_bc_policy`, :func:`make_ppo_modules`, :func:`make_td3_modules`: the TorchRL modules.
"""

from __future__ import annotations

from typing import Sequence

import torch
from tensordict.nn import NormalParamExtractor, TensorDictModule, TensorDictSequential
from torch import nn
from torchrl.data import Bounded
from torchrl.modules import MLP, AdditiveGaussianModule, ProbabilisticActor, TanhNormal, ValueOperator

__all__ = [
    "ApplyActionMask",
    "MaskedTanhActor",
    "MaskedTanhNormal",
    "PerTaskActor",
    "TaskConditionedMLP",
    "TaskEncoder",
    "make_bc_policy",
    "make_ppo_modules",
    "make_td3_modules",
]

_EPS = 1e-6


class TaskEncoder(nn.Module):
    """Task ids to task vectors: a learned projection of frozen instruction embeddings, or a learnable table.

    Args:
        num_tasks: number of tasks (rows).
        dim: output size.
        table: optional frozen ``[num_tasks, D]`` instruction embeddings (e.g.
            :func:`torchrl_newt.modules.task_embeddings`); projected by a learned ``Linear(D, dim)``.
            Without it, a learnable ``nn.Embedding(num_tasks, dim)``.

    Examples:
        >>> from torchrl_newt.modules import newt_task_embeddings
        >>> enc = TaskEncoder(2, 8, table=newt_task_embeddings(["walker-walk", "cheetah-run"]))
        >>> enc(torch.tensor([0, 1, 1])).shape
        torch.Size([3, 8])
        >>> TaskEncoder(3, 4)(torch.tensor([[2]])).shape
        torch.Size([1, 1, 4])
    """

    def __init__(self, num_tasks: int, dim: int = 64, table: torch.Tensor | None = None) -> None:
        super().__init__()
        if table is not None:
            table = torch.as_tensor(table, dtype=torch.float32)
            if table.ndim != 2 or table.shape[0] != num_tasks:
                raise ValueError(f"table must be [{num_tasks}, D], got {tuple(table.shape)}")
            self.register_buffer("table", table.clone())
            self.proj = nn.Linear(table.shape[1], dim)
        else:
            self.table = None
            self.embed = nn.Embedding(num_tasks, dim)
        self.num_tasks, self.dim = int(num_tasks), int(dim)

    def forward(self, task: torch.Tensor) -> torch.Tensor:
        task = task.long()
        if self.table is not None:
            return self.proj(self.table[task])
        return self.embed(task)


class TaskConditionedMLP(nn.Module):
    """``MLP([observation, task vector, masked action?]) -> out_dim``.

    Args:
        obs_dim: padded observation size.
        out_dim: output size.
        encoder: the :class:`TaskEncoder`.
        action_dim: if positive, the network also reads an action of this size (a Q-function);
            the action is multiplied by ``action_mask`` first, so masked dims never matter.
        num_cells: hidden sizes.
        layer_norm: LayerNorm after each hidden layer.

    Examples:
        >>> net = TaskConditionedMLP(128, 1, TaskEncoder(2, 8), action_dim=16, num_cells=(32,))
        >>> obs, task, act, mask = torch.zeros(5, 128), torch.zeros(5, dtype=torch.long), torch.rand(5, 16), torch.arange(16) < 2
        >>> net(obs, task, act, mask).shape
        torch.Size([5, 1])
        >>> bool((net(obs, task, act, mask) == net(obs, task, act * mask, mask)).all())
        True
    """

    def __init__(
        self,
        obs_dim: int,
        out_dim: int,
        encoder: TaskEncoder,
        *,
        action_dim: int = 0,
        num_cells: Sequence[int] = (256, 256),
        layer_norm: bool = True,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.action_dim = int(action_dim)
        kw = {"norm_class": nn.LayerNorm, "norm_kwargs": [{"normalized_shape": c} for c in num_cells]} if layer_norm else {}
        self.mlp = MLP(
            in_features=obs_dim + encoder.dim + self.action_dim,
            out_features=out_dim,
            num_cells=list(num_cells),
            activation_class=nn.Mish,
            **kw,
        )

    def forward(
        self,
        observation: torch.Tensor,
        task: torch.Tensor,
        action: torch.Tensor | None = None,
        action_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        parts = [observation, self.encoder(task)]
        if self.action_dim:
            if action is None:
                raise ValueError("this network reads an action: pass one")
            parts.append(action if action_mask is None else action * action_mask.to(action.dtype))
        return self.mlp(torch.cat(parts, -1))


class MaskedTanhActor(nn.Module):
    """Deterministic actor ``tanh(MLP(observation, task)) * action_mask``.

    Examples:
        >>> actor = MaskedTanhActor(128, 16, TaskEncoder(2, 8), num_cells=(32,))
        >>> a = actor(torch.randn(3, 128), torch.tensor([0, 1, 1]), torch.arange(16).expand(3, 16) < 2)
        >>> a.shape, bool((a[:, 2:] == 0).all()), bool((a.abs() <= 1).all())
        (torch.Size([3, 16]), True, True)
    """

    def __init__(
        self, obs_dim: int, action_dim: int, encoder: TaskEncoder, *, num_cells: Sequence[int] = (256, 256),
        layer_norm: bool = True,
    ) -> None:
        super().__init__()
        self.net = TaskConditionedMLP(obs_dim, action_dim, encoder, num_cells=num_cells, layer_norm=layer_norm)

    def forward(self, observation: torch.Tensor, task: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(observation, task)) * action_mask.to(observation.dtype)


class PerTaskActor(nn.Module):
    """One independent :class:`MaskedTanhActor` per task, each lane routed to its task's actor.

    ``actors[k]`` sees only the observation (its task vector is a constant); it is the single-task
    policy of task ``k`` and is trained on that task's data alone.

    Examples:
        >>> actors = [MaskedTanhActor(128, 16, TaskEncoder(1, 4), num_cells=(8,)) for _ in range(2)]
        >>> router = PerTaskActor(actors)
        >>> obs, mask = torch.randn(2, 128), torch.ones(2, 16, dtype=torch.bool)
        >>> out = router(obs, torch.tensor([1, 0]), mask)
        >>> torch.allclose(out[0], actors[1](obs[:1], torch.zeros(1, dtype=torch.long), mask[:1])[0])
        True
    """

    def __init__(self, actors: Sequence[MaskedTanhActor]) -> None:
        super().__init__()
        self.actors = nn.ModuleList(actors)

    def forward(self, observation: torch.Tensor, task: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        zero = torch.zeros_like(task)
        outs = torch.stack([actor(observation, zero, action_mask) for actor in self.actors])  # [K, *B, A]
        index = task.long().reshape(1, *task.shape, 1).expand(1, *outs.shape[1:])
        return outs.gather(0, index).squeeze(0)


class ApplyActionMask(nn.Module):
    """``action * action_mask`` (after exploration noise, so masked dims stay exactly zero).

    Examples:
        >>> ApplyActionMask()(torch.ones(2, 3), torch.tensor([[True, False, True], [True, True, False]]))
        tensor([[1., 0., 1.],
                [1., 1., 0.]])
    """

    def forward(self, action: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        return action * action_mask.to(action.dtype)


class MaskedTanhNormal(TanhNormal):
    """A :class:`~torchrl.modules.TanhNormal` over ``[-1, 1]^A`` whose masked dims are not part of the action.

    * samples (``sample``/``rsample``) and the deterministic sample are multiplied by ``mask``: a
      task's missing action dims are exactly zero in the action the env receives and the buffer stores;
    * ``log_prob`` sums the per-dim log-densities over the valid dims only. The masked dims' ``loc``
      and ``scale`` therefore get no gradient, and they drop out of PPO's importance ratio
      ``exp(log_prob - old_log_prob)`` and of the Monte-Carlo entropy estimate (``-log_prob`` of an
      ``rsample``): the entropy bonus does not inflate the variance of dims the task does not have.

    The per-dim density is the change of variables ``N(atanh(y); loc, scale) / (1 - y^2)``, with ``y``
    clipped to ``1 - 1e-6`` in magnitude (the same formula scores the behaviour and the current policy).

    Args:
        loc: ``[..., A]`` pre-tanh mean.
        scale: ``[..., A]`` pre-tanh standard deviation.
        mask: ``[..., A]`` bool, the valid dims.

    Examples:
        >>> loc, scale = torch.zeros(2, 3), torch.ones(2, 3)
        >>> mask = torch.tensor([[True, False, False], [True, True, True]])
        >>> d = MaskedTanhNormal(loc, scale, mask)
        >>> x = d.rsample()
        >>> bool((x[0, 1:] == 0).all()), d.log_prob(x).shape
        (True, torch.Size([2]))
        >>> lp = d.log_prob(torch.zeros(2, 3))  # at 0 each valid dim has density N(0; 0, 1)
        >>> torch.allclose(lp, torch.tensor([1.0, 3.0]) * torch.distributions.Normal(0.0, 1.0).log_prob(torch.tensor(0.0)))
        True
    """

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, mask: torch.Tensor, **kwargs) -> None:
        kwargs.setdefault("low", -1.0)
        kwargs.setdefault("high", 1.0)
        super().__init__(loc, scale, **kwargs)
        self.mask = mask.to(loc.dtype).expand_as(loc)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        y = value.clamp(-1 + _EPS, 1 - _EPS)
        per_dim = torch.distributions.Normal(self.loc, self.scale).log_prob(torch.atanh(y)) - torch.log1p(-y * y)
        return (per_dim * self.mask).sum(-1)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        return super().rsample(sample_shape) * self.mask

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        return super().sample(sample_shape) * self.mask

    def rsample_and_log_prob(self, sample_shape: torch.Size = torch.Size()) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.rsample(sample_shape)
        return x, self.log_prob(x)

    def sample_and_log_prob(self, sample_shape: torch.Size = torch.Size()) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.sample(sample_shape)
        return x, self.log_prob(x)

    @property
    def deterministic_sample(self) -> torch.Tensor:
        return torch.tanh(self.loc) * self.mask


def _encoder(num_tasks: int, table: torch.Tensor | None, task_dim: int) -> TaskEncoder:
    return TaskEncoder(num_tasks, task_dim, table)


_IN = ["observation", "task", "action_mask"]


def make_bc_policy(
    num_tasks: int,
    *,
    table: torch.Tensor | None = None,
    obs_dim: int = 128,
    action_dim: int = 16,
    num_cells: Sequence[int] = (256, 256),
    task_dim: int = 64,
    single_task: bool = False,
) -> TensorDictModule:
    """The BC policy: ``("observation", "task", "action_mask") -> "action"``.

    Args:
        num_tasks: number of tasks.
        table: optional frozen instruction embeddings ``[num_tasks, D]``.
        single_task: one independent actor per task (:class:`PerTaskActor`) instead of one
            task-conditioned actor.

    Examples:
        >>> from tensordict import TensorDict
        >>> policy = make_bc_policy(2, num_cells=(16,), task_dim=4, single_task=True)
        >>> td = TensorDict({"observation": torch.zeros(3, 128), "task": torch.tensor([0, 1, 1]),
        ...                  "action_mask": torch.arange(16).expand(3, 16) < 2}, [3])
        >>> policy(td)["action"].shape, type(policy.module).__name__
        (torch.Size([3, 16]), 'PerTaskActor')
    """
    if single_task:
        actors = [
            MaskedTanhActor(obs_dim, action_dim, _encoder(1, None if table is None else table[k : k + 1], task_dim),
                            num_cells=num_cells)
            for k in range(num_tasks)
        ]
        module: nn.Module = PerTaskActor(actors)
    else:
        module = MaskedTanhActor(obs_dim, action_dim, _encoder(num_tasks, table, task_dim), num_cells=num_cells)
    return TensorDictModule(module, in_keys=_IN, out_keys=["action"])


class _LocScale(nn.Module):
    def __init__(self, net: TaskConditionedMLP) -> None:
        super().__init__()
        self.net = net
        self.split = NormalParamExtractor(scale_mapping="biased_softplus_1.0", scale_lb=1e-3)

    def forward(self, observation: torch.Tensor, task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split(self.net(observation, task))


def make_ppo_modules(
    num_tasks: int,
    *,
    table: torch.Tensor | None = None,
    obs_dim: int = 128,
    action_dim: int = 16,
    num_cells: Sequence[int] = (256, 256),
    task_dim: int = 64,
) -> tuple[ProbabilisticActor, ValueOperator]:
    """PPO's task-conditioned stochastic actor (:class:`MaskedTanhNormal`) and state-value critic.

    The actor reads ``("observation", "task")`` for ``loc``/``scale`` and ``"action_mask"`` for the
    distribution's mask; it writes ``"action"`` and its log-probability (``"action_log_prob"``). The
    critic writes ``"state_value"``.

    Examples:
        >>> from tensordict import TensorDict
        >>> from torchrl.envs.utils import ExplorationType, set_exploration_type
        >>> actor, critic = make_ppo_modules(2, num_cells=(16,), task_dim=4)
        >>> td = TensorDict({"observation": torch.zeros(3, 128), "task": torch.tensor([0, 1, 1]),
        ...                  "action_mask": torch.arange(16).expand(3, 16) < 2}, [3])
        >>> with set_exploration_type(ExplorationType.RANDOM):
        ...     td = critic(actor(td))
        >>> bool((td["action"][:, 2:] == 0).all()), td["action_log_prob"].shape, td["state_value"].shape
        (True, torch.Size([3]), torch.Size([3, 1]))
    """
    net = TaskConditionedMLP(obs_dim, 2 * action_dim, _encoder(num_tasks, table, task_dim), num_cells=num_cells)
    actor = ProbabilisticActor(
        TensorDictModule(_LocScale(net), in_keys=["observation", "task"], out_keys=["loc", "scale"]),
        in_keys={"loc": "loc", "scale": "scale", "mask": "action_mask"},
        distribution_class=MaskedTanhNormal,
        return_log_prob=True,
    )
    critic = ValueOperator(
        TaskConditionedMLP(obs_dim, 1, _encoder(num_tasks, table, task_dim), num_cells=num_cells),
        in_keys=["observation", "task"],
    )
    return actor, critic


def make_td3_modules(
    num_tasks: int,
    *,
    table: torch.Tensor | None = None,
    obs_dim: int = 128,
    action_dim: int = 16,
    num_cells: Sequence[int] = (256, 256),
    critic_cells: Sequence[int] | None = None,
    task_dim: int = 64,
    noise_std: float = 0.1,
    device: torch.device | str | None = None,
) -> tuple[TensorDictModule, ValueOperator, TensorDictSequential]:
    """TD3's deterministic actor, its Q-function and the exploration policy.

    Returns:
        ``(actor, qvalue, explore)``: ``actor`` writes ``"action"`` (masked ``tanh``); ``qvalue``
        reads ``("observation", "task", "action", "action_mask")`` (masked dims are zeroed before
        the MLP, so the target policy smoothing noise :class:`~torchrl.objectives.TD3Loss` adds to
        them is ignored) and writes ``"state_action_value"``; ``explore`` is ``actor``, TorchRL's
        :class:`~torchrl.modules.AdditiveGaussianModule` (``noise_std``, active under
        ``ExplorationType.RANDOM``) and :class:`ApplyActionMask`, all on ``device``.

    Examples:
        >>> from tensordict import TensorDict
        >>> actor, q, explore = make_td3_modules(2, num_cells=(16,), task_dim=4, noise_std=0.5)
        >>> td = TensorDict({"observation": torch.zeros(3, 128), "task": torch.tensor([0, 1, 1]),
        ...                  "action_mask": torch.arange(16).expand(3, 16) < 2}, [3])
        >>> td = q(explore(td))
        >>> bool((td["action"][:, 2:] == 0).all()), td["state_action_value"].shape
        (True, torch.Size([3, 1]))
    """
    actor = TensorDictModule(
        MaskedTanhActor(obs_dim, action_dim, _encoder(num_tasks, table, task_dim), num_cells=num_cells),
        in_keys=_IN, out_keys=["action"],
    )
    qvalue = ValueOperator(
        TaskConditionedMLP(obs_dim, 1, _encoder(num_tasks, table, task_dim), action_dim=action_dim,
                           num_cells=critic_cells or num_cells),
        in_keys=["observation", "task", "action", "action_mask"],
        out_keys=["state_action_value"],
    )
    noise = AdditiveGaussianModule(
        Bounded(-1.0, 1.0, shape=(action_dim,), device=device), sigma_init=1.0, sigma_end=1.0, std=noise_std,
        device=device,
    )
    explore = TensorDictSequential(
        actor, noise, TensorDictModule(ApplyActionMask(), in_keys=["action", "action_mask"], out_keys=["action"])
    ).to(device if device is not None else "cpu")
    return actor, qvalue.to(device if device is not None else "cpu"), explore
