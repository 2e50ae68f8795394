"""Open-loop execution of the MPPI planner: observe every ``k`` steps, replay the plan in between.

Newt's open-loop evaluation asks how far a plan made from one observation stays good when the
agent is blind for the next ``k - 1`` steps. :class:`OpenLoopPlanner` wraps a
:class:`~torchrl_newt.modules.TDMPC2Planner`: at a planning step (every ``k`` steps of a lane, and
at every episode start) it plans from the current observation and stores an action sequence of
length ``k``; at the other steps it ignores the observation and executes the next stored action.

The stored sequence is:

* step 0: the planner's own action (the elite drawn by Gumbel-max, as in closed loop), so that
  ``k = 1`` *is* closed-loop planning (same calls, same random numbers, same actions);
* steps ``1 .. H-1``: the planner's returned MPPI mean sequence (``plan()``'s ``mean``);
* steps ``H .. k-1`` (only when ``k > H``): the plan is extended by rolling the policy prior
  through the latent dynamics: starting from ``z_0 = h(o)``, the model is stepped with the ``H``
  planned actions, then each further action is the policy prior's mean ``tanh(mu(z_t))`` (its
  sample under :class:`~torchrl.envs.utils.ExplorationType` ``RANDOM``) and ``z_{t+1} = d(z_t, a_t)``.
  This is the model's own best guess of how the plan continues, with no new observation.

The warm start of the next plan is the previous MPPI mean shifted by ``k`` steps (the planner
itself shifts by one, so the wrapper pre-shifts by ``k - 1``): at ``k = 1`` this is exactly the
closed-loop warm start.

Like the planner, the wrapper keeps its per-lane state in the tensordict (``("open_loop",
"plan")`` and ``("open_loop", "index")``), so append :meth:`OpenLoopPlanner.make_primer` (and the
planner's primer) to the env. Lanes replan independently (a lane that resets replans at once).
"""

from __future__ import annotations

from typing import Sequence

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torchrl.data import Composite, Unbounded
from torchrl.envs.transforms import TensorDictPrimer
from torchrl.envs.utils import ExplorationType, exploration_type

from torchrl_newt.modules.planner import TDMPC2Planner

__all__ = ["OpenLoopPlanner"]


def _key(key: NestedKey) -> tuple:
    return (key,) if isinstance(key, str) else tuple(key)


class OpenLoopPlanner(TensorDictModuleBase):
    """Plan every ``k`` steps and execute the stored action sequence in between (a TensorDict policy).

    Args:
        planner: the closed-loop :class:`~torchrl_newt.modules.TDMPC2Planner` (its keys, horizon
            and world model are used).
        k: steps between observations (``1`` = closed loop). Must be ``>= 1``.
        max_len: length of the stored sequence (default ``max(k, horizon)``). Give several
            wrappers the same ``max_len`` to share one env primer (e.g. to evaluate several
            ``k`` on one env).
        state_key: where the stored sequence and the index of the next action live.

    Raises:
        ValueError: ``k < 1`` or ``max_len < max(k, horizon)``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl_newt.modules import NewtWorldModel, TDMPC2Planner
        >>> wm = NewtWorldModel(obs_dim=6, action_dim=2, enc_dim=16, mlp_dim=16, latent_dim=16, num_q=2)
        >>> planner = TDMPC2Planner(wm, horizon=3, iterations=1, num_samples=16, num_elites=4, num_pi_trajs=2)
        >>> policy = OpenLoopPlanner(planner, k=5)
        >>> td = TensorDict(observation=torch.randn(2, 6), is_init=torch.ones(2, 1, dtype=torch.bool),
        ...                 batch_size=[2])
        >>> td = policy(td)
        >>> td["action"].shape, td["next", "open_loop", "plan"].shape, td["next", "open_loop", "index"].tolist()
        (torch.Size([2, 2]), torch.Size([2, 5, 2]), [[1], [1]])
        >>> step = td["next"].clone().set("is_init", torch.zeros(2, 1, dtype=torch.bool))
        >>> _ = step.set("observation", torch.randn(2, 6))  # ignored: no replanning before 5 steps
        >>> torch.equal(policy(step)["action"], td["next", "open_loop", "plan"][:, 1])
        True
        >>> try:
        ...     OpenLoopPlanner(planner, k=0)
        ... except ValueError as err:
        ...     print(err)
        open-loop k must be an integer >= 1 (steps between observations), got 0
    """

    def __init__(
        self,
        planner: TDMPC2Planner,
        k: int,
        *,
        max_len: int | None = None,
        state_key: NestedKey = "open_loop",
    ) -> None:
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"open-loop k must be an integer >= 1 (steps between observations), got {k!r}")
        self.planner = planner
        self.k = k
        self.horizon = planner.horizon
        need = max(k, planner.horizon)
        self.max_len = need if max_len is None else int(max_len)
        if self.max_len < need:
            raise ValueError(f"max_len={max_len} is shorter than max(k={k}, horizon={planner.horizon})")
        base = _key(state_key)
        self.plan_key, self.index_key = (*base, "plan"), (*base, "index")
        p = planner
        self.in_keys = list(dict.fromkeys([*p.in_keys, self.plan_key, self.index_key]))
        self.out_keys = [p.action_key, ("next", *p.state_key), ("next", *self.plan_key), ("next", *self.index_key)]

    def make_primer(self, batch_size: Sequence[int] = ()) -> TensorDictPrimer:
        """A primer zeroing the wrapper's state at every reset (append it with the planner's).

        Examples:
            >>> from torchrl_newt.modules import NewtWorldModel, TDMPC2Planner
            >>> wm = NewtWorldModel(obs_dim=3, action_dim=1, enc_dim=16, mlp_dim=16, latent_dim=16, num_q=2)
            >>> primer = OpenLoopPlanner(TDMPC2Planner(wm), k=4).make_primer()
            >>> sorted(primer.primers.keys(True, True))
            [('open_loop', 'index'), ('open_loop', 'plan')]
        """
        a = self.planner.world_model.action_dim
        spec = Composite(
            {
                self.plan_key: Unbounded(shape=(*batch_size, self.max_len, a)),
                self.index_key: Unbounded(shape=(*batch_size, 1), dtype=torch.int64),
            },
            shape=tuple(batch_size),
        )
        return TensorDictPrimer(spec, default_value=0, expand_specs=True)

    @torch.no_grad()
    def _extend(self, obs, task, mask, seq: torch.Tensor, explore: bool) -> None:
        """Fill ``seq[:, H:]`` by rolling the policy prior through the latent dynamics (in place)."""
        wm = self.planner.world_model
        t_ = task if wm.task_dim else None
        z = wm.encode(obs, t_)
        for t in range(self.horizon):
            z = wm.next(z, seq[:, t], t_)
        for t in range(self.horizon, seq.shape[1]):
            out = wm.pi(z, t_, mask, deterministic=not explore)
            a = out.action if explore else out.mean
            if mask is not None:
                a = a * mask
            seq[:, t] = a
            if t < seq.shape[1] - 1:
                z = wm.next(z, a, t_)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        p = self.planner
        obs = tensordict.get(p.observation_key)
        batch = obs.shape[:-1]
        flat = obs.reshape(-1, obs.shape[-1])
        n, A, H, L = flat.shape[0], p.world_model.action_dim, self.horizon, self.max_len

        def _get(key, default=None):
            if key is None:
                return None
            val = tensordict.get(key, None)
            return default if val is None else val.reshape(n, *val.shape[len(batch):])

        task = _get(p.task_key)
        if p.world_model.task_dim and task is None:
            raise KeyError(f"the world model is task-conditioned but {p.task_key!r} is missing from the input")
        mask = _get(p.action_mask_key)
        is_init = _get(p.is_init_key)
        prev = _get(p.state_key)
        seq = _get(self.plan_key)
        index = _get(self.index_key)
        seq = flat.new_zeros(n, L, A) if seq is None else seq.to(flat.dtype).clone()
        # a missing state (no primer) means "start of the episode": plan everywhere
        index = torch.zeros(n, 1, dtype=torch.long, device=flat.device) if index is None else index.long().clone()
        prev = flat.new_zeros(n, H, A) if prev is None else prev.to(flat.dtype).clone()
        replan = index.squeeze(-1) >= self.k
        if is_init is not None:
            replan = replan | is_init.reshape(n).bool()
        if _get(self.index_key) is None:
            replan = torch.ones_like(replan)
        explore = exploration_type() == ExplorationType.RANDOM
        if bool(replan.any()):
            # the planner shifts its warm start by one step; pre-shift by k - 1 for a k-step gap
            warm = prev
            if self.k > 1:
                warm = torch.zeros_like(prev)
                if self.k - 1 < H:
                    warm[:, : H - (self.k - 1)] = prev[:, self.k - 1 :]
            everyone = bool(replan.all())
            sel = slice(None) if everyone else replan.nonzero().squeeze(-1)

            def pick(x):
                return None if x is None else x[sel]

            action, mean = p.plan(pick(flat), pick(task), pick(mask), warm[sel], pick(is_init), explore=explore)
            new = flat.new_zeros(action.shape[0], L, A)
            new[:, 0] = action
            new[:, 1:H] = mean[:, 1:]
            if L > H:
                self._extend(pick(flat), pick(task), pick(mask), new, explore)
            seq[sel] = new.to(seq.dtype)
            prev[sel] = mean.to(prev.dtype)
            index[sel] = 0
        rows = torch.arange(n, device=flat.device)
        action = seq[rows, index.squeeze(-1).clamp_max(L - 1)]
        if mask is not None:
            action = action * mask.to(action.dtype)
        tensordict.set(p.action_key, action.reshape(*batch, A))
        tensordict.set(("next", *p.state_key), prev.reshape(*batch, H, A))
        tensordict.set(("next", *self.plan_key), seq.reshape(*batch, L, A))
        tensordict.set(("next", *self.index_key), (index + 1).reshape(*batch, 1))
        return tensordict
