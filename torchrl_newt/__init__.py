"""torchrl_newt: massively multitask world models (Newt / TD-MPC2) as TorchRL components."""

__version__ = "0.1.0"
