"""The losses of torch.nn.functional: the exact meaning equals torch's value at fixed points,
for each reduction and option, and wrong targets or options are refused with a message.

(The derivatives are checked by the controls, cases/library/losses.yaml.)"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

from diffcheck.errors import ExpressionError
from diffcheck.language import DTYPE_KEY, parse, to_math, to_torch
from diffcheck.language.library import LIBRARY
from diffcheck.language.losses import NOT_IN

DATA = {
    "x": [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]],
    "y": [[0.25, -0.5, 1.0], [2.5, 0.25, 0.75]],
    "z": [[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]],
    "p": [[0.2, 0.7, 0.9], [0.5, 0.1, 0.35]],
    "q": [[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]],
    "v": [[0.5, 1.0, 2.0], [0.1, 0.3, 1.5]],
    "w": [0.5, 1.0, 2.0],
    "k": [2, 0], "k3": [0, 2, 1], "s": [1, -1], "s6": [[1, -1, 1], [-1, -1, 1]],
    "m": [[2, 0, -1], [1, -1, 0]], "c": [[0, 1, 2], [3, 0.5, 4]], "x3": [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75], [0, 1, 2]],
}


def _sym(value):
    a = np.asarray(value, dtype=float)
    if np.all(a == np.round(a)):
        return np.vectorize(lambda t: sp.Integer(int(t)), otypes=[object])(a)
    return np.vectorize(lambda t: sp.Float(t, 30), otypes=[object])(a)


MENV = {k: _sym(v) for k, v in DATA.items()}
TENV = {DTYPE_KEY: torch.float64, **{k: torch.tensor(v, dtype=torch.float64) for k, v in DATA.items()}}

CASES = [
    "mse(x, y)", "sse(x, y)", "mse_loss(x, y, reduction='sum')", "l1_loss(x, y)", "l1_loss(x, y, reduction='none')",
    "smooth_l1_loss(x, y)", "smooth_l1_loss(x, y, beta=0.5, reduction='sum')", "smooth_l1_loss(x, y, beta=0)",
    "huber_loss(x, y)", "huber_loss(x, y, delta=0.3, reduction='none')",
    "binary_cross_entropy(p, q)", "binary_cross_entropy(p, q, weight=w, reduction='sum')",
    "binary_cross_entropy_with_logits(x, q)", "binary_cross_entropy_with_logits(x, q, weight=w, pos_weight=v)",
    "cross_entropy(x, k)", "cross_entropy(x, q)", "cross_entropy(x, k, weight=w)",
    "cross_entropy(x3, k3, weight=w, ignore_index=1)", "cross_entropy(x3, k3, ignore_index=2, label_smoothing=0.3)",
    "cross_entropy(x3, k3, weight=w, ignore_index=1, label_smoothing=0.1, reduction='none')",
    "cross_entropy(x3, k3, weight=w, label_smoothing=0.2, reduction='sum')",
    "cross_entropy(x, q, weight=w, label_smoothing=0.2)", "cross_entropy(x[0], 1)", "cross_entropy(x[0], q[0])",
    "nll_loss(x, k)", "nll_loss(x3, k3, weight=w, ignore_index=0)", "nll_loss(x, k, reduction='none')",
    "kl_div(x, q)", "kl_div(x, q, reduction='batchmean')", "kl_div(x, y, log_target=True, reduction='none')",
    "poisson_nll_loss(x, c)", "poisson_nll_loss(v, c, log_input=False, full=True, reduction='none')",
    "poisson_nll_loss(v, c, log_input=False, eps=0.01)",
    "gaussian_nll_loss(x, y, v)", "gaussian_nll_loss(x, y, v[:, 0], full=True, reduction='sum')",
    "gaussian_nll_loss(x, y, v[:, 0:1])", "soft_margin_loss(x, s6)",
    "multilabel_soft_margin_loss(x, q)", "multilabel_soft_margin_loss(x, q, weight=w, reduction='none')",
    "multi_margin_loss(x, k)", "multi_margin_loss(x, k, p=2, margin=0.7, weight=w, reduction='sum')",
    "multilabel_margin_loss(x, m)", "multilabel_margin_loss(x, m, reduction='none')",
    "margin_ranking_loss(x, y, s6, margin=0.3)", "hinge_embedding_loss(x, s6)",
    "hinge_embedding_loss(x, s6, margin=0.2, reduction='none')", "hinge_embedding_loss(x, s6 * 0 + 2)",
    "cosine_embedding_loss(x, y, s)", "cosine_embedding_loss(x, y, s, margin=0.5, reduction='none')",
    "triplet_margin_loss(x, y, z)", "triplet_margin_loss(x, y, z, margin=2, p=1, swap=True, reduction='none')",
    "triplet_margin_loss(x, y, z, p=3, eps=0.001)", "triplet_margin_with_distance_loss(x, y, z, swap=True)",
    "pairwise_distance(x, y)", "pairwise_distance(x, y, p=inf, keepdim=True)", "pairwise_distance(x, y, p=1, eps=0)",
    "cosine_similarity(x, y)", "cosine_similarity(x, y, dim=0)", "cosine_similarity(x, y[0:1])",
]


@pytest.mark.parametrize("text", CASES)
def test_exact_meaning_is_torchs_value(text):
    exact = to_math(parse(text), MENV)
    got = to_torch(parse(text))(TENV)
    assert tuple(got.shape) == exact.shape, (got.shape, exact.shape)
    want = np.array([float(sp.N(e, 30)) for e in exact.ravel()])
    assert np.allclose(got.detach().reshape(-1).numpy(), want, rtol=1e-12, atol=1e-12), (got, want)


def test_every_loss_of_torch_nn_functional_is_in_or_argued_out():
    import torch.nn.functional as F
    losses = {n for n in dir(F) if n.endswith("_loss") or n in ("binary_cross_entropy", "cross_entropy", "kl_div",
                                                                  "binary_cross_entropy_with_logits")}
    missing = losses - set(LIBRARY) - set(NOT_IN)
    assert not missing, missing
    assert len(losses & set(LIBRARY)) >= 0.9 * len(losses)


REFUSED = [
    ("cross_entropy(x, k, reduction='avg')", "must be one of 'mean', 'sum', 'none'"),
    ("cross_entropy(x, k, label_smoothing=2)", "label_smoothing must be in [0, 1]"),
    ("cross_entropy(x, k, weight=w[0:2])", "one entry per class (3)"),
    ("cross_entropy(x3, k3, ignore_index=0, weight=w * 0)", None),
    ("nll_loss(x, q)", "fits neither"),
    ("nll_loss(x, y[:, 0])", "whole numbers"),
    ("nll_loss(x, k * 5)", "out of range"),
    ("nll_loss(x[0:1], k[0:1], ignore_index=2)", "every target is ignore_index"),
    ("multi_margin_loss(x, k, p=3)", "p must be 1 or 2"),
    ("hinge_embedding_loss(x, y)", "whole numbers"),
    ("huber_loss(x, y, delta=0)", "delta must be positive"),
    ("kl_div(x, q[0])", "one shape"),
    ("gaussian_nll_loss(x, y, w)", "fits neither"),
    ("smooth_l1_loss(x, y, beta=-1)", "at least 0"),
    ("l1_loss(x, y, delta=1)", "its keywords are reduction="),
    ("kl_div(x, q, reduction='batchmeans')", "did you mean 'batchmean'"),
]


@pytest.mark.parametrize("text, says", REFUSED)
def test_wrong_targets_and_options_are_refused(text, says):
    try:
        to_math(parse(text), MENV)
    except ExpressionError as err:
        assert says is None or says in f"{err.message} ({err.hint})", err.message
    else:
        assert says is None  # a legal spelling whose value torch also computes
