"""Held-out cartpole variants on dm_control's stock cartpole: sparse balancing of harder poles."""

from __future__ import annotations

from typing import Any

from dm_control.suite import cartpole as stock

from torchrl_newt.envs.domains.dmcontrol_ext._base import make_environment, register_task_fn

__all__ = ["LONG_POLE", "balance_long_sparse", "balance_two_poles_sparse"]

#: Pole length (m) of the long-pole variant (stock: 1 m).
LONG_POLE = 1.5


def _long_pole_model() -> tuple[str, dict]:
    xml, assets = stock.get_model_and_assets(num_poles=1)
    xml = xml.decode() if isinstance(xml, bytes) else xml
    pole = 'fromto="0 0 0 0 0 1"'
    if pole not in xml:
        raise RuntimeError("unexpected dm_control cartpole model: cannot lengthen its pole")
    return xml.replace(pole, f'fromto="0 0 0 0 0 {LONG_POLE}"', 1), assets


@register_task_fn("cartpole", "balance_two_poles_sparse")
def balance_two_poles_sparse(random: Any = None, time_limit: float = float("inf")):
    """Held-out cartpole-balance-two-poles-sparse: the stock sparse balance task with two poles.

    Reward per control step (stock): 1 while the cart is within 0.25 m of the centre and every
    pole's angle cosine is above 0.995 (within ~5.7 degrees of upright), else 0.
    Observation: cart position, cos/sin of each pole angle, 3 velocities (8-d).
    """
    physics = stock.Physics.from_xml_string(*stock.get_model_and_assets(num_poles=2))
    return make_environment(physics, stock.Balance(swing_up=False, sparse=True, random=random), time_limit=time_limit)


@register_task_fn("cartpole", "balance_long_sparse")
def balance_long_sparse(random: Any = None, time_limit: float = float("inf")):
    """Held-out cartpole-balance-long-sparse: sparse balancing of a 1.5 m pole (stock reward, 5-d obs)."""
    physics = stock.Physics.from_xml_string(*_long_pole_model())
    return make_environment(physics, stock.Balance(swing_up=False, sparse=True, random=random), time_limit=time_limit)
