"""The fast reference keeps the exact one's guarantee.

The fast path (:mod:`diffcheck.reference`: vectorized extended precision with error bounds, a
log-domain pass, mpmath for the rest) is held to the exact mpmath evaluation: within one
float64 ulp, the same kinds (finite, ±inf, undefined), at random points and at the hard
ones — logits of ±1000, σ′(−800), tanh′ where 1 − tanh² cancels completely, every extreme
float16 input. The derivatives themselves (:mod:`diffcheck.symbolic.derive`) are SymPy's, whether
SymEngine computes them or SymPy does.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffcheck.symbolic import derive
from diffcheck.compare import FINITE, NEG_INF, POS_INF, UNDEFINED
from diffcheck.symbolic.dag import ExprList, from_sympy
from diffcheck.reference.mp import as_mp, classify
from diffcheck.reference import MODULES, Evaluator, MpmathEvaluator

x, y, z = sp.symbols("x y z", real=True)
SYMS = [x, y, z]


def sigmoid(t):
    return 1 / (1 + sp.exp(-t))


FUNCTIONS = {
    "sigmoid": sigmoid(x),
    "tanh": sp.tanh(x),
    "softplus": sp.log(1 + sp.exp(x)),
    "gelu": x * (1 + sp.erf(x / sp.sqrt(2))) / 2,
    "silu": x / (1 + sp.exp(-x)),
    "elu": sp.Piecewise((x, x > 0), (sp.exp(x) - 1, True)),
    "relu": sp.Max(0, x),
    "abs": sp.Abs(x * y - 1),
    "logsumexp": sp.log(sp.exp(x) + sp.exp(y) + sp.exp(z)),
    "softmax0": sp.exp(x) / (sp.exp(x) + sp.exp(y) + sp.exp(z)),
    "rational": (x ** 2 + y) / (1 + z ** 2),
    "trig": sp.sin(x) * sp.cos(y) + sp.tan(z / 7),
    "hyperbolic": sp.sinh(x / 3) * sp.cosh(y / 5) + sp.asinh(z) + sp.atan(x * y),
    "sqrt": sp.sqrt(x ** 2 + y ** 2 + 1),
    "step": sp.Heaviside(x, 0) * y,
    "where": sp.Piecewise((x * y, x > y), (x + y, True)),
}


def deep_oracle(exprs, symbols, points, dps: int = 600):
    """Exact values by mpmath at a precision far beyond any cancellation of these inputs."""
    fns = [sp.lambdify(symbols, e, modules=MODULES) for e in exprs]
    values = np.zeros((len(points), len(exprs)))
    kinds = np.zeros(values.shape, dtype=np.int8)
    with mpmath.workdps(dps):
        for i, row in enumerate(points):
            args = [mpmath.mpf(float(v)) for v in row]
            for j, fn in enumerate(fns):
                try:
                    value = as_mp(fn(*args))
                except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                    value = None
                values[i, j], kinds[i, j] = classify(value)
    return values, kinds


def assert_within_one_ulp(got, got_kinds, exact, exact_kinds):
    assert (got_kinds == exact_kinds).all(), np.argwhere(got_kinds != exact_kinds)
    finite = exact_kinds == FINITE
    a, b = got[finite], exact[finite]
    both_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    with np.errstate(invalid="ignore"):
        bad = ~(both_inf | (np.abs(a - b) <= np.spacing(np.abs(b))))
    assert not bad.any(), list(zip(a[bad][:5], b[bad][:5]))


def derivatives(expr):
    return [expr] + [sp.diff(expr, s) for s in SYMS if s in expr.free_symbols]


# --- random points ------------------------------------------------------------------------

point = st.tuples(*[st.floats(-60, 60, allow_nan=False, allow_subnormal=False)] * 3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(point, min_size=1, max_size=8), st.sampled_from(sorted(FUNCTIONS)))
def test_fast_path_equals_the_exact_value_within_one_ulp(points, name):
    exprs = derivatives(FUNCTIONS[name])
    pts = np.array(points, dtype=np.float64)
    got, got_kinds = Evaluator(exprs, SYMS)(pts)
    exact, exact_kinds = deep_oracle(exprs, SYMS, pts)
    assert_within_one_ulp(got, got_kinds, exact, exact_kinds)


def test_fast_path_equals_the_original_mpmath_evaluator_at_ordinary_points():
    rng = np.random.default_rng(7)
    pts = rng.uniform(-8, 8, size=(40, 3))
    exprs = [e for f in FUNCTIONS.values() for e in derivatives(f)]
    fast = Evaluator(exprs, SYMS)
    got, got_kinds = fast(pts)
    exact, exact_kinds = MpmathEvaluator(exprs, SYMS)(pts)
    assert_within_one_ulp(got, got_kinds, exact, exact_kinds)
    assert fast.stats.exact < fast.stats.entries / 10  # the fast path proves nearly everything
    same = (got == exact).mean()
    assert same > 0.99  # within one ulp always; correctly rounded nearly always


# --- hard points ----------------------------------------------------------------------------

def test_softmax_at_logits_of_a_thousand():
    logits = sp.symbols("l0:4", real=True)
    s = sum(sp.exp(v) for v in logits)
    soft = [sp.exp(v) / s for v in logits]
    jac = [sp.diff(f, v) for f in soft for v in logits]
    pts = np.array([[1000, -1000, 0, 999], [-1000, -1000, -1000, -999.5], [1000, 1000, -1000, 0]], dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(pts) / np.exp(pts).sum(axis=1, keepdims=True)
    assert np.isnan(naive).any()  # float64 overflows here
    ev = Evaluator(soft + jac, list(logits))
    got, kinds = ev(pts)
    exact, exact_kinds = deep_oracle(soft + jac, list(logits), pts)
    assert_within_one_ulp(got, kinds, exact, exact_kinds)
    assert ev.stats.exact == 0  # exp(1000) is an ordinary number in extended precision
    p = got[0, :4]
    assert p[0] == pytest.approx(1 / (1 + math.exp(-1)), rel=1e-15) and p[1] == 0.0


def test_sigmoid_derivative_at_minus_800():
    d = sp.diff(sigmoid(x), x)
    got, kinds = Evaluator([d], [x])(np.array([[-800.0], [800.0], [-30.0]]))
    with mpmath.workdps(60):
        exact = [float(mpmath.exp(-800) / (1 + mpmath.exp(-800)) ** 2), float(mpmath.exp(-800)),
                 float(mpmath.exp(-30) / (1 + mpmath.exp(-30)) ** 2)]
    assert list(got[:, 0]) == exact and (kinds == FINITE).all()
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.isnan(np.exp(800.0) / (1 + np.exp(800.0)) ** 2)  # what naive float64 gives


def test_tanh_derivative_where_one_minus_tanh_squared_cancels_completely():
    d = sp.diff(sp.tanh(x), x)  # 1 - tanh(x)**2: exactly 0 in any fixed precision at x = 300
    pts = np.array([[300.0], [-22.0], [40.0], [1e4]])
    got, kinds = Evaluator([d], [x])(pts)
    with mpmath.workdps(60):
        exact = [float(mpmath.sech(mpmath.mpf(v)) ** 2) for v in pts[:, 0]]
    assert list(got[:, 0]) == exact
    assert got[0, 0] > 0 and got[3, 0] == 0.0
    old, _ = MpmathEvaluator([d], [x])(pts[:1])
    assert old[0, 0] == 0.0  # the two-precision agreement alone is fooled here; the fast path is not


@pytest.mark.parametrize("expr, point", [
    (sp.cosh(x) - sp.sinh(x), (710.0, 0.0, 0.0)),                        # e^-710: 620 digits cancel
    (sp.log(sp.exp(x) + sp.exp(y) + sp.exp(z)), (0.0, -107.0, -107.0)),  # log(1 + 2e-107): absorbed
    ((2 - x - y) ** 2 + (4 - 3 * x - y) ** 2, (1.0, 1.0, 0.0)),          # an exact zero from exact terms
    (sp.exp(x) - 1 - x, (1e-9, 0.0, 0.0)),                               # cancellation to 5e-19
])
def test_values_that_two_agreeing_precisions_get_wrong(expr, point):
    pts = np.array([point])
    got, kinds = Evaluator([expr], SYMS)(pts)
    exact, exact_kinds = deep_oracle([expr], SYMS, pts, dps=1000)
    assert kinds[0, 0] == exact_kinds[0, 0] == FINITE
    assert got[0, 0] == exact[0, 0]


def test_every_extreme_float16_input():
    values = np.array([[-65504.0], [-11357.0], [-700.0], [0.0], [700.0], [11357.0], [65504.0]])
    exprs = [sigmoid(x), sp.diff(sigmoid(x), x), sp.tanh(x), sp.diff(sp.tanh(x), x)]
    ev = Evaluator(exprs, [x])
    got, kinds = ev(values)
    exact, exact_kinds = deep_oracle(exprs, [x], values, dps=80)
    assert_within_one_ulp(got, kinds, exact, exact_kinds)
    assert got[0, 0] == 0.0 and got[-1, 0] == 1.0 and got[-1, 1] == 0.0 and got[0, 3] == 0.0
    assert ev.stats.exact == 0 and ev.stats.log_domain > 0  # proven beyond the extended range


def test_an_identically_zero_derivative_is_zero():
    logits = sp.symbols("l0:3", real=True)
    total = sum(sp.exp(v) / sum(sp.exp(w) for w in logits) for v in logits)
    grad = [sp.diff(total, v) for v in logits]
    assert all(g != 0 for g in grad)  # SymPy does not see it
    got, kinds = Evaluator(grad, list(logits))(np.array([[1.0, 2.0, 3.0], [-5.0, 0.5, 4.0]]))
    assert (got == 0).all() and (kinds == FINITE).all()


def test_infinite_and_undefined_values_are_classified_like_the_exact_evaluator():
    exprs = [sp.log(x), 1 / x, sp.sqrt(x), x ** sp.Rational(2, 3), sp.diff(sp.sqrt(x), x), sp.DiracDelta(x),
             sp.Heaviside(x), sp.log(x) * 0 + 1]
    pts = np.array([[0.0], [-1.0], [2.0]])
    got, kinds = Evaluator(exprs, [x])(pts)
    exact, exact_kinds = deep_oracle(exprs, [x], pts)
    assert_within_one_ulp(got, kinds, exact, exact_kinds)
    assert kinds[0, 0] == NEG_INF and kinds[0, 1] == UNDEFINED and kinds[1, 2] == UNDEFINED
    assert POS_INF not in kinds[2]


def test_functions_without_an_extended_kernel_take_the_exact_path():
    gelu = FUNCTIONS["gelu"]
    exprs = derivatives(gelu)
    ev = Evaluator(exprs, [x])
    pts = np.linspace(-6, 6, 13)[:, None]
    got, kinds = ev(pts)
    exact, exact_kinds = deep_oracle(exprs, [x], pts)
    assert_within_one_ulp(got, kinds, exact, exact_kinds)
    assert ev.stats.exact > 0


# --- the derivatives: SymPy's, with or without SymEngine --------------------------------------

@pytest.fixture(params=["symengine", "sympy"])
def engine(request, monkeypatch):
    if request.param == "symengine":
        pytest.importorskip("symengine")
        monkeypatch.setenv("DIFFCHECK_SYMENGINE", "1")
    else:
        monkeypatch.setenv("DIFFCHECK_SYMENGINE", "0")
    return request.param


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_derivatives_are_sympys(name, engine):
    f = FUNCTIONS[name]
    got = derive.jacobian([f], SYMS, SYMS)
    assert isinstance(got, ExprList)
    for k, s in enumerate(SYMS):
        assert sp.simplify(got[k] - sp.diff(f, s)) == 0, (name, s, got[k])


def test_hessian_and_nth_derivative(engine):
    f = sp.exp(x * y) * sp.sin(z) + sp.tanh(x)
    h = derive.hessian(f, SYMS, SYMS)
    for i, a in enumerate(SYMS):
        for k, b in enumerate(SYMS):
            assert sp.simplify(h[3 * i + k] - sp.diff(f, a, b)) == 0
    (d3,) = derive.nth_derivative(sp.tanh(x), x, 3, [x])
    assert sp.simplify(d3 - sp.diff(sp.tanh(x), x, 3)) == 0


def test_symengine_and_sympy_give_the_same_reference(monkeypatch):
    pytest.importorskip("symengine")
    logits = sp.symbols("l0:6", real=True)
    s = sum(sp.exp(v) for v in logits)
    outputs = [sp.exp(v) / s for v in logits] + [sp.log(s), sp.tanh(logits[0]) * sigmoid(logits[1])]
    rng = np.random.default_rng(3)
    pts = np.concatenate([rng.uniform(-30, 30, size=(50, 6)), [[1000, -1000, 0, 1, 2, 3]]])
    references = []
    for flag in ("1", "0"):
        monkeypatch.setenv("DIFFCHECK_SYMENGINE", flag)
        jac = derive.jacobian(outputs, list(logits), list(logits))
        references.append(Evaluator(jac, list(logits))(pts))
    (a, ka), (b, kb) = references
    assert (ka == kb).all()
    assert (np.abs(a - b) <= np.spacing(np.abs(a))).all()


def test_the_same_results_with_and_without_symengine(monkeypatch):
    pytest.importorskip("symengine")
    from conftest import make_case

    from diffcheck import check_case
    cases = [make_case("softmax", "softmax(x)", {"x": {"shape": [5]}}, samples=8),
             make_case("tanh", "tanh(x)", samples=8, check=["gradient", {"derivative": 2}]),
             make_case("mse", "mse(X @ w, y)", {"w": {"shape": [2]}},
                       constants={"X": [[1.5, -2.0], [0.25, 3.0]], "y": [1.0, -1.0]},
                       check=["gradient", "hessian"], samples=5)]
    outcomes = []
    for flag in ("1", "0"):
        monkeypatch.setenv("DIFFCHECK_SYMENGINE", flag)
        outcomes.append([(r.check, r.mode, r.dtype, r.status, r.points, r.counts)
                         for c in cases for r in check_case(c).results])
    assert outcomes[0] == outcomes[1]


def test_a_program_gives_back_the_expressions():
    exprs = [e for f in FUNCTIONS.values() for e in derivatives(f)]
    program = from_sympy(exprs, SYMS)
    rebuilt = ExprList(program, SYMS)
    assert len(rebuilt) == len(exprs)
    assert all(a == b for a, b in zip(rebuilt, exprs))
    assert len(program) < sum(sp.count_ops(e) + 1 for e in exprs)  # shared, not repeated


# --- the size of exact values (the tolerance's scale S) -----------------------------------

def exact_magnitude(exprs, symbols, pts):
    values, kinds = deep_oracle(exprs, symbols, pts)
    finite = np.abs(values[(kinds == FINITE) & np.isfinite(values)])
    return float(finite.max()) if finite.size else 0.0


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_magnitude_is_the_largest_exact_value_to_six_digits(name):
    exprs = derivatives(FUNCTIONS[name])
    pts = np.array([[a, b, c] for a in (-800.0, -30.0, -1.5, 0.0, 2.0, 40.0, 710.0) for b, c in ((1.0, -3.0),
                                                                                              (-700.0, 0.5))])
    ev = Evaluator(exprs, SYMS)
    assert ev.magnitude(pts) == pytest.approx(exact_magnitude(exprs, SYMS, pts), rel=1e-6, abs=0)


def test_magnitude_at_hard_points_needs_no_mpmath():
    """Saturated sigmoid and logits of ±1000: values the extended pass cannot prove correctly
    rounded are far below the largest, so the size needs no exact pass."""
    logits = sp.symbols("l0:4", real=True)
    s = sum(sp.exp(v) for v in logits)
    jac = [sp.diff(sp.exp(a) / s, b) for a in logits for b in logits]
    pts = np.linspace(-1000, 1000, 64 * 4).reshape(64, 4)
    ev = Evaluator(jac, list(logits))
    assert ev.magnitude(pts) == pytest.approx(exact_magnitude(jac, list(logits), pts), rel=1e-6)
    sig = sp.diff(sigmoid(x), x)
    grid = np.linspace(-1000, 1000, 64)[:, None]
    ev_sig = Evaluator([sig], [x])
    assert ev_sig.magnitude(grid) == pytest.approx(exact_magnitude([sig], [x], grid), rel=1e-6)
    assert ev.stats.exact == 0 and ev_sig.stats.exact == 0


def test_magnitude_of_an_identically_zero_derivative_is_exactly_zero():
    logits = sp.symbols("l0:3", real=True)
    total = sum(sp.exp(v) / sum(sp.exp(w) for w in logits) for v in logits)
    grad = [sp.diff(total, v) for v in logits]
    assert Evaluator(grad, list(logits)).magnitude(np.array([[1.0, 2.0, 3.0], [-5.0, 0.5, 4.0]])) == 0.0


def test_magnitude_leaves_out_infinite_and_undefined_values():
    exprs = [sp.exp(x), sp.log(x), 1 / x]
    pts = np.array([[0.0], [-1.0], [800.0], [2.0]])  # exp(800) is beyond float64: not a size
    assert Evaluator(exprs, [x]).magnitude(pts) == pytest.approx(math.exp(2.0), rel=1e-6)
