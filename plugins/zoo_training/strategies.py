"""The single-device strategy: one process on one device (CPU, or one GPU)."""

from zoo.strategies import Strategy


class SingleDevice(Strategy):
    """Everything on ``settings.device`` (auto: the first GPU if there is one, else the CPU)."""
