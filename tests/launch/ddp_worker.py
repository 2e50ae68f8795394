"""Data-parallel Newt updates on fixed data (run under ``torchrun``; importable for a reference run).

    torchrun --standalone --nproc-per-node 2 tests/launch/ddp_worker.py --out DIR

Every rank writes ``DIR/rank{r}.pt`` with its final parameters for two settings: ``"exact"`` (a
deterministic policy sample, no Q dropout and SGD, comparable with a single-process run on the full batch) and
``"stochastic"`` (the real sampled policy; ranks must still agree exactly).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from tensordict import TensorDict
from torchrl.objectives import SoftUpdate

from torchrl_newt.launch import (
    all_reduce_grads,
    broadcast_module,
    cleanup,
    gather_results,
    init_distributed,
    split_batch_size,
    split_tasks,
)
from torchrl_newt.modules import NewtWorldModel
from torchrl_newt.objectives import TDMPC2ActorLoss, TDMPC2WorldModelLoss

B, T, OBS, ACT, TASKS = 12, 3, 10, 4, 3
STEPS = 4


class DeterministicPiWorldModel(NewtWorldModel):
    """The policy prior without sampling noise (so per-sample losses do not depend on the batch split)."""

    def pi(self, *args, deterministic: bool = False, **kwargs):
        return super().pi(*args, deterministic=True, **kwargs)


def fixed_data() -> TensorDict:
    g = torch.Generator().manual_seed(123)
    mask = torch.ones(B, T, ACT, dtype=torch.bool)
    mask[: B // 2, :, -1] = False
    return TensorDict(
        {
            "observation": torch.randn(B, T, OBS, generator=g),
            "action": (torch.rand(B, T, ACT, generator=g) * 2 - 1) * mask,
            "action_mask": mask,
            "task": torch.randint(TASKS, (B, 1), generator=g).expand(B, T).clone(),
            "next": {"observation": torch.randn(B, T, OBS, generator=g), "reward": torch.randn(B, T, 1, generator=g)},
        },
        batch_size=[B, T],
    )


def train(rank: int, world: int, exact: bool, steps: int = STEPS) -> dict[str, torch.Tensor]:
    """``steps`` Newt updates on this rank's share of :func:`fixed_data`; returns all parameters."""
    torch.manual_seed(rank)  # different on purpose: broadcast_module must align the ranks
    cls = DeterministicPiWorldModel if exact else NewtWorldModel
    # exact: no Q dropout either (its masks depend on a sample's position in the batch)
    wm = cls(OBS, ACT, size="S", num_tasks=TASKS, q_dropout=0.0 if exact else 0.01)
    wm_loss = TDMPC2WorldModelLoss(wm, discount=torch.tensor([0.9, 0.95, 0.99]))
    actor_loss = TDMPC2ActorLoss(wm)
    updater = SoftUpdate(wm_loss, tau=0.05)
    modules = torch.nn.ModuleDict({"wm": wm_loss, "actor": actor_loss})
    broadcast_module(modules)
    model_params = [p for n, p in wm.named_parameters() if not n.startswith("policy.")]
    pi_params = list(wm.policy.parameters())
    if exact:  # SGD: parameter differences stay proportional to gradient differences
        model_opt, pi_opt = torch.optim.SGD(model_params, lr=0.05), torch.optim.SGD(pi_params, lr=0.05)
    else:  # as in training (Adam amplifies float noise on near-zero gradients: not for comparisons)
        model_opt, pi_opt = torch.optim.Adam(model_params, lr=1e-3), torch.optim.Adam(pi_params, lr=1e-3, eps=1e-5)
    sizes = [split_batch_size(B, r, world) for r in range(world)]
    lo = sum(sizes[:rank])
    data = fixed_data()[lo:lo + sizes[rank]]
    weight = sizes[rank] / B
    for step in range(steps):
        torch.manual_seed(1000 + step)  # same target/actor heads on every rank and in the reference
        batch = data.clone()
        losses = wm_loss(batch)
        model_opt.zero_grad(set_to_none=True)
        pi_opt.zero_grad(set_to_none=True)
        (losses["loss_consistency"] + losses["loss_reward"] + losses["loss_value"]).backward()
        all_reduce_grads(model_params, weight=weight)
        torch.nn.utils.clip_grad_norm_(model_params, 20.0)
        model_opt.step()
        actor = actor_loss(batch)
        (actor["loss_pi"] + actor["loss_bc"]).backward()
        all_reduce_grads(pi_params, weight=weight)
        torch.nn.utils.clip_grad_norm_(pi_params, 20.0)
        pi_opt.step()
        updater.step()
    return {k: v.detach().clone() for k, v in modules.state_dict().items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ctx = init_distributed(device="cpu")
    out = {
        "exact": train(ctx.rank, ctx.world_size, exact=True),
        "stochastic": train(ctx.rank, ctx.world_size, exact=False),
        "world_size": ctx.world_size,
        "backend": ctx.backend,
        "tasks": gather_results({t: ctx.rank for t in split_tasks(["a", "b", "c"], ctx.rank, ctx.world_size)},
                                order=["a", "b", "c"]),
    }
    torch.save(out, Path(args.out) / f"rank{ctx.rank}.pt")
    cleanup()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
