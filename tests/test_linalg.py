"""Linear algebra and layers: the exact meaning equals torch's value at fixed points, for each
option, and wrong shapes or options are refused with a message.

(The derivatives are checked by the controls, cases/library/linalg.yaml.)"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

from diffcheck.errors import ExpressionError
from diffcheck.language import DTYPE_KEY, parse, to_math, to_torch

rng = np.random.default_rng(0)
SHAPES = {"A": (3, 3), "S": (2, 2), "B": (3, 2), "v": (3,), "u": (3,), "x": (2, 3), "W": (4, 3), "b": (4,),
          "g": (3,), "X": (2, 4, 3), "c4": (4,), "N": (3, 2), "q": (2, 3, 2), "k": (2, 3, 2), "V": (2, 3, 2),
          "w1": (2, 2, 2), "I1": (1, 2, 5), "I2": (1, 2, 4, 4), "w2": (2, 1, 2, 2), "rm": (2,), "rv": (2,),
          "mask": (3, 3)}
DATA = {k: rng.uniform(-1.5, 1.5, s).round(3) for k, s in SHAPES.items()}
DATA["rv"] = np.abs(DATA["rv"]) + 0.5
DATA["A"] = DATA["A"] + 3 * np.eye(3)
MENV = {k: np.vectorize(lambda t: sp.Rational(str(t)), otypes=[object])(v) for k, v in DATA.items()}
TENV = {DTYPE_KEY: torch.float64, **{k: torch.tensor(v, dtype=torch.float64) for k, v in DATA.items()}}

CASES = [
    "matmul(A, B)", "matmul(v, A)", "matmul(X, B)", "det(A)", "det(S)", "slogdet(A)", "slogdet(-A)",
    "logdet(A)", "inv(A)", "inv(S)", "solve(A, v)", "solve(A, B)", "trace(A)", "trace(B)",
"svdvals(S)", "svdvals(-S * 2)", "vecdot(v, u)", "vecdot(x, x * 2, dim=0)", "diagonal(A)", "diagonal(B, offset=-1)",
    "diagonal(X, dim1=0, dim2=2)", "vander(v)", "vander(g, N=2)",
    "matrix_power(A, 0)", "matrix_power(S, 3)", "matrix_power(A, -1)", "cross(v, u)", "cross(x, x * 2 + 1)", "linalg_norm(A)", "linalg_norm(v, 1)", "linalg_norm(A, ord=inf)",
    "linalg_norm(A, 'fro', dim=(0, 1))", "linalg_norm(x, ord=3, dim=1, keepdim=True)",
    "linear(x, W)", "linear(x, W, b)", "linear(v, g)",
    "layer_norm(x, (3,))", "layer_norm(X, (4, 3), eps=0.01)", "layer_norm(x, 3, g, g * 2)",
    "group_norm(X, 2)", "group_norm(X, 4, c4, c4)", "group_norm(X, 1, eps=0.1)",
    "batch_norm(N, None, None, training=True)", "batch_norm(N, rm, rv)", "batch_norm(N, rm, rv, rm, rv, False, 0.1, 0.01)",
    "batch_norm(X[:, 0:2, :], None, None, training=True)",
    "scaled_dot_product_attention(q, k, V)", "scaled_dot_product_attention(q, k, V, is_causal=True)",
    "scaled_dot_product_attention(q, k, V, scale=0.3)", "scaled_dot_product_attention(q[0], k[0], V[0], mask)",
    "conv1d(I1, w1)", "conv1d(I1, w1, rm, 2, 1)", "conv1d(I1, w1, padding='same', dilation=2)",
    "conv1d(I1[0], w1[:, 0:1, :], groups=2)", "conv1d(I1, w1, padding='valid')",
    "conv2d(I2, w2, groups=2)", "conv2d(I2, w2, rm, stride=(2, 1), padding=(1, 0), groups=2)", "conv2d(I2, w2, padding='same', groups=2)",
]


@pytest.mark.parametrize("text", CASES)
def test_exact_meaning_is_torchs_value(text):
    exact = to_math(parse(text), MENV)
    got = to_torch(parse(text))(TENV)
    assert tuple(got.shape) == exact.shape, (got.shape, exact.shape)
    want = np.array([float(sp.N(e, 30)) for e in exact.ravel()])
    assert np.allclose(got.detach().reshape(-1).numpy(), want, rtol=1e-10, atol=1e-10), (got, want)


REFUSED = [
    ("det(B)", "square matrices"), ("inv(x)", "square"), ("det(x)", "square"),
    ("matrix_power(A)", "needs the power n"), ("matrix_power(A, 20)", "at most 16"), ("cross(x, x, dim=0)", "3 entries"),
    ("solve(A, v, left=False)", "left=False"), ("layer_norm(x, (2,))", "trailing shape"), ("layer_norm(x)", "normalized_shape"),
    ("group_norm(X, 3)", "do not split"), ("batch_norm(N, None, None)", "unless training=True"),
    ("scaled_dot_product_attention(q, k, V, dropout_p=0.1)", "dropout_p must be 0"),
    ("scaled_dot_product_attention(q[0], k[0], V[0], mask, is_causal=True)", "not both"),
    ("conv1d(I1, w1, padding='same', stride=2)", "needs stride 1"), ("conv1d(I1, w1, padding='full')", "must be one of"),
    ("conv1d(I1, w1, groups=3)", "do not fit"), ("conv2d(I2, w1)", "needs input"), ("linalg_norm(A, ord='nuc')", "singular values"),
    ("inv(A * 0)", "singular for every value"),
]


@pytest.mark.parametrize("text, says", REFUSED, ids=[t for t, _ in REFUSED])
def test_wrong_shapes_and_options_are_refused(text, says):
    with pytest.raises(ExpressionError) as info:
        to_math(parse(text), MENV)
    assert says in f"{info.value.message} ({info.value.hint})", info.value.message
