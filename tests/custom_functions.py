"""Custom ``torch.autograd.Function`` s of every style, for tests/test_custom_functions.py and
tests/data/cases/custom_functions.yaml.

Each is correct unless its name says otherwise; the cases reach them with
``imports: {f: "custom_functions:NAME"}`` (tests/ is on ``sys.path`` under pytest).
"""

from __future__ import annotations

import torch


class _OldStyleExp(torch.autograd.Function):
    """exp as an ordinary old-style Function: ``forward(ctx, x)``, no setup_context, no jvp;
    its backward branches on a tensor's value (``if``), which vmap cannot run."""

    @staticmethod
    def forward(ctx, x):
        y = torch.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        if bool((y == 0).all()):  # a value branch, as real code has
            return torch.zeros_like(g)
        return g * y


class _SinNoJvp(torch.autograd.Function):
    """sin with setup_context and a vmap rule, but no jvp: torch has no forward mode for it."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return torch.sin(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.cos(x)


class _SinBranching(torch.autograd.Function):
    """sin with backward and jvp that branch on tensor values (cannot run under vmap)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return torch.sin(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])
        ctx.save_for_forward(inputs[0])

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if bool((x.abs() > 1e300).any()):
            return torch.zeros_like(g)
        return g * torch.cos(x)

    @staticmethod
    def jvp(ctx, t):
        (x,) = ctx.saved_tensors
        if bool((x.abs() > 1e300).any()):
            return torch.zeros_like(t)
        return t * torch.cos(x)


class _SinBranchingWrongBackward(_SinBranching):
    """The same, with a backward 1 % too large: must fail in reverse and backward modes."""

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if bool((x.abs() > 1e300).any()):
            return torch.zeros_like(g)
        return 1.01 * g * torch.cos(x)


def old_exp(x):
    return _OldStyleExp.apply(x)


def sin_no_jvp(x):
    return _SinNoJvp.apply(x)


def sin_branching(x):
    return _SinBranching.apply(x)


def sin_branching_vec(x):
    return 2 * _SinBranching.apply(x)


def sin_branching_wrong(x):
    return _SinBranchingWrongBackward.apply(x)


class _CountingSquare(torch.autograd.Function):
    """x², counting how it is called: under a functorch transform or plainly."""

    calls: list[str] = []

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        from torch._C._functorch import is_batchedtensor
        _CountingSquare.calls.append("batched" if is_batchedtensor(g) else "plain")
        return 2 * x * g


def counting_square(x):
    return _CountingSquare.apply(x)


class _ExpJvpReadsNothing(torch.autograd.Function):
    """A jvp that reads ``ctx.saved_tensors`` although only ``save_for_backward`` saved them
    (forward mode needs ``save_for_forward``): it raises in forward mode only."""

    @staticmethod
    def forward(x):
        return torch.exp(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y

    @staticmethod
    def jvp(ctx, t):
        (y,) = ctx.saved_tensors  # the line the error message must point at
        return t * y


def exp_jvp_reads_nothing(x):
    return _ExpJvpReadsNothing.apply(x)
