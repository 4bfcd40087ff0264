"""Sequence models. Each factory takes ``(input_shape, out_features, **params)``.

``input_shape`` is ``(T, F)``; the models take batches ``(N, T, F)`` (batch first) and
return ``(N, out_features)``.
"""

from __future__ import annotations

import torch
from torch import nn


def _time_features(input_shape, model: str) -> tuple[int, int]:
    if len(input_shape) != 2:
        raise ValueError(f"{model} needs sequence input (time steps, features), got shape {tuple(input_shape)}")
    steps, features = (int(d) for d in input_shape)
    if steps < 1 or features < 1:
        raise ValueError(f"{model} needs at least one time step and one feature, got shape {tuple(input_shape)}")
    return steps, features


class Recurrent(nn.Module):
    """A recurrent stack (``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``) and a linear head.

    The head reads the last layer's final hidden state: after the last time step for the
    forward direction and, when bidirectional, after the first time step for the backward
    one (the two are concatenated). ``dropout`` applies between stacked layers and to the
    features the head reads. Hidden-to-hidden weights start orthogonal.
    """

    CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}

    def __init__(self, cell: str, input_shape, out_features: int, *, hidden: int, layers: int,
                 bidirectional: bool, dropout: float) -> None:
        super().__init__()
        _, features = _time_features(input_shape, cell)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if hidden < 1 or layers < 1:
            raise ValueError(f"hidden ({hidden}) and layers ({layers}) must be at least 1")
        self.directions = 2 if bidirectional else 1
        self.rnn = self.CELLS[cell](features, hidden, num_layers=layers, batch_first=True,
                                    bidirectional=bidirectional, dropout=dropout if layers > 1 else 0.0)
        self._init_recurrent(hidden, cell == "lstm")
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(hidden * self.directions, out_features)

    @torch.no_grad()
    def _init_recurrent(self, hidden: int, unit_forget_bias: bool) -> None:
        """Orthogonal hidden-to-hidden weights (per gate), which keep gradients alive over many
        steps; an LSTM's forget gates start open (total bias 1), so that it remembers from the start."""
        for name, p in self.rnn.named_parameters():
            if name.startswith("weight_hh"):
                for k in range(0, p.shape[0], hidden):
                    nn.init.orthogonal_(p[k : k + hidden])
            elif unit_forget_bias and name.startswith("bias_"):
                p[hidden : 2 * hidden] = 1.0 if name.startswith("bias_ih") else 0.0

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The final hidden state(s) of the last layer, ``(N, hidden * directions)``."""
        _, state = self.rnn(x)
        h = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n)
        last = h[-self.directions:]  # (directions, N, hidden): the last layer
        return last.transpose(0, 1).reshape(x.shape[0], -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


def rnn(input_shape, out_features: int, *, hidden: int = 64, layers: int = 1, bidirectional: bool = False,
        dropout: float = 0.0) -> nn.Module:
    return Recurrent("rnn", input_shape, out_features, hidden=hidden, layers=layers,
                     bidirectional=bidirectional, dropout=dropout)


def lstm(input_shape, out_features: int, *, hidden: int = 64, layers: int = 1, bidirectional: bool = False,
         dropout: float = 0.0) -> nn.Module:
    return Recurrent("lstm", input_shape, out_features, hidden=hidden, layers=layers,
                     bidirectional=bidirectional, dropout=dropout)


def gru(input_shape, out_features: int, *, hidden: int = 64, layers: int = 1, bidirectional: bool = False,
        dropout: float = 0.0) -> nn.Module:
    return Recurrent("gru", input_shape, out_features, hidden=hidden, layers=layers,
                     bidirectional=bidirectional, dropout=dropout)


def _same_conv(cin: int, cout: int, k: int) -> list[nn.Module]:
    """A convolution over time that keeps the length; even kernels get explicit asymmetric padding."""
    if k % 2:
        return [nn.Conv1d(cin, cout, k, padding=k // 2)]
    return [nn.ConstantPad1d(((k - 1) // 2, k // 2), 0.0), nn.Conv1d(cin, cout, k)]


class TimeToChannels(nn.Module):
    """``(N, T, F)`` -> ``(N, F, T)``: features become the channels of a 1-D convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


def cnn1d(input_shape, out_features: int, *, channels=(32, 64), kernel_size: int = 5,
          dropout: float = 0.1) -> nn.Module:
    """Conv-ReLU-maxpool blocks over time, global average pooling over time, a linear head.

    Each convolution keeps the length ('same' padding); each block halves it with max
    pooling while at least 2 steps remain, so any length works.
    """
    steps, features = _time_features(input_shape, "cnn1d")
    if not channels:
        raise ValueError("cnn1d needs at least one conv block (channels, e.g. 32,64)")
    if kernel_size < 1:
        raise ValueError(f"kernel_size must be at least 1, got {kernel_size}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    layers: list[nn.Module] = [TimeToChannels()]
    width, length = features, steps
    for c in channels:
        layers += [*_same_conv(width, int(c), kernel_size), nn.ReLU()]
        if length >= 2:
            layers.append(nn.MaxPool1d(2))
            length //= 2
        width = int(c)
    layers += [nn.AdaptiveAvgPool1d(1), nn.Flatten()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)
