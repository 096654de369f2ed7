"""Options of library functions, spelled as torch spells them: keyword or positional after the
tensor arguments, read by kind (whole numbers, tuples of them, numbers with inf, booleans,
strings from a fixed set, expressions), and refused with the position, the signature and
"did you mean" when wrong. Both meanings receive the same options."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

from diffcheck.errors import ExpressionError
from diffcheck.language import DTYPE_KEY, Call, Name, names_used, parse, to_math, to_torch
from diffcheck.language.library import LIBRARY, arr

V = np.array([sp.Symbol(f"v_{i}", real=True) for i in range(4)], dtype=object)
M = np.array([[sp.Symbol(f"M_{i}_{j}", real=True) for j in range(3)] for i in range(2)], dtype=object)
ENV = {"v": V, "M": M, "w": arr(np.array([sp.Rational(1, 2)] * 4, dtype=object))}
TENV = {DTYPE_KEY: torch.float64, "v": torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=torch.float64),
        "M": torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=torch.float64),
        "w": torch.full((4,), 0.5, dtype=torch.float64)}


def math_of(text):
    return to_math(parse(text), ENV)


def both(text):
    """The math meaning evaluated at TENV's values, and the torch meaning there."""
    subs = {s: float(t) for name in ("v", "M") for s, t in zip(ENV[name].ravel(), TENV[name].ravel())}
    exact = np.array([float(sp.N(e.xreplace(subs), 30)) for e in math_of(text).ravel()])
    got = to_torch(parse(text))(TENV)
    return exact, got.detach().reshape(-1).numpy()


def test_options_keyword_and_positional_mean_the_same():
    assert parse("prod(M, dim=1, keepdim=True)").options == (("dim", 1), ("keepdim", True))
    assert parse("prod(M, 1, True)").options == (("dim", 1), ("keepdim", True))
    assert parse("sum(M, dim=(0, 1))").options == (("dim", (0, 1)),)
    assert parse("norm(v, p=inf)").options == (("p", float("inf")),)
    assert parse("norm(v, 'fro')").options == (("p", "fro"),)
    assert parse("var(M, correction=0.5)").options[0][1] == 0.5
    assert parse("sum(M, dim=-1)").dim == -1  # the old field still reads dim


@pytest.mark.parametrize("text, shape", [
    ("sum(M, dim=1, keepdim=True)", (2, 1)), ("mean(M, (0, 1))", ()), ("prod(M, 0, True)", (1, 3)),
    ("amax(M, dim=(0, 1), keepdim=True)", (1, 1)), ("cumsum(M, dim=0)", (2, 3)), ("var(M, 1)", (2,)),
    ("logsumexp(M, dim=0, keepdim=True)", (1, 3)), ("matrix_norm(M, ord=1, keepdim=True)", (1, 1)),
    ("norm(M, 3, 1)", (2,)), ("std(M)", ()),
])
def test_both_meanings_agree_in_shape_and_value(text, shape):
    exact, got = both(text)
    assert math_of(text).shape == shape
    assert np.allclose(exact, got, rtol=1e-12, atol=1e-12), (exact, got)


def test_option_expressions_are_read_and_their_names_used():
    node = parse("sum(v * w)")
    assert names_used(node) == {"v", "w"}


REFUSED = [
    ("prod(M, dimm=1)", 8, "no keyword 'dimm'", "did you mean 'dim'"),
    ("prod(M, axis=1)", 8, "its keywords are dim=, keepdim=", "prod(x, dim=None, keepdim=False)"),
    ("prod(M, keepdim=1)", 16, "True or False", None),
    ("prod(M, dim=1.5)", 12, "whole number", None),
    ("norm(v, p='fr')", 10, "must be one of 'fro', 'nuc'", "did you mean 'fro'"),
    ("norm(v, p=x)", 10, "a number or inf", None),
    ("var(v, correction=-1)", 18, "at least 0", None),
    ("prod(M, 1, True, 3)", 0, "takes 1 argument(s) (then dim, keepdim), got 4", None),
    ("prod(M, 1, dim=1)", 11, "got dim twice", None),
    ("cumsum(M)", 0, "needs dim=", None),
    ("sum(M, dim=(0, 0))", 0, "names an axis twice", None),
    ("sum(M, dim=(0, 5))", 0, "out of bounds", None),
    ("sigmoid(v, 'x')", 0, "takes 1 argument", None),
    ("vector_norm(v, ord='fro')", 19, "must be a number or inf, not a string", None),
    ("matrix_norm(M, ord='nuc')", 0, "singular values", None),
    ("norm(v, p=0)", 0, "p=0", None),
    ("max(v, M)", 7, "takes a whole number as dim", "maximum(x, y)"),
    ("min(v, 0.5)", 7, "takes a whole number as dim", "minimum(x, y)"),
    ("var(v, correction=4)", 0, "no degrees of freedom", None),
]


@pytest.mark.parametrize("text, offset, says, hint", REFUSED, ids=[t for t, *_ in REFUSED])
def test_wrong_options_are_refused_with_position_and_help(text, offset, says, hint):
    with pytest.raises(ExpressionError) as info:
        math_of(text)
    assert info.value.offset == offset, info.value.message
    assert says in info.value.message, info.value.message
    if hint:
        assert hint in (info.value.hint or ""), info.value.hint


def test_every_option_kind_is_described_and_every_row_has_a_signature():
    for func in LIBRARY.values():
        assert func.signature().startswith(func.name + "(")
        for o in func.opts:
            assert o.kind in ("int", "ints", "number", "bool", "choice", "tensor", "number_or_choice")
            assert o.describe()
            assert not o.choices or all(isinstance(c, str) for c in o.choices)
