"""Held-out cartpole variants on dm_control's stock cartpole: sparse balancing of harder poles.

Both follow Newt's definitions (github.com/nicklashansen/newt at commit 75def92,
``tdmpc2/envs/tasks/cartpole.py``; the long pole is that of its ``tasks/cartpole.xml``): the stock
``Balance`` task (sparse reward, stock initial-state sampling and observation) on a modified model.
"""

from __future__ import annotations

from typing import Any

from dm_control.suite import cartpole as stock

from torchrl_newt.envs.domains.dmcontrol_ext._base import make_environment, register_task_fn

__all__ = ["LONG_POLE", "LONG_POLE_MASS", "balance_long_sparse", "balance_two_poles_sparse"]

#: Pole length (m) of the long-pole variant (stock: 1 m).
LONG_POLE = 1.5
#: Pole mass (kg) of the long-pole variant (stock: 0.1 kg).
LONG_POLE_MASS = 0.2


def _long_pole_model() -> tuple[str, dict]:
    xml, assets = stock.get_model_and_assets(num_poles=1)
    xml = xml.decode() if isinstance(xml, bytes) else xml
    pole = 'fromto="0 0 0 0 0 1" size="0.045" material="self" mass=".1"'
    if pole not in xml:
        raise RuntimeError("unexpected dm_control cartpole model: cannot change its pole")
    long_pole = f'fromto="0 0 0 0 0 {LONG_POLE}" size="0.045" material="self" mass="{LONG_POLE_MASS}"'
    return xml.replace(pole, long_pole, 1), assets


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
    """Held-out cartpole-balance-long-sparse: sparse balancing of a 1.5 m, 0.2 kg pole.

    Stock sparse balance reward and 5-d observation (cart position, cos/sin of the pole angle,
    2 velocities).

    Examples:
        >>> env = balance_long_sparse(random=0)
        >>> round(float(env.physics.named.model.body_mass["pole_1"]), 3)
        0.2
    """
    physics = stock.Physics.from_xml_string(*_long_pole_model())
    return make_environment(physics, stock.Balance(swing_up=False, sparse=True, random=random), time_limit=time_limit)
