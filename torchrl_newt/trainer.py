"""The Newt update step and its schedules, as one composable piece.

:class:`NewtTrainer` owns what happens between "a batch was sampled" and "the weights moved":

* Newt's two Adams, built from :meth:`NewtWorldModel.parameter_groups`: the model optimiser holds
  every group (encoder at ``lr * enc_lr_scale``, the rest of the model, and the policy prior, so
  demo pretraining trains the prior jointly under one gradient clip); a separate Adam
  (``eps=1e-5``) on the policy runs the online max-Q step;
* the update: world model + value loss, then the policy prior on the detached latents, then the
  target-Q :class:`~torchrl.objectives.SoftUpdate`, with an optional gradient-sync hook (the
  data-parallel all-reduce) before each clip;
* the update-to-data credit (``utd`` updates per env step, TD-MPC2's burst on the seeding data),
  prioritized-replay priority updates, the constrained-planning weight
  (:func:`~torchrl_newt.modules.constraint_weight`) and the pretraining LR warm-up;
* a finite-loss check (on by default) and :meth:`~NewtTrainer.state_dict` for checkpoints.

It does not own the env, the collector, the replay buffer or logging: it is handed a replay
buffer to sample from and the running env-step count.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import torch
from tensordict import TensorDictBase
from torchrl.objectives import SoftUpdate

from torchrl_newt.modules import NewtWorldModel, constraint_weight
from torchrl_newt.objectives import assert_finite_losses

__all__ = ["NewtTrainer", "fused_adam_available"]

logger = logging.getLogger(__name__)

#: loss outputs that are not metrics (per-sample tensors, or Newt's TD target summary)
_NOT_METRICS = ("td_target", "latent", "td_error")


def fused_adam_available(device: torch.device | str) -> bool:
    """Whether ``torch.optim.Adam(fused=True)`` supports parameters on ``device``.

    Examples:
        >>> isinstance(fused_adam_available("cpu"), bool)
        True
    """
    try:
        torch.optim.Adam([torch.zeros(1, device=device, requires_grad=True)], fused=True)
    except (RuntimeError, ValueError):
        return False
    return True


def _is_prioritized(replay: Any) -> bool:
    buffers = [getattr(replay, "online", None), getattr(replay, "demos", None)] if hasattr(replay, "online") else [replay]
    return any(getattr(b, "mode", None) == "prioritized" for b in buffers if b is not None)


class NewtTrainer:
    """Newt's update step, optimisers and schedules (world model, then policy, then target Q).

    Args:
        world_model: the :class:`~torchrl_newt.modules.NewtWorldModel` the losses are built on.
        wm_loss: a :class:`~torchrl_newt.objectives.TDMPC2WorldModelLoss` (its target Q params are
            soft-updated here).
        actor_loss: a :class:`~torchrl_newt.objectives.TDMPC2ActorLoss`.

    Keyword Args:
        planner: a :class:`~torchrl_newt.modules.TDMPC2Planner` whose prior weight follows the
            constrained-planning schedule (:meth:`schedule`). Optional.
        lr: learning rate. Defaults to ``3e-4``.
        enc_lr_scale: encoder LR multiplier. Defaults to ``0.3``.
        grad_clip: max gradient norm (model and policy clipped separately). Defaults to ``20``.
        tau: target-Q soft-update rate. Defaults to ``0.01``.
        utd: updates per env step. Defaults to Newt's ``0.075``.
        seed_burst: when the first online update is owed, pay for every env step so far at once
            (TD-MPC2's burst on the seeding data). Defaults to ``True``.
        start_frames: env steps before the first online update (the random seeding steps).
        constrained: follow Newt's constrained-planning schedule; otherwise the planner's prior
            weight is 0. Defaults to ``False``.
        constraint_start, constraint_final: the schedule's steps (see
            :func:`~torchrl_newt.modules.constraint_weight`).
        warmup_updates: linear LR warm-up of pretraining. Defaults to ``5000``.
        grad_sync: ``grad_sync(params)`` runs after each backward pass, before clipping (the
            data-parallel all-reduce of :func:`~torchrl_newt.launch.all_reduce_grads`).
        check_finite: raise :class:`~torchrl_newt.objectives.NonFiniteLossError` as soon as a
            loss is NaN/inf (one device sync per update). Defaults to ``True``.
        fused: fused Adam kernels; ``None`` uses them where the device supports them.

    Examples:
        >>> from tensordict import TensorDict
        >>> from torchrl_newt.objectives import TDMPC2ActorLoss, TDMPC2WorldModelLoss
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <...>
        >>> wm = NewtWorldModel(6, 2, enc_dim=16, mlp_dim=16, latent_dim=16, num_q=2, num_tasks=1)
        >>> trainer = NewtTrainer(wm, TDMPC2WorldModelLoss(wm), TDMPC2ActorLoss(wm), utd=0.5)
        >>> B, T = 4, 3
        >>> batch = TensorDict({"observation": torch.randn(B, T, 6), "action": torch.rand(B, T, 2) * 2 - 1,
        ...     "task": torch.zeros(B, T, dtype=torch.long), "action_mask": torch.ones(B, T, 2, dtype=torch.bool),
        ...     ("next", "observation"): torch.randn(B, T, 6), ("next", "reward"): torch.randn(B, T, 1)},
        ...     batch_size=[B, T])
        >>> metrics = trainer.update(batch)
        >>> sorted(k for k in metrics.keys() if k.startswith("loss_"))
        ['loss_consistency', 'loss_pi', 'loss_pi_bc', 'loss_reward', 'loss_value']
        >>> trainer.updates
        1
        >>> class Replay:  # anything with sample(batch_size)
        ...     def sample(self, batch_size=None):
        ...         return batch
        >>> _ = trainer.step(Replay(), frames=4)  # 0.5 x 4 steps of credit: two updates
        >>> trainer.updates, trainer.state_dict()["frames"]
        (3, 4)
    """

    def __init__(
        self,
        world_model: NewtWorldModel,
        wm_loss: torch.nn.Module,
        actor_loss: torch.nn.Module,
        *,
        planner: Any | None = None,
        lr: float = 3e-4,
        enc_lr_scale: float = 0.3,
        grad_clip: float = 20.0,
        tau: float = 0.01,
        utd: float = 0.075,
        seed_burst: bool = True,
        start_frames: int = 0,
        constrained: bool = False,
        constraint_start: int = 2_000_000,
        constraint_final: int = 10_000_000,
        warmup_updates: int = 5_000,
        grad_sync: Callable[[list[torch.nn.Parameter]], None] | None = None,
        check_finite: bool = True,
        fused: bool | None = None,
    ) -> None:
        self.world_model = world_model
        self.wm_loss = wm_loss
        self.actor_loss = actor_loss
        self.planner = planner
        self.grad_clip = float(grad_clip)
        self.utd = float(utd)
        self.seed_burst = seed_burst
        self.start_frames = int(start_frames)
        self.constrained = constrained
        self.constraint_start = constraint_start
        self.constraint_final = constraint_final
        self.warmup_updates = int(warmup_updates)
        self.grad_sync = grad_sync
        self.check_finite = check_finite

        groups = world_model.parameter_groups(lr, enc_lr_scale)
        if fused is None:
            fused = fused_adam_available(next(world_model.parameters()).device)
        kw = {"fused": True} if fused else {}
        self.model_optim = torch.optim.Adam(groups, lr=lr, **kw)
        self.pi_optim = torch.optim.Adam(world_model.policy.parameters(), lr=lr, eps=1e-5, **kw)
        self._base_lrs = [g["lr"] for o in self.optimizers for g in o.param_groups]
        self.target_updater = SoftUpdate(wm_loss, tau=tau)
        # clip lists in parameter order (the order the gradient norm is summed in)
        self._model_params = [p for n, p in world_model.named_parameters()
                              if not n.startswith("policy.") and p.requires_grad]
        self._pi_params = list(world_model.policy.parameters())
        self._core = self._update_core

        self.updates = 0
        self.pretrain_updates = 0
        self.update_credit = 0.0
        self.frames = 0  # env steps credited so far

    # ------------------------------------------------------------------ the update
    @property
    def optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        """``(model_optim, pi_optim)``."""
        return self.model_optim, self.pi_optim

    def _sync(self, params: list[torch.nn.Parameter]) -> None:
        if self.grad_sync is not None:
            self.grad_sync(params)

    def _update_core(self, batch: TensorDictBase, pretrain: bool) -> tuple[TensorDictBase, torch.Tensor | None]:
        losses = self.wm_loss(batch)
        model_loss = losses["loss_consistency"] + losses["loss_reward"] + losses["loss_value"]
        if pretrain:  # Newt: the policy prior trains inside the model loss, one joint clip
            model_loss = model_loss + losses["loss_prior"]
        self.model_optim.zero_grad(set_to_none=True)
        self.pi_optim.zero_grad(set_to_none=True)
        model_loss.backward()
        params = self._model_params + self._pi_params if pretrain else self._model_params
        self._sync(params)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        self.model_optim.step()
        out = losses.exclude(*[k for k in _NOT_METRICS if k in losses.keys()])
        out["grad_norm"] = grad_norm.detach()
        # new loss API: latents and priorities come back in the output; older: written into the batch
        latent = losses.get("latent", None)
        td_error = losses.get("td_error", None)
        if td_error is None:
            td_error = batch.get("td_error", None)
        if not pretrain:
            actor_in = batch
            if latent is not None:  # reuse the rollout: [B, T + 1, L] latents need a [B] tensordict
                actor_in = batch.exclude("next")
                actor_in.batch_size = batch.shape[:1]
                actor_in.set("latent", latent)
            actor = self.actor_loss(actor_in)
            pi_loss = actor["loss_pi"] + actor.get("loss_bc", torch.zeros((), device=model_loss.device))
            pi_loss.backward()
            self._sync(self._pi_params)
            torch.nn.utils.clip_grad_norm_(self._pi_params, self.grad_clip)
            self.pi_optim.step()
            out.update(actor.select("loss_pi", "entropy", "q_scale", strict=False))
            if "loss_bc" in actor.keys():
                out["loss_pi_bc"] = actor["loss_bc"]
        self.target_updater.step()
        return out.detach(), (None if td_error is None else td_error.detach())

    def update(self, batch: TensorDictBase, *, pretrain: bool = False) -> TensorDictBase:
        """One update on a sampled ``[B, H+1]`` batch (never modified); returns its metrics.

        With ``pretrain=True`` the policy prior's BC term joins the model loss (Newt's demo
        pretraining) and the max-Q policy step is skipped.
        """
        metrics, _ = self._update(batch, pretrain)
        return metrics

    def _update(self, batch: TensorDictBase, pretrain: bool) -> tuple[TensorDictBase, torch.Tensor | None]:
        metrics, td_error = self._core(batch, pretrain)
        step = self.pretrain_updates if pretrain else self.updates
        if self.check_finite:
            assert_finite_losses(metrics, step)
        if pretrain:
            self.pretrain_updates += 1
        else:
            self.updates += 1
        return metrics, td_error

    def compile(self, **kwargs: Any) -> NewtTrainer:
        """``torch.compile`` the update (``kwargs`` go to :func:`torch.compile`); returns ``self``."""
        self._core = torch.compile(self._update_core, **kwargs)
        return self

    # ------------------------------------------------------------------ schedules
    def schedule(self, frames: int) -> float:
        """Set the planner's constrained-planning weight for ``frames`` env steps; returns it."""
        weight = constraint_weight(frames, self.constraint_start, self.constraint_final) if self.constrained else 0.0
        if self.planner is not None:
            self.planner.set_prior_weight(weight)
        return weight

    def owed_updates(self, frames: int) -> int:
        """Add the update credit of the env steps since the last call; return the whole updates owed.

        Before ``start_frames`` nothing is credited. The first credited call pays for every step
        so far when ``seed_burst`` is set and no update has run yet.
        """
        if frames < self.start_frames:
            return 0
        if self.updates == 0 and self.seed_burst:
            self.update_credit += self.utd * frames
        else:
            self.update_credit += self.utd * (frames - self.frames)
        self.frames = frames
        return int(self.update_credit) if self.update_credit >= 1.0 else 0

    def step(self, replay: Any, frames: int, *, batch_size: int | None = None) -> TensorDictBase | None:
        """Train after a collection: ``frames`` is the env-step count so far (all ranks together).

        Advances the constrained-planning schedule, credits ``utd`` updates per new env step and
        runs the updates owed, each on ``replay.sample(batch_size)``, updating the replay's
        priorities when it samples by priority. Returns the last update's metrics (or ``None``).
        """
        self.schedule(frames)
        self.owed_updates(frames)
        prioritized = _is_prioritized(replay)
        metrics = None
        while self.update_credit >= 1.0:
            batch = replay.sample(batch_size) if batch_size is not None else replay.sample()
            metrics, td_error = self._update(batch, pretrain=False)
            if prioritized and td_error is not None:
                self.update_priority(replay, batch, td_error)
            self.update_credit -= 1.0
        return metrics

    @staticmethod
    def update_priority(replay: Any, batch: TensorDictBase, td_error: torch.Tensor) -> None:
        """Give the sampled slices of ``batch`` the priorities ``td_error`` (``[B]`` or ``[B, T]``)."""
        if "priority" in inspect.signature(replay.update_tensordict_priority).parameters:
            replay.update_tensordict_priority(batch, td_error)
        else:  # buffers that read the priorities from the sample itself
            key = getattr(getattr(replay, "online", replay), "priority_key", "td_error")
            replay.update_tensordict_priority(batch.copy().set(key, td_error))

    # ------------------------------------------------------------------ pretraining
    def pretrain_step(self, batch: TensorDictBase) -> TensorDictBase:
        """One demo-pretraining update with the linear LR warm-up (``warmup_updates`` updates)."""
        frac = min(1.0, (self.pretrain_updates + 1) / max(self.warmup_updates, 1))
        self._set_lr_scale(frac)
        prior_coef = self.wm_loss.prior_coef
        self.wm_loss.prior_coef = 1.0
        try:
            metrics, _ = self._update(batch, pretrain=True)
        finally:
            self.wm_loss.prior_coef = prior_coef
        return metrics

    def end_pretraining(self) -> None:
        """Back to the full learning rates (after a warm-up longer than the pretraining)."""
        self._set_lr_scale(1.0)

    def _set_lr_scale(self, frac: float) -> None:
        for g, lr in zip([g for o in self.optimizers for g in o.param_groups], self._base_lrs):
            g["lr"] = lr * frac

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Optimiser states and counters (the weights live in the modules' own state dicts)."""
        return {
            "model_optim": self.model_optim.state_dict(),
            "pi_optim": self.pi_optim.state_dict(),
            "updates": self.updates,
            "pretrain_updates": self.pretrain_updates,
            "update_credit": self.update_credit,
            "frames": self.frames,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self.model_optim.load_state_dict(state_dict["model_optim"])
        self.pi_optim.load_state_dict(state_dict["pi_optim"])
        self.updates = int(state_dict.get("updates", 0))
        self.pretrain_updates = int(state_dict.get("pretrain_updates", 0))
        self.update_credit = float(state_dict.get("update_credit", 0.0))
        self.frames = int(state_dict.get("frames", 0))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(updates={self.updates}, pretrain_updates={self.pretrain_updates}, "
                f"utd={self.utd}, constrained={self.constrained})")

