"""Deliberately broken implementations, for the demonstration cases and the tests.

Each is a correct-looking torch function whose backward is wrong in one specific way, as
the bugs diffcheck exists to catch: a wrong subgradient at a kink, and an error confined
to a narrow interval that random sampling rarely hits. Case files reach them with
``imports: {name: "diffcheck.examples:NAME"}``.
"""

from __future__ import annotations

import torch


class _ReluTwoAtZero(torch.autograd.Function):
    """relu whose derivative at 0 is 2: outside the subdifferential [0, 1]."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return torch.relu(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        slope = torch.where(x > 0, torch.ones_like(x), torch.zeros_like(x))
        return grad * torch.where(x == 0, torch.full_like(x, 2.0), slope)


class _SigmoidNarrowBug(torch.autograd.Function):
    """sigmoid whose backward is 1 % too large only for 2.5 < x < 2.51."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return torch.sigmoid(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output, inputs[0])

    @staticmethod
    def backward(ctx, grad):
        s, x = ctx.saved_tensors
        factor = torch.where((x > 2.5) & (x < 2.51), torch.full_like(x, 1.01), torch.ones_like(x))
        return grad * s * (1 - s) * factor


def relu_two_at_zero(x: torch.Tensor) -> torch.Tensor:
    return _ReluTwoAtZero.apply(x)


def sigmoid_narrow_bug(x: torch.Tensor) -> torch.Tensor:
    return _SigmoidNarrowBug.apply(x)
