"""The function library: every function's SymPy meaning and torch meaning agree.

Each row of LIBRARY is exercised through the real pipeline (compile_case + check_case): the
value check compares the exact expression, evaluated in high precision, with torch's kernel
at the same dtype-exact points; the derivative checks compare SymPy's derivative of the math
meaning with torch's backward formula of the torch meaning.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import sympy as sp
from conftest import make_case

from diffcheck.pipeline import check_case
from diffcheck.errors import ExpressionError
from diffcheck.language import parse
from diffcheck.language.library import CONSTANTS, LIBRARY, arr

SCALAR = {"x": {}}
POSITIVE = {"x": {"domain": [0.01, 10]}}
VECTORS = {"a": {"shape": [4]}, "b": {"shape": [4]}}
MATRIX = {"M": {"shape": [2, 3]}}

# name -> [(expression, variables, constants)]: at least one sample per library function
SAMPLES: dict[str, list[tuple[str, dict, dict]]] = {
    "exp": [("exp(x)", SCALAR, {})],
    "log": [("log(x)", POSITIVE, {})],
    "sqrt": [("sqrt(x)", POSITIVE, {})],
    "abs": [("abs(x)", SCALAR, {})],
    "sin": [("sin(x)", SCALAR, {})],
    "cos": [("cos(x)", SCALAR, {})],
    "tan": [("tan(x)", {"x": {"domain": [-1.5, 1.5]}}, {})],
    "sinh": [("sinh(x)", SCALAR, {})],
    "cosh": [("cosh(x)", SCALAR, {})],
    "tanh": [("tanh(x)", SCALAR, {})],
    "asinh": [("asinh(x)", SCALAR, {})],
    "atan": [("atan(x)", SCALAR, {})],
    "erf": [("erf(x)", {"x": {"domain": [-4, 4]}}, {})],
    "sigmoid": [("sigmoid(x)", {"x": {"domain": [-30, 30]}}, {})],
    "relu": [("relu(x)", SCALAR, {})],
    "step": [("step(x)", SCALAR, {})],
    "softplus": [("softplus(x)", {"x": {"domain": [-15, 15]}}, {})],
    "gelu": [("gelu(x)", SCALAR, {})],
    "silu": [("silu(x)", SCALAR, {})],
    "elu": [("elu(x)", SCALAR, {})],
    "leaky_relu": [("leaky_relu(x, 0.2)", SCALAR, {})],
    "sum": [("sum(a)", VECTORS, {}), ("sum(M, dim=0)", MATRIX, {})],
    "mean": [("mean(a)", VECTORS, {}), ("mean(M, dim=1)", MATRIX, {})],
    "dot": [("dot(a, b)", VECTORS, {})],
    "outer": [("outer(a, b)", VECTORS, {})],
    "diag": [("diag(a)", VECTORS, {}), ("diag(M)", MATRIX, {})],
    "transpose": [("transpose(M)", MATRIX, {})],
    "maximum": [("maximum(a, b)", VECTORS, {}), ("maximum(a, 0.5)", VECTORS, {})],
    "minimum": [("minimum(a, b)", VECTORS, {}), ("minimum(2, a)", VECTORS, {})],
    "where": [("where(a < 0, a**2, b)", VECTORS, {}), ("where(a >= 1, 1, a)", VECTORS, {})],
    "softmax": [("softmax(a)", VECTORS, {}), ("softmax(M, dim=0)", MATRIX, {})],
    "log_softmax": [("log_softmax(a)", VECTORS, {}), ("log_softmax(M, dim=0)", MATRIX, {})],
    "logsumexp": [("logsumexp(a)", VECTORS, {}), ("logsumexp(M, dim=0)", MATRIX, {})],
    "mse": [("mse(a, b)", VECTORS, {})],
    "sse": [("sse(a, b)", VECTORS, {})],
    "cross_entropy": [("cross_entropy(M, t)", MATRIX, {"t": [0, 2]}),
                      ("cross_entropy(M, p)", MATRIX, {"p": [[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]]}),
                      ("cross_entropy(a, 3)", VECTORS, {}),
                      ("cross_entropy(a, softmax(b))", VECTORS, {})],
}
ALL_SAMPLES = [(name, *sample) for name, samples in SAMPLES.items() for sample in samples]
IDS = [expr for _, expr, _, _ in ALL_SAMPLES]
MODES = ["reverse", "backward", "forward"]


def test_every_library_function_has_a_sample():
    # a function without a sample here has a control in cases/library/ (test_library_controls.py)
    from test_library_controls import controlled_functions
    assert set(LIBRARY) <= set(SAMPLES) | controlled_functions()
    assert set(SAMPLES) <= set(LIBRARY)
    for name, expr, _, _ in ALL_SAMPLES:
        assert name in {n.func for n in _calls(parse(expr))}, expr


def _calls(node):
    from diffcheck.language import Call, _children
    out = [node] if isinstance(node, Call) else []
    for child in _children(node):
        out += _calls(child)
    return out


@pytest.mark.parametrize("name, expr, variables, constants", ALL_SAMPLES, ids=IDS)
def test_torch_meaning_and_sympy_meaning_agree_in_value(name, expr, variables, constants):
    case = make_case(f"value_{name}", expr, variables, constants=constants, modes=[],
                     dtypes=["float64", "float32"], samples=12)
    report = check_case(case)
    values = [r for r in report.results if r.check == "value"]
    assert [r.dtype for r in values] == ["float64", "float32"]
    for r in values:
        # "kink": the value at a discontinuity (step at 0) lies between the one-sided limits
        assert r.status in ("pass", "kink"), (r.dtype, r.message)
        assert r.points >= 12


@pytest.mark.parametrize("name, expr, variables, constants", ALL_SAMPLES, ids=IDS)
def test_torch_derivatives_agree_with_the_exact_derivative(name, expr, variables, constants):
    case = make_case(f"derivative_{name}", expr, variables, constants=constants, modes=MODES,
                     dtypes=["float64"], samples=12)
    derivatives = [r for r in check_case(case).results if r.check != "value"]
    assert len(derivatives) == 3
    for r in derivatives:
        if name == "step":  # torch has no derivative for heaviside; the exact one is 0 (and δ at 0)
            assert r.status == "not_differentiable"
        else:
            assert r.status in ("pass", "kink"), (r.mode, r.message)


# --- the table itself ---------------------------------------------------------------------

def test_rows_are_consistent():
    for key, func in LIBRARY.items():
        lo, hi = func.nargs
        assert func.name == key and 1 <= lo <= hi
        assert all(0 <= i < hi for i in func.number_args)
        assert callable(func.math) and callable(func.torch)


def test_constants_have_both_meanings():
    for name, (exact, number) in CONSTANTS.items():
        assert float(exact) == number, name


def test_elementwise_functions_broadcast():
    v = np.array([sp.Symbol("a"), sp.Symbol("b")], dtype=object)
    out = LIBRARY["maximum"].math(v, arr(0))
    assert out.shape == (2,) and out[0] == sp.Max(sp.Symbol("a"), 0)
    assert LIBRARY["sigmoid"].math(v).shape == (2,)


def test_exp_refuses_an_exact_power_of_astronomical_size():
    start = time.perf_counter()
    with pytest.raises(ExpressionError, match="too large"):
        LIBRARY["exp"].math(arr(sp.Symbol("x") + 10 ** 10 * sp.log(2)))
    with pytest.raises(ExpressionError, match="too large"):
        LIBRARY["softplus"].math(arr(-(10 ** 9) * sp.log(3)))
    assert time.perf_counter() - start < 1.0
    assert LIBRARY["exp"].math(arr(1000 * sp.log(2)))[()] == 2 ** 1000  # a small one is exact


@pytest.mark.parametrize("expr, says", [
    ("cross_entropy(a, 0.5)", "whole numbers"),
    ("cross_entropy(a, 4)", "out of range"),
    ("cross_entropy(a, b[0:2])", "fits neither"),
    ("cross_entropy(x, 0)", "needs a 1-d or 2-d"),
    ("softmax(x)", "needs a 1-d"),
    ("dot(a, b[0:3])", "one length"),
])
def test_misuse_is_an_expression_error(expr, says):
    env = {"x": arr(sp.Symbol("x")), "a": np.array(sp.symbols("a0:4"), dtype=object),
           "b": np.array(sp.symbols("b0:4"), dtype=object)}
    from diffcheck.language import to_math
    with pytest.raises(ExpressionError, match=says):
        to_math(parse(expr), env)


# --- fmod and remainder: derivatives of their own, jumps excluded -----------------------------

_MOD_VARS = {"a": {"domain": [-5, 5]}, "b": {"domain": [0.5, 3]}}


def _mod_results(expr, torch=None, points=(), **kw):
    case = make_case("mod", expr, _MOD_VARS, torch=torch, dtypes=["float64"], modes=["reverse", "forward"],
                     samples=kw.pop("samples", 4), points=list(points), **kw)
    return check_case(case).results


def test_fmod_and_remainder_jumps_are_not_compared_and_elsewhere_are():
    for expr, jumps, smooth in (("fmod(a, b)", [{"a": 4, "b": 2}, {"a": -3, "b": 1.5}], [{"a": 0, "b": 1}]),
                                ("remainder(a, b)", [{"a": 4, "b": 2}, {"a": 0, "b": 1}], [{"a": -7.5, "b": 2}])):
        rs = _mod_results(expr, points=jumps + smooth, check=["gradient", "hessian"])
        assert rs[0].check == "value" and rs[0].status == "pass", rs[0].message  # the value is defined there
        for r in rs[1:]:
            assert r.status == "singular" and r.counts.get("undefined") == len(jumps), (expr, r.check, r.counts)
            assert {s.why for s in r.details.singular} == {"jump"}


def test_fmod_and_remainder_exact_values_follow_torch_signs():
    from diffcheck.symbolic.ops import torch_fmod, torch_remainder
    r = sp.Rational
    assert torch_fmod(r(-15, 2), 2) == r(-3, 2) and torch_remainder(r(-15, 2), 2) == r(1, 2)
    assert torch_fmod(r(15, 2), -2) == r(3, 2) and torch_remainder(r(15, 2), -2) == r(-1, 2)
    a, b = sp.symbols("a b")
    assert sp.diff(torch_fmod(a, b), a).func.__name__ == "jump_guard"


@pytest.mark.parametrize("expr, torch, check", [
    ("fmod(a, b)", "a - b * torch.floor(a / b)", "value"),               # remainder posing as fmod
    ("fmod(a, b)", "torch.fmod(a, b.detach())", "gradient"),             # ∂/∂b lost
    ("remainder(a, b)", "a - b * torch.trunc(a / b).detach() * 1.0 + 0 * b", "gradient"),
])
def test_wrong_fmod_or_remainder_fails(expr, torch, check):
    rs = _mod_results(expr, torch=torch, points=[{"a": -3.3, "b": 1.25}, {"a": 4.1, "b": 0.75}], samples=2)
    assert any(r.status == "fail" for r in rs if r.check == check), [(r.check, r.status, r.message) for r in rs]
