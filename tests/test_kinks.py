"""Kinks, singular points and the search: an honest verdict at every point.

A wrong subgradient, naive formulas at extreme inputs (unstable, with their regions), torch's
refusal to differentiate heaviside and their controls are case files in tests/data/cases/
(planted.yaml), read by tests/test_soundness_cases.py."""

from __future__ import annotations

import pytest
from conftest import make_case

from diffcheck.pipeline import CheckOptions, check_case
from diffcheck.diagnostics.kinks import convention, find_kinks, limit_sides
from diffcheck.symbolic import compile_case

ALL_DTYPES = ["float64", "float32", "float16", "bfloat16"]
MODES = ["reverse", "backward", "forward"]


def derivative_results(case):
    return [r for r in check_case(case).results if r.check != "value"]


def _torch_release() -> tuple[int, int]:
    import torch
    return tuple(int(part) for part in torch.__version__.split(".")[:2])


@pytest.mark.parametrize("name, expr, torch_text, expected", [
    ("relu", "relu(x)", None, "left limit (0)"),
    # torch 2.14 changed clamp's choice at its bound from the right limit to the left (measured:
    # tools/compat.sh 2.14.1); either is a valid subgradient, and diffcheck names the one torch makes
    ("clamp", "relu(x)", "torch.clamp(x, min=0)",
     "right limit (1)" if _torch_release() < (2, 14) else "left limit (0)"),
    ("abs", "abs(x)", None, "midpoint (0)"),
    ("maximum", "maximum(x, 0)", None, "midpoint (0.5)"),
])
def test_kinks_pass_with_their_convention(name, expr, torch_text, expected):
    case = make_case(name, expr, torch=torch_text, samples=4, dtypes=ALL_DTYPES, modes=MODES)
    results = derivative_results(case)
    assert results and {r.status for r in results} == {"kink"}
    for r in results:
        assert r.counts.get("kink") == 1
        (kink,) = r.details.kinks
        assert kink.point == {"x": 0.0}
        assert kink.convention == expected


def test_kinks_are_found_from_the_exact_derivative():
    compiled = compile_case(make_case("k", "relu(x - 1) + abs(x + 2)", {"x": {"domain": [-5, 5]}}))
    exprs = compiled.targets(compiled.checks[0])[0].exprs
    assert find_kinks(compiled, exprs) == [-2.0, 1.0]
    outside = compile_case(make_case("k2", "relu(x - 20)", {"x": {"domain": [-5, 5]}}))
    assert find_kinks(outside, outside.targets(outside.checks[0])[0].exprs) == []


def test_convention_names():
    assert convention(0.0, 1.0, 0.0, 1e-12) == "left limit (0)"
    assert convention(0.0, 1.0, 1.0, 1e-12) == "right limit (1)"
    assert convention(-1.0, 1.0, 0.0, 1e-12) == "midpoint (0)"
    assert convention(0.0, 1.0, 0.25, 1e-12) == "inside [0, 1]"
    assert convention(0.0, 1.0, 2.0, 1e-12) is None
    assert limit_sides(float("nan"), float("inf")) == "+inf"
    assert limit_sides(float("-inf"), float("inf")) is None


def test_sqrt_at_zero_is_singular_not_failed():
    case = make_case("sqrt0", "sqrt(x)", {"x": {"domain": [0, 4]}}, points=[{"x": 0}], samples=4,
                     dtypes=["float64", "float32"])
    results = derivative_results(case)
    assert {r.status for r in results} == {"singular"}
    for r in results:
        (s,) = r.details.singular
        assert s.limit == "+inf" and s.torch == float("inf") and s.matches_limit


def test_log_at_zero_only_counts_the_side_where_log_is_defined():
    case = make_case("log0", "log(x)", {"x": {"domain": [0, 4]}}, points=[{"x": 0}], samples=2, dtypes=["float64"])
    (r, *_) = derivative_results(case)
    assert r.details.singular[0].limit == "+inf"


def test_search_is_deterministic_and_shrinks():
    case = make_case("narrow", "sigmoid(x)", torch="bug(x)", imports={"bug": "diffcheck.examples:sigmoid_narrow_bug"},
                     modes=["reverse"], dtypes=["float64"])
    assert {r.status for r in check_case(case).results} == {"pass"}
    found = [[r.details.search for r in check_case(case, CheckOptions(search=True, seed=3)).results]
             for _ in range(2)]
    assert found[0] == found[1]
    gradient = found[0][1]
    assert 2.5 < gradient.point["x"] < 2.51
    assert gradient.points_line == "points: [{x: 2.5078125}]"


def test_search_calls_no_correct_kink_a_failure():
    """--search judges a candidate as the result is judged: relu's 0 at the kink x = 0 (which
    the search drives every entry to) is a valid subgradient, not SymPy's Heaviside(0) = 1/2."""
    case = make_case("relu_vec_search", "relu(x)", variables={"x": {"shape": [6], "domain": [-1, 1]}},
                     samples=4, dtypes=["float32", "float64"], modes=["reverse", "forward"])
    results = check_case(case, CheckOptions(search=True)).results
    assert results and not [r for r in results if r.status not in ("pass", "kink")], \
        [(r.check, r.mode, r.dtype, r.status, r.message) for r in results]


def test_search_draws_a_long_vector_from_a_seed():
    """Hypothesis cannot draw 1000 floats element by element (it raised Unsatisfiable and the
    case was lost): a long variable is drawn from a seed it chooses. A correct mean of squares
    passes; a 1e-3 error in one entry of its gradient is found and pinned."""
    variables = {"x": {"shape": [1000], "domain": [-1, 1]}}
    good = make_case("long_mean", "sum(x * x) / 1000", variables=variables, samples=4,
                     dtypes=["float32"], modes=["reverse"])
    assert {r.status for r in check_case(good, CheckOptions(search=True)).results} == {"pass"}
    bad = make_case("long_mean_off", "sum(x * x) / 1000", variables=variables, samples=4, dtypes=["float32"],
                    modes=["reverse"], torch="torch.sum(x * x) / 1000 * (1 + 1e-3 * (x[0] - torch.Tensor.detach(x[0])))")
    (gradient,) = [r for r in check_case(bad, CheckOptions(search=True)).results if r.check == "gradient"]
    assert gradient.status == "fail" and gradient.details.search.points_line.startswith("points: [{x: [")
    assert gradient.details.search.stage == "hypothesis"  # drawn from a seed, not the sweep's fallback
