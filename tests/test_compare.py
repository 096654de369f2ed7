"""The comparison policy: tolerance numbers, ULPs, point classes and result statuses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffcheck import compare as cmp
from diffcheck.case import Tolerance
from diffcheck.compare import FINITE, NEG_INF, POS_INF, UNDEFINED, compare, errors_at, policy_for, status_of, ulp

DTYPES = ["float64", "float32", "float16", "bfloat16"]


def one(ref, got, dtype="float64", kinds=None, **kw):
    """Compare one row of entries (a single point)."""
    ref = np.atleast_2d(np.asarray(ref, dtype=float))
    got = np.atleast_2d(np.asarray(got, dtype=float))
    kinds = np.full(ref.shape, FINITE, dtype=np.int8) if kinds is None else np.atleast_2d(np.asarray(kinds, np.int8))
    return compare(ref, kinds, got, dtype, **kw)


# --- the policy numbers ------------------------------------------------------------------

def test_machine_epsilons():
    assert cmp.EPS == {"float64": 2.0 ** -52, "float32": 2.0 ** -23, "float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}
    assert cmp.MAX["float16"] == 65504.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_default_policy_is_a_few_eps_relative_plus_a_few_eps_of_the_scale(dtype):
    eps = cmp.EPS[dtype]
    p = policy_for(dtype, 0.25, None)
    assert (p.rtol, p.atol, p.rule) == (2 * eps, 8 * eps * 0.25, "default")
    # an identically zero result still gets a (tiny) positive tolerance
    assert policy_for(dtype, 0.0, None).atol == 8 * eps * cmp.TINY[dtype] > 0


def test_user_tolerance_replaces_the_default_in_every_dtype():
    for dtype in DTYPES:
        p = policy_for(dtype, 123.0, Tolerance(rtol=1e-3, atol=1e-5))
        assert (p.rtol, p.atol, p.rule) == (1e-3, 1e-5, "user")
    assert p.describe() == {"rtol": 1e-3, "atol": 1e-5, "rule": "user"}


def test_user_tolerance_is_torch_testing_rule():
    tol = Tolerance(rtol=1e-3, atol=1e-5)
    assert one([1.0], [1.0 + 1e-3 + 0.9e-5], override=tol).counts == {"pass": 1}
    assert one([1.0], [1.0 + 1e-3 + 1.1e-5], override=tol).counts == {"fail": 1}


def test_scale_is_the_largest_exact_value_of_the_result_or_the_floor():
    c = one([[0.25, 1e-6]], [[0.25, 1e-6 + 3 * cmp.EPS["float32"] * 0.25]], "float32")
    assert c.policy.atol == 8 * cmp.EPS["float32"] * 0.25 and c.counts == {"pass": 1}
    floored = one([[1e-6]], [[1e-6]], "float32", scale_floor=0.25)
    assert floored.policy.atol == 8 * cmp.EPS["float32"] * 0.25


@pytest.mark.parametrize("dtype", DTYPES)
def test_correct_rounding_passes(dtype):
    ref = np.linspace(-3, 3, 101).reshape(1, -1) * np.pi
    got = torch.tensor(ref).to(getattr(torch, dtype)).double().numpy()
    assert one(ref, got, dtype).counts == {"pass": 1}


def test_documented_failures():
    # a 2 % error in a float16 derivative at its largest value fails
    assert one([0.25], [0.25 * 1.02], "float16").counts == {"fail": 1}
    # ... and so does a 1e-6 relative error in float64, and in float32 at 1e-5
    assert one([0.25], [0.25 * (1 + 1e-6)], "float64").counts == {"fail": 1}
    assert one([0.25], [0.25 * (1 + 1e-5)], "float32").counts == {"fail": 1}
    # while 4 eps of the scale (a few roundings) is fine in every dtype
    for dtype in DTYPES:
        assert one([0.25], [0.25 + 4 * cmp.EPS[dtype] * 0.25], dtype).counts == {"pass": 1}


# --- ulp ----------------------------------------------------------------------------------

def test_ulp_values():
    assert ulp(np.array([1.0]), "float64")[0] == 2.0 ** -52
    assert ulp(np.array([1.5, 2.0, -2.0]), "float64").tolist() == [2.0 ** -52, 2.0 ** -51, 2.0 ** -51]
    assert ulp(np.array([1.0]), "float16")[0] == 2.0 ** -10
    assert ulp(np.array([1.0]), "bfloat16")[0] == 2.0 ** -7
    # below the normal range: the subnormal spacing
    assert ulp(np.array([1e-7]), "float16")[0] == 2.0 ** -24
    assert ulp(np.array([1e-40]), "float32")[0] == 2.0 ** -149
    assert ulp(np.array([5e-324]), "float64")[0] == 2.0 ** -1074


def test_ulp_at_zero_is_the_subnormal_spacing():
    assert ulp(np.array([0.0]), "float64")[0] == 2.0 ** -1074
    assert ulp(np.array([0.0]), "float16")[0] == 2.0 ** -24
    assert errors_at(0.0, 5e-324, "float64")[2] == 1.0


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(DTYPES), st.floats(allow_nan=False, allow_infinity=False))
def test_ulp_is_the_distance_to_the_next_value_up(dtype, value):
    t = torch.tensor(abs(value), dtype=torch.float64).to(getattr(torch, dtype))
    if not torch.isfinite(t) or t == torch.finfo(t.dtype).max or t == 0:  # 0: tested above
        return
    mantissa, _ = math.frexp(t.double().item())
    if dtype == "float64" and mantissa > 1 - 1e-12:  # just below a power of two: tested below
        return
    spacing = (torch.nextafter(t, torch.tensor(float("inf"), dtype=t.dtype)) - t).double().item()
    assert ulp(np.array([t.double().item()]), dtype)[0] == spacing


def test_ulp_just_below_a_power_of_two():
    below = np.nextafter(2.0 ** 49, 0.0)
    assert ulp(np.array([below]), "float64")[0] == 2.0 ** (48 - 52)
    assert ulp(np.array([np.nextafter(1.0, 0.0)]), "float64")[0] == 2.0 ** -53


def test_errors_at():
    a, r, u = errors_at(1.0, 1.0 + 2 ** -51, "float64")
    assert (a, r, u) == (2 ** -51, 2 ** -51, 2.0)
    assert errors_at(0.0, 0.0, "float32") == (0.0, 0.0, 0.0)
    a, r, u = errors_at(0.0, 1e-3, "float32")
    assert a == 1e-3 and r == float("inf") and u > 0


def test_error_maxima_and_worst_entry():
    c = one([[1.0, 2.0], [4.0, 8.0]], [[1.0, 2.0 + 1e-9], [4.0 + 1e-12, 8.0]])
    assert c.max_abs == pytest.approx(1e-9) and c.max_rel == pytest.approx(0.5e-9)
    assert c.max_ulp == pytest.approx(1e-9 / 2 ** -51)
    assert c.worst == (0, 1) and c.worst_ratio > 1
    assert c.compared == 2 and list(c.point_class) == ["fail", "fail"]


# --- the point classes ---------------------------------------------------------------------

def test_each_class():
    ref = np.array([[1.0], [1.0], [np.inf], [np.nan], [1e400], [-1e400], [1e400], [1.0]])
    kinds = np.array([[FINITE], [FINITE], [POS_INF], [UNDEFINED], [FINITE], [FINITE], [FINITE], [FINITE]], np.int8)
    got = np.array([[1.0], [1.5], [np.inf], [0.0], [np.inf], [-np.inf], [np.finfo(float).max], [np.nan]])
    c = compare(ref, kinds, got, "float64")
    assert list(c.point_class) == ["pass", "fail", "singular", "undefined", "overflow", "overflow", "fail",
                                   "unstable"]
    assert c.counts == {"pass": 1, "fail": 2, "singular": 1, "undefined": 1, "overflow": 2, "unstable": 1}
    assert c.compared == 2  # only the finite exact values torch answered finitely are compared


def test_overflow_is_judged_against_the_dtype_range():
    # exp(12) = 162754.8 is beyond float16's 65504: torch's inf is right there, not in float32
    assert one([162754.79], [np.inf], "float16").counts == {"overflow": 1}
    assert one([162754.79], [np.inf], "float32").counts == {"unstable": 1}
    assert one([162754.79], [-np.inf], "float16").counts == {"fail": 1}  # the wrong infinity


def test_nan_where_the_exact_value_is_infinite_is_not_compared():
    assert one([np.inf], [np.nan], kinds=[POS_INF]).counts == {"singular": 1}
    assert one([-np.inf], [0.0], kinds=[NEG_INF]).counts == {"singular": 1}


def test_a_point_takes_the_worst_class_of_its_entries():
    c = one([[1.0, 1.0, 1.0]], [[1.0, np.nan, 2.0]])
    assert c.counts == {"fail": 1}
    c = one([[1.0, np.inf]], [[1.0, np.inf]], kinds=[[FINITE, POS_INF]])
    assert c.counts == {"singular": 1}


def test_an_unstable_point_is_the_one_shown():
    c = one([[1.0], [1.0]], [[1.5], [np.nan]])
    assert c.worst == (1, 0)
    assert c.examples["unstable"] == [(1, 0)] and c.examples["fail"] == [(0, 0)]


def test_kink_intervals():
    ref, kinds = np.array([[0.5]]), np.array([[FINITE]], np.int8)
    inside = np.array([[[0.0, 1.0]]])
    assert compare(ref, kinds, np.array([[0.0]]), "float64", intervals=inside).counts == {"kink": 1}
    assert compare(ref, kinds, np.array([[1.0]]), "float64", intervals=inside).counts == {"kink": 1}
    assert compare(ref, kinds, np.array([[1.2]]), "float64", intervals=inside).counts == {"fail": 1}
    # NaN where the limits are finite is the NaN-gradient bug itself: a failure, shown as the worst point
    nan = compare(ref, kinds, np.array([[np.nan]]), "float64", intervals=inside)
    assert nan.counts == {"fail": 1} and nan.worst == (0, 0) and nan.worst_ratio == float("inf")
    # one limit (a removable singularity): the limit is the reference, a pass is a plain pass
    limit = np.array([[[0.25, 0.25]]])
    assert compare(ref, kinds, np.array([[0.25]]), "float64", intervals=limit).counts == {"pass": 1}
    assert compare(ref, kinds, np.array([[0.5]]), "float64", intervals=limit).counts == {"fail": 1}
    unused = np.full((1, 1, 2), np.nan)
    assert compare(ref, kinds, np.array([[0.5]]), "float64", intervals=unused).counts == {"pass": 1}


def test_empty_comparison():
    c = compare(np.zeros((0, 2)), np.zeros((0, 2), np.int8), np.zeros((0, 2)), "float32")
    assert c.counts == {} and c.compared == 0 and c.worst is None


# --- result status -------------------------------------------------------------------------

@pytest.mark.parametrize("counts, status", [
    ({}, "pass"),
    ({"pass": 3}, "pass"),
    ({"pass": 3, "overflow": 1}, "pass"),
    ({"pass": 3, "kink": 1}, "kink"),
    ({"pass": 3, "singular": 1}, "singular"),
    ({"pass": 3, "undefined": 1}, "singular"),
    ({"kink": 1, "singular": 1}, "singular"),
    ({"pass": 3, "unstable": 1}, "unstable"),
    ({"unstable": 1, "singular": 1}, "unstable"),
    ({"fail": 1, "unstable": 5}, "fail"),
    ({"fail": 1, "pass": 100}, "fail"),
    ({"raised": 1, "pass": 2}, "error"),
    ({"raised": 1, "fail": 2, "undefined": 1}, "error"),
])
def test_status_of(counts, status):
    assert status_of(counts) == status


def test_classes_are_ordered_by_severity():
    assert cmp.CLASSES[0] == "pass" and cmp.CLASSES[-2:] == ("fail", "raised")
    assert cmp.CLASSES.index("unstable") > cmp.CLASSES.index("singular") > cmp.CLASSES.index("kink")


def test_block_by_block_comparison_equals_one_pass():
    from diffcheck import compare as cmp
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(3000, 700))
    got = ref * (1 + rng.normal(size=ref.shape) * 1e-16)
    got[1234, 5] = np.nan
    got[2500, 3] += 1e-3
    kinds = np.zeros(ref.shape, dtype=np.int8)
    kinds[10, 10] = cmp.POS_INF
    blocks, single = cmp.compare(ref, kinds, got, "float64"), cmp.compare_rows(ref, kinds, got, "float64")
    for field in ("counts", "compared", "max_abs", "max_rel", "max_ulp", "worst", "worst_ratio", "examples", "policy"):
        assert getattr(blocks, field) == getattr(single, field), field
    assert (blocks.point_class == single.point_class).all()


# --- the plain fast path is the general comparison ------------------------------------------

def _same(a: cmp.Comparison, b: cmp.Comparison) -> None:
    assert list(a.point_class) == list(b.point_class)
    assert a.counts == b.counts and a.policy == b.policy and a.compared == b.compared
    assert (a.max_abs, a.max_rel, a.max_ulp) == (b.max_abs, b.max_rel, b.max_ulp)
    assert a.worst == b.worst and a.worst_ratio == b.worst_ratio
    assert a.examples == b.examples


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["float64", "float32", "float16", "bfloat16"]),
       st.sampled_from([None, Tolerance(1e-3, 1e-5)]), st.integers(1, 40), st.integers(1, 30))
def test_the_plain_path_is_the_general_comparison(seed, dtype, override, points, entries):
    rng = np.random.default_rng(seed)
    ref = rng.standard_normal((points, entries)) * 10.0 ** rng.integers(-30, 4)
    ref[rng.random(ref.shape) < 0.1] = 0.0                           # exact zeros
    noise = rng.standard_normal(ref.shape) * cmp.EPS[dtype] * rng.choice([0.5, 3, 1e3], size=ref.shape)
    got = ref * (1 + noise) + (rng.random(ref.shape) < 0.05) * cmp.EPS[dtype]  # some entries off
    kinds = np.zeros(ref.shape, dtype=np.int8)
    assert cmp._plain(ref, kinds, got, dtype, override, None)
    # the general path, whole, for the same inputs
    _same(cmp._compare_plain(ref, got, dtype, override, 0.5),
          cmp.compare_rows(ref, kinds, got, dtype, override, None, 0.5))


def test_the_plain_path_in_blocks(monkeypatch):
    monkeypatch.setattr(cmp, "BLOCK_CELLS", 64)
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((50, 10))
    got = ref + rng.standard_normal(ref.shape) * 1e-15
    got[7, 3] += 1e-9
    got[31, 0] -= 1e-8
    kinds = np.zeros(ref.shape, dtype=np.int8)
    a = cmp._compare_plain(ref, got, "float64", None, 0.0)
    _same(a, cmp.compare_rows(ref, kinds, got, "float64"))
    assert a.counts == {"pass": 48, "fail": 2} and a.examples["fail"] == [(7, 3), (31, 0)] and a.worst == (31, 0)


@pytest.mark.parametrize("change", ["nan", "inf", "kind", "beyond", "kink", "zero tolerance"])
def test_anything_but_pass_or_fail_takes_the_general_path(change):
    ref = np.ones((3, 2))
    got = ref.copy()
    kinds = np.zeros(ref.shape, dtype=np.int8)
    intervals, override = None, None
    if change == "nan":
        got[1, 1] = np.nan
    elif change == "inf":
        got[0, 0] = np.inf
    elif change == "kind":
        kinds[2, 0] = UNDEFINED
    elif change == "beyond":
        ref[0, 1] = 1e300
    elif change == "kink":
        intervals = np.full(ref.shape + (2,), np.nan)
        intervals[0, 0] = (0.0, 1.0)
    else:
        override = Tolerance(0.0, 0.0)
    assert not cmp._plain(ref, kinds, got, "float32", override, intervals)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["float64", "float32", "float16"]),
       st.sampled_from([None, Tolerance(1e-3, 1e-5)]), st.integers(1, 40), st.integers(1, 12),
       st.lists(st.integers(1, 9), min_size=1, max_size=12))
def test_the_stream_is_the_plain_path_whatever_the_blocks(seed, dtype, override, points, entries, sizes):
    """torch's values fed a block at a time, in blocks of any sizes, give the comparison of
    the whole: the worst point, its torch value and the first failing examples too."""
    rng = np.random.default_rng(seed)
    ref = rng.standard_normal((points, entries)) * 10.0 ** rng.integers(-30, 4)
    ref[rng.random(ref.shape) < 0.1] = 0.0
    got = ref * (1 + rng.standard_normal(ref.shape) * cmp.EPS[dtype] * rng.choice([0.5, 3, 1e3], size=ref.shape))
    whole = cmp._compare_plain(ref, got, dtype, override, 0.5)
    stream = cmp.PlainStream(ref, dtype, override, 0.5)
    start, k = 0, 0
    while start < points:
        size = sizes[k % len(sizes)]
        assert stream.add(start, got[start:start + size])
        start, k = start + size, k + 1
    streamed = stream.result()
    _same(streamed, whole)
    assert streamed.worst_got == got[streamed.worst]


def test_the_stream_declines_a_block_torch_did_not_finish():
    ref = np.ones((4, 3))
    got = ref.copy()
    got[2, 1] = np.nan
    stream = cmp.PlainStream(ref, "float64", None, 0.0)
    assert stream.add(0, got[:2]) is True
    assert stream.add(2, got[2:]) is False


def test_conditioning_grants_what_the_formula_explains_and_says_so():
    from diffcheck.pipeline import _conditioning_hint
    ref, kinds = np.array([[1e-6, 0.25]]), np.zeros((1, 2), np.int8)
    u = cmp.EPS["float64"] / 2
    k = np.array([[1e3, 0.25]])                      # the first entry cancels 1e9-fold
    cond = lambda rows: (k[rows], np.full(len(rows), np.inf))  # noqa: E731
    within = compare(ref, kinds, np.array([[1e-6 + 1.5 * u * 1e3, 0.25]]), "float64", conditioning=cond)
    assert within.counts == {"pass": 1}
    beyond = compare(ref, kinds, np.array([[1e-6 + 5 * u * 1e3, 0.25]]), "float64", conditioning=cond)
    assert beyond.counts == {"fail": 1}
    assert beyond.worst_conditioning == pytest.approx(cmp.CONDITIONING * u * 1e3)
    assert beyond.worst_allowed == pytest.approx(beyond.worst_conditioning)
    rtol, atol = beyond.accept
    assert atol >= 5 * u * 1e3 and rtol == beyond.policy.rtol
    hint = _conditioning_hint(beyond, "float64")
    assert "conditioning explains" in hint and "tolerance: {float64: {rtol:" in hint
    # a wrong value far beyond the conditioning: no hint
    wrong = compare(ref, kinds, np.array([[2e-6, 0.25]]), "float64", conditioning=cond)
    assert wrong.counts == {"fail": 1} and _conditioning_hint(wrong, "float64") is None


def test_an_underflowing_intermediate_is_granted_its_subnormal_spacing():
    ref, kinds = np.array([[-7.0e-7]]), np.zeros((1, 1), np.int8)
    got = np.array([[-1.0e-6]])                       # exp(-17) is subnormal in float16
    cond = lambda rows: (np.zeros((len(rows), 1)), np.full(len(rows), 4.1e-8))  # noqa: E731
    assert compare(ref, kinds, got, "float16").counts == {"fail": 1}
    assert compare(ref, kinds, got, "float16", conditioning=cond).counts == {"pass": 1}


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_conditioning_counts_a_loop_of_additions(dtype):
    """K of a sum of n terms covers the summation order of a loop (n − 1 roundings in a chain,
    error up to ~√n·u·Σ|x|), not only torch.sum's pairwise log₂ n: the measured error of a
    loop-summed 1000-term sum stays within CONDITIONING·u·K."""
    import sympy as sp

    from diffcheck.reference import Evaluator
    from diffcheck.reference.extended import sum_roundings

    n = 1000
    xs = sp.symbols(f"x0:{n}")
    ev = Evaluator([sp.Add(*xs)], xs)
    rng = np.random.default_rng(0)
    u = cmp.EPS[dtype] / 2
    worst = 0.0
    for lo in (0.0, -1.0):
        for _ in range(5):
            x = torch.tensor(rng.uniform(lo, 1.0, n)).to(getattr(torch, dtype))
            s = x[0]
            for i in range(1, n):
                s = s + x[i]
            row = x.double().numpy()[None]
            k = ev.rounding_scale(row)[0, 0]
            err = abs(float(s) - math.fsum(row[0]))
            assert err <= cmp.CONDITIONING * u * k
            worst = max(worst, err / (u * np.abs(row).sum()))
    assert worst > math.ceil(math.log2(n))  # pairwise counting alone would not have covered it
    assert sum_roundings(2) == 1 and sum_roundings(3) == 2 and sum_roundings(n) == pytest.approx(math.sqrt(n))


def test_a_factorized_matrix_grants_its_condition_number_and_no_more():
    """torch.det's Hessian by .backward() at cond(A) = 78: 64 u on an entry that is exactly 0
    (the exact Hessian is constant, K = 0). u·cond(A) covers it; a singular matrix, a matrix
    singular in the dtype, a 1e-6 error and an entry that does not go through A are not covered
    (compare.FACTORIZATION)."""
    u = cmp.EPS["float64"] / 2
    ref, kinds = np.array([[0.0, 1.0, -1.0, 0.0]]), np.zeros((1, 4), np.int8)
    got = np.array([[64 * u, 1.0, -1.0, 0.0]])

    def cond(kappa, through=(True, True, True, True), size=1.0):
        entries = np.where(np.array(through), kappa, 0.0)[None, :]
        sizes = np.full((1, 4), size)
        return lambda rows: (np.zeros((len(rows), 4)), np.full(len(rows), np.inf),
                             (entries[np.zeros(len(rows), int)], sizes[np.zeros(len(rows), int)]))
    plain = lambda rows: (np.zeros((len(rows), 4)), np.full(len(rows), np.inf))  # noqa: E731
    assert compare(ref, kinds, got, "float64", conditioning=plain).counts == {"fail": 1}
    judged = compare(ref, kinds, got, "float64", conditioning=cond(78.0))
    assert judged.counts == {"pass": 1}
    for kappa in (np.inf, 2.0 / u, 4.0):  # singular; singular in float64; too well conditioned for 64 u
        assert compare(ref, kinds, got, "float64", conditioning=cond(kappa)).counts == {"fail": 1}, kappa
    # the failing entry does not go through the factorized matrix: nothing granted to it
    assert compare(ref, kinds, got, "float64", conditioning=cond(78.0, (False, True, True, True))).counts == {"fail": 1}
    wrong = compare(ref, kinds, np.array([[1e-6, 1.0, -1.0, 0.0]]), "float64", conditioning=cond(4e3))
    assert wrong.counts == {"fail": 1} and wrong.worst_factorized == 4e3
    # what reaches the entries through the factorized op is small (a large term beside det(A)
    # that shares its inputs): the grant follows that, not the point's largest exact value
    assert compare(ref, kinds, got, "float64", conditioning=cond(78.0, size=1e-3)).counts == {"fail": 1}


def test_beyond_the_decidable_condition_a_point_is_not_compared_rather_than_passed():
    """Where 8·u·cond(A) exceeds √eps (torch's own rounding may take half the digits), a point
    that fails is not compared (counted with the singular points, and said why); one that
    passes the default tolerance passes."""
    u = cmp.EPS["float32"] / 2
    ref, kinds = np.array([[0.0, 1.0], [0.5, 1.0]]), np.zeros((2, 2), np.int8)
    got = np.array([[2e-3, 1.0], [0.5, 1.0]])
    kappa = 1e4  # 8·u·1e4 = 4.8e-3 > √eps = 3.5e-4
    entries = np.full((2, 2), kappa)

    def conditioning(rows):
        return np.zeros((len(rows), 2)), np.full(len(rows), np.inf), (entries[rows], np.ones((len(rows), 2)))
    judged = compare(ref, kinds, got, "float32", conditioning=conditioning)
    assert judged.counts == {"singular": 1, "pass": 1} and judged.undecided == 1
    assert judged.undecided_condition == kappa and cmp.status_of(judged.counts) == "singular"
    assert 8 * u * kappa > np.sqrt(cmp.EPS["float32"])
    # an error beyond what rounding there could make (8·u·cond·M = 4.8e-3) still fails
    far = compare(ref, kinds, np.array([[0.3, 1.0], [0.5, 1.0]]), "float32", conditioning=conditioning)
    assert far.counts == {"fail": 1, "pass": 1} and not far.undecided
    # a NaN where the limit is finite (the NaN-gradient bug) is never excused
    intervals = np.full((2, 2, 2), np.nan)
    intervals[0, 0] = (0.0, 0.0)
    nan = compare(ref, kinds, np.array([[np.nan, 1.0], [0.5, 1.0]]), "float32", intervals=intervals,
                  conditioning=conditioning)
    assert nan.counts.get("fail") == 1 and not nan.undecided


def test_the_torch_side_finds_the_matrices_its_code_factorizes():
    """Torchside.factorization_condition runs the torch code under a TorchFunctionMode, which
    sees every call of torch's Python API (the case's expression, or a user's own function),
    and finds which input entries each factorized matrix depends on: none for a constant."""
    from diffcheck.autograd import Torchside
    from diffcheck.loader import load_text
    from diffcheck.points import PointSet
    from diffcheck.symbolic import compile_case
    text = """
cases:
  - name: t.det
    variables: {A: {shape: [2, 2], domain: [-1, 1]}}
    expr: det(A)
  - name: t.partly
    variables: {A: {shape: [2, 2], domain: [-1, 1]}, y: {}}
    expr: det(A) + y * y
  - name: t.constant
    variables: {y: {}}
    constants: {C: [[1, 1], [1, 1.001]]}
    expr: y * det(C)
"""
    (det, partly, constant), errors = load_text(text, "t.yaml")
    assert not errors, errors
    values = {"A": np.array([[[1.0, 1.0], [1.0, 1.001]], [[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]])}
    kappa, size = Torchside(compile_case(det), "float64", PointSet(values, 3, 0)).factorization_condition(np.arange(3))
    assert kappa.shape == size.shape == (3, 4)
    assert kappa[0] == pytest.approx(np.linalg.cond(values["A"][0]))
    assert kappa[1] == pytest.approx(np.ones(4)) and (kappa[2] > 1e15).all()
    # what reaches the gradient through det: the adjugate (identity: [1, 0, 0, 1])
    assert size[1] == pytest.approx([1.0, 0.0, 0.0, 1.0])
    both = dict(values, y=np.array([0.5, 0.5, 0.5]))
    kappa, size = Torchside(compile_case(partly), "float64", PointSet(both, 3, 0)).factorization_condition(
        np.arange(3), order=2)
    assert kappa.shape == (3, 5) and (kappa[:, :4] > 0).all() and (kappa[:, 4] == 0).all()
    assert size[:, :4] == pytest.approx(np.ones((3, 4))) and not size[:, 4].any()  # det's Hessian: ±1; y²: not through
    kappa, _ = Torchside(compile_case(constant), "float64", PointSet({"y": np.array([0.5])}, 1, 0)
                         ).factorization_condition(np.arange(1))
    assert not kappa.any()
