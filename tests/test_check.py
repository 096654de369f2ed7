"""check_case on Case objects: torch's correct kernels pass, known-broken ones fail.

A correct kernel passes in every dtype and every mode; a broken one fails in every dtype
where the policy can see the bug (the bug is larger than the tolerance there: see
diffcheck.compare). The exact reference is correct to float64 even where float64 itself
cannot compute the formula (σ'(-800), softmax at logits ±1000).
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from conftest import make_case

from diffcheck import compare as cmp
from diffcheck.case import Check
from diffcheck.pipeline import CheckOptions, check_case
from diffcheck.errors import CaseFileError
from diffcheck.reference import Evaluator
from diffcheck.results import FAILING
from diffcheck.symbolic import compile_case

DTYPES = ["float64", "float32", "float16", "bfloat16"]
MODES = ["reverse", "backward", "forward"]


def results(case, **options):
    return check_case(case, CheckOptions(**options) if options else None).results


def statuses(case) -> dict[tuple[str, str | None, str], str]:
    """(check, mode, dtype) -> status."""
    return {(r.check, r.mode, r.dtype): r.status for r in results(case)}


def by_dtype(rs, check_prefix: str = "") -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in rs:
        if r.check != "value" and r.check.startswith(check_prefix):
            out.setdefault(r.dtype, set()).add(r.status)
    return out


# --- torch's correct kernels pass everywhere ----------------------------------------------

VEC4 = {"x": {"shape": [4]}}
KERNELS = [
    # (name, expr, variables, extra keys)
    ("sigmoid", "sigmoid(x)", {"x": {"domain": [-30, 30]}}, {}),
    ("tanh", "tanh(x)", {"x": {}}, {}),
    ("relu_away_from_0", "relu(x)", {"x": {"domain": [0.1, 10]}}, {}),
    ("relu_negative_side", "relu(x)", {"x": {"domain": [-10, -0.1]}}, {}),
    ("softplus", "softplus(x)", {"x": {"domain": [-15, 15]}}, {}),
    ("gelu", "gelu(x)", {"x": {}}, {}),
    ("silu", "silu(x)", {"x": {}}, {}),
    ("elu", "elu(x)", {"x": {}}, {}),
    ("exp", "exp(x)", {"x": {}}, {}),
    ("log", "log(x)", {"x": {"domain": [0.01, 100]}}, {}),
    ("sqrt", "sqrt(x)", {"x": {"domain": [0.01, 100]}}, {}),
    ("softmax_jacobian", "softmax(x)", VEC4, {}),
    ("log_softmax_jacobian", "log_softmax(x)", VEC4, {}),
    ("logsumexp", "logsumexp(x)", VEC4, {}),
    ("mse", "mse(a, b)", {"a": {"shape": [4]}, "b": {"shape": [4]}}, {}),
    ("sse", "sse(a, b)", {"a": {"shape": [4]}, "b": {"shape": [4]}}, {}),
    ("cross_entropy_indices", "cross_entropy(x, t)", {"x": {"shape": [2, 3]}}, {"constants": {"t": [0, 2]}}),
    ("cross_entropy_probabilities", "cross_entropy(x, p)", {"x": {"shape": [3]}},
     {"constants": {"p": [0.2, 0.3, 0.5]}}),
]


@pytest.mark.parametrize("name, expr, variables, extra", KERNELS, ids=[k[0] for k in KERNELS])
def test_correct_kernel_passes_in_every_dtype_and_mode(name, expr, variables, extra):
    case = make_case(name, expr, variables, dtypes=DTYPES, modes=MODES, samples=24, **extra)
    got = statuses(case)
    checks = {c for c, _, _ in got} - {"value"}
    assert len(checks) == 1
    assert set(got) == {("value", None, d) for d in DTYPES} | {(c, m, d) for c in checks for m in MODES for d in DTYPES}
    bad = {k: s for k, s in got.items() if s != "pass"}
    assert not bad


def test_relu_across_its_kink_is_a_kink_not_a_failure():
    rs = results(make_case("relu", "relu(x)", dtypes=DTYPES, modes=MODES))
    assert {r.status for r in rs if r.check == "value"} == {"pass"}
    gradients = [r for r in rs if r.check == "gradient"]
    assert {r.status for r in gradients} == {"kink"}
    assert all(r.counts.get("kink") == 1 and r.details.kinks[0].point == {"x": 0.0} for r in gradients)


@pytest.mark.parametrize("expr", ["sigmoid(x)", "tanh(x)"])
def test_every_finite_float16_input(expr):
    case = make_case(f"{expr}_all", expr, {"x": {"domain": [-65504, 65504]}}, samples="all",
                     dtypes=["float16"], modes=MODES)
    rs = results(case)
    assert len(rs) == 4 and {r.status for r in rs} == {"pass"}
    assert {r.points for r in rs} == {63487}  # 63488 finite float16 values, with +0 and -0 one point


# --- known-broken implementations fail ---------------------------------------------------

def _assert_fails_where_detectable(case, detectable: dict[str, bool], check: str = ""):
    rs = results(case)
    seen = by_dtype(rs, check)
    for dtype, visible in detectable.items():
        if visible:
            assert seen[dtype] == {"fail"}, (dtype, seen[dtype])
        else:
            assert not seen[dtype] & FAILING, (dtype, seen[dtype])
    failing = [r for r in rs if r.status == "fail"]
    assert failing
    for r in failing:
        w = r.worst_point
        assert w is not None and w.reference != w.autograd and w.formula
        assert w.abs_error > 0 and w.ulp_error > 0
        assert "beyond tolerance" in r.message
    return rs


def test_silu_with_a_detached_sigmoid_fails_in_every_dtype():
    case = make_case("silu_detached", "x * sigmoid(x)", torch="torch.Tensor.detach(torch.sigmoid(x)) * x",
                     dtypes=DTYPES, modes=MODES)
    rs = _assert_fails_where_detectable(case, dict.fromkeys(DTYPES, True))
    assert {r.status for r in rs if r.check == "value"} == {"pass"}  # the value is right: only autograd sees it


def test_leaky_relu_posing_as_relu():
    # the derivative is off by the slope 0.01 where the exact one is 0; the policy allows
    # b·eps·S there (S = 1): visible unless 8·eps ≥ 0.01, i.e. in bfloat16 (8·2**-7 = 0.0625)
    case = make_case("leaky_as_relu", "relu(x)", torch="F.leaky_relu(x, 0.01)", dtypes=DTYPES, modes=MODES)
    _assert_fails_where_detectable(case, {d: 0.01 > cmp.DEFAULT_B * cmp.EPS[d] for d in DTYPES})


def test_softmax_with_a_detached_sum_fails_in_every_dtype():
    case = make_case("softmax_detached_sum", "softmax(x)", VEC4,
                     torch="torch.exp(x) / torch.Tensor.detach(torch.sum(torch.exp(x)))",
                     dtypes=DTYPES, modes=MODES)
    _assert_fails_where_detectable(case, dict.fromkeys(DTYPES, True))


def test_a_derivative_biased_by_1e_6():
    # σ' + 1e-6 against S = 1/4: beyond (a + b)·eps·S in float64 and float32 only
    case = make_case("biased", "sigmoid(x)", torch="torch.sigmoid(x) + 1e-6 * x", dtypes=DTYPES, modes=MODES)
    _assert_fails_where_detectable(case, {d: 1e-6 > (cmp.DEFAULT_A + cmp.DEFAULT_B) * cmp.EPS[d] * 0.25
                                          for d in DTYPES})


def test_a_two_percent_error_in_a_float16_derivative():
    case = make_case("two_percent", "sigmoid(x)",
                     torch="torch.sigmoid(x) + 0.02*(torch.sigmoid(x) - torch.Tensor.detach(torch.sigmoid(x)))",
                     dtypes=DTYPES, modes=MODES)
    rs = _assert_fails_where_detectable(case, {"float64": True, "float32": True, "float16": True})
    assert {r.status for r in rs if r.check == "value"} == {"pass"}


def test_naive_softmax_at_logits_1000_is_unstable():
    case = make_case("naive_softmax", "softmax(x)", {"x": {"shape": [2]}}, torch="torch.exp(x)/torch.sum(torch.exp(x))",
                     points=[{"x": [1000, -1000]}], samples=0, dtypes=["float64", "float32"], modes=MODES)
    got = statuses(case)
    assert set(got.values()) == {"unstable"}
    assert len(got) == 2 * 4


def test_naive_sigmoid_gradient_at_minus_800_is_unstable():
    case = make_case("naive_sigmoid", "sigmoid(x)", torch="1/(1+torch.exp(-x))", points=[{"x": -800}], samples=0,
                     dtypes=["float64"], modes=MODES)
    got = statuses(case)
    assert got.pop(("value", None, "float64")) == "pass"  # 1/(1+inf) = 0 is σ(-800) rounded
    assert set(got.values()) == {"unstable"}


def test_torch_softmax_at_logits_1000_passes():
    case = make_case("softmax_1000", "softmax(x)", {"x": {"shape": [2]}}, samples=0, dtypes=["float64", "float32"],
                     modes=MODES, points=[{"x": [1000, -1000]}, {"x": [1000, 999]}, {"x": [-1000, -1001]}])
    assert set(statuses(case).values()) == {"pass"}


# --- the exact reference -----------------------------------------------------------------

def _reference(case, check: Check, rows) -> tuple[np.ndarray, np.ndarray]:
    compiled = compile_case(case)
    target = compiled.targets(check)[0]
    return Evaluator(target.exprs, compiled.symbols)(np.asarray(rows, dtype=float))


def _rounded(value: mpmath.mpf) -> float:
    return float(mpmath.nstr(value, 50))  # Python rounds a decimal string correctly, subnormals too


def test_reference_sigmoid_derivative_in_the_far_tail():
    xs = [-800.0, -745.0, -740.0, -720.0, -700.0, 700.0, 800.0]
    values, kinds = _reference(make_case("s", "sigmoid(x)"), Check("gradient"), [[x] for x in xs])
    assert (kinds == cmp.FINITE).all()
    with mpmath.workdps(80):
        want = [_rounded(mpmath.exp(-mpmath.mpf(x)) / (1 + mpmath.exp(-mpmath.mpf(x))) ** 2) for x in xs]
    assert values[:, 0].tolist() == want
    assert want[0] == 0.0 and 0.0 < want[2] < 2.3e-308  # e^-800 rounds to 0; e^-740 is subnormal


def test_reference_softmax_jacobian_at_logits_1000():
    rows = [[1000.0, -1000.0], [1000.0, 999.0], [-1000.0, -1001.0]]
    values, kinds = _reference(make_case("sm", "softmax(x)", {"x": {"shape": [2]}}), Check("jacobian"), rows)
    assert (kinds == cmp.FINITE).all() and np.isfinite(values).all()
    with mpmath.workdps(80):
        for row, got in zip(rows, values):
            e = [mpmath.exp(mpmath.mpf(v)) for v in row]
            p = [t / sum(e) for t in e]
            want = [_rounded((p[i] if i == j else 0) - p[i] * p[j]) for i in range(2) for j in range(2)]
            assert got.tolist() == want


def test_reference_survives_catastrophic_cancellation():
    # (1 + 1e-20·x) - 1 at x = 1: float64 computes 0; the exact value is 1e-20 (as written)
    values, _ = _reference(make_case("c", "(1 + 1e-20 * x) - 1"), Check("gradient"), [[1.0]])
    assert values[0, 0] == 1e-20


# --- the other checks ----------------------------------------------------------------------

def test_hessian_in_every_mode():
    case = make_case("hessian", "x**3 * y + sin(x * y)", {"x": {}, "y": {}}, check=["hessian"],
                     dtypes=["float64", "float32"], modes=MODES, samples=16)
    got = statuses(case)
    assert {c for c, _, _ in got} == {"value", "hessian"} and set(got.values()) == {"pass"}


def test_hessian_of_a_vector_variable_has_every_entry():
    case = make_case("hessian_vec", "sum(x**3)", {"x": {"shape": [3]}}, check=["hessian"], dtypes=["float64"],
                     samples=4)
    rs = results(case)
    hessian = [r for r in rs if r.check == "hessian"]
    assert {r.status for r in hessian} == {"pass"}
    assert len(compile_case(case).targets(Check("hessian", 2))[0].exprs) == 9


@pytest.mark.parametrize("expr", ["sigmoid(x)", "sin(x) * exp(x / 4)", "x**5"])
def test_third_derivative(expr):
    case = make_case("d3", expr, check=[{"derivative": 3}], dtypes=["float64", "float32"], modes=MODES, samples=16)
    got = statuses(case)
    assert ("derivative3", "backward", "float32") in got and set(got.values()) == {"pass"}


def test_third_derivative_catches_a_cubic_bias():
    case = make_case("d3_bias", "sigmoid(x)", torch="torch.sigmoid(x) + 1e-3 * x**3", check=[{"derivative": 3}],
                     dtypes=["float64"], modes=MODES, samples=16)
    got = statuses(case)
    assert {got[("derivative3", m, "float64")] for m in MODES} == {"fail"}


LET = {"z": "2 * x", "u": "sin(z)"}


def test_intermediates():
    case = make_case("inter", "sigmoid(u) * z", let=LET, check=["intermediates", "gradient"],
                     dtypes=["float64", "float32"], modes=MODES, samples=16)
    got = statuses(case)
    assert {c for c, _, _ in got} == {"value", "intermediates:z", "intermediates:u", "gradient"}
    assert {m for c, m, _ in got if c.startswith("intermediates")} == {"backward"}
    assert set(got.values()) == {"pass"}


def test_intermediates_locate_a_detached_factor():
    # z's direct factor is detached: d out/dz loses sigmoid(u), d out/du is untouched
    case = make_case("inter_broken", "sigmoid(u) * z", let=LET, check=["intermediates"],
                     torch="torch.sigmoid(u) * torch.Tensor.detach(z)", dtypes=["float64"], samples=16)
    got = statuses(case)
    assert got[("intermediates:z", "backward", "float64")] == "fail"
    assert got[("intermediates:u", "backward", "float64")] == "pass"


def test_intermediates_of_a_step_torch_never_uses():
    case = make_case("inter_unused", "sigmoid(u) * z", let=LET, check=["intermediates"],
                     torch="torch.sigmoid(torch.Tensor.detach(u)) * z", dtypes=["float64"], samples=16)
    got = statuses(case)
    assert got[("intermediates:u", "backward", "float64")] == "not_differentiable"
    assert got[("intermediates:z", "backward", "float64")] == "fail"


# --- case-file errors ------------------------------------------------------------------------

@pytest.mark.parametrize("kw, says", [
    (dict(expr="softmax(x)", variables=VEC4, check=["gradient"]), "needs a scalar output"),
    (dict(expr="softmax(x)", variables=VEC4, check=["hessian"]), "needs a scalar output"),
    (dict(expr="x * y", variables={"x": {}, "y": {}}, check=[{"derivative": 2}]), "one scalar variable"),
    (dict(expr="sum(x)", variables=VEC4, check=[{"derivative": 2}]), "one scalar variable"),
    (dict(expr="sigmoid(x)", check=["intermediates"]), "needs `let` steps"),
    (dict(expr="sigmoid(x)", points=[{"x": [1.0, 2.0]}]), "has shape [2]"),
    (dict(expr="sum(x)", variables=VEC4, points=[{"x": [1.0, 2.0]}]), "has shape [2]"),
    (dict(expr="sum(x)", variables=VEC4, points=[{"x": [[1.0, 2.0, 3.0, 4.0]]}]), "has shape [1, 4]"),
    (dict(expr="sigmoid(x)", points=[{"y": 1.0}]), "missing ['x']"),
    (dict(expr="sigmoid(x)", points=[{"x": "one"}]), "not a number"),
    (dict(expr="sigmoid(x)", samples="all", dtypes=["float64"]), "16-bit dtypes only"),
    (dict(expr="sigmoid(x) + y"), "unknown name 'y'"),
    (dict(expr="sigmoid(x)", torch="torch.load('m.pt')"), "not allowed"),
])
def test_case_file_errors(kw, says):
    case = make_case("bad", kw.pop("expr"), kw.pop("variables", None), **kw)
    with pytest.raises(CaseFileError) as info:
        check_case(case)
    assert says in str(info.value)
    assert info.value.case == "bad"


def test_points_are_checked_with_the_samples():
    case = make_case("pts", "sigmoid(x)", points=[{"x": 0.5}, {"x": -2}], samples=3, dtypes=["float64"])
    assert {r.points for r in results(case)} == {5}


# --- xfail ---------------------------------------------------------------------------------

def test_xfail_turns_failures_into_xfail():
    case = make_case("xf", "x * sigmoid(x)", torch="torch.Tensor.detach(torch.sigmoid(x)) * x", xfail="known bug",
                     dtypes=["float64"], modes=MODES)
    report = check_case(case)
    got = {(r.check, r.mode): r for r in report.results}
    assert got[("value", None)].status == "pass"
    for mode in MODES:
        r = got[("gradient", mode)]
        assert r.status == "xfail" and r.original_status == "fail" and "known bug" in r.message
    assert report.status == "xfail"


def test_an_xfail_case_that_passes_is_an_xpass():
    case = make_case("xp", "sigmoid(x)", xfail="thought broken", dtypes=["float64"])
    report = check_case(case)
    assert {r.status for r in report.results} == {"xpass"}
    assert report.status == "fail"


def test_an_identically_zero_derivative_tolerates_rounding():
    # sum(softmax(x)) is the constant 1: torch's correct backward leaves ~1e-17 of rounding on a
    # derivative that is exactly 0, which must not fail for lack of a scale
    case = make_case("sum_softmax", "sum(softmax(x))", VEC4, dtypes=["float64", "float32"])
    assert {r.status for r in results(case)} == {"pass"}


# --- bugs found in files this suite does not own (see the reasons) ----------------------------

@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")
@pytest.mark.parametrize("expr, variables, torch_text", [
    ("sum(x)", {"x": {"shape": [3]}}, "x"),      # a vector for a scalar
    ("x", None, "(x, x)"),                         # a tuple for a scalar
])
def test_a_torch_key_of_the_wrong_shape_is_an_error_result(expr, variables, torch_text):
    case = make_case("wrong_shape", expr, variables, torch=torch_text, dtypes=["float64"])
    rs = results(case)
    assert {r.status for r in rs} == {"error"}


def test_samples_all_refuses_a_wide_dtype_given_for_the_run():
    case = make_case("all16", "sigmoid(x)", {"x": {"domain": [-1, 1]}}, samples="all", dtypes=["float16"])
    with pytest.raises(CaseFileError):
        results(case, dtypes=("float64",))




@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_device_path():
    from diffcheck.pipeline import CheckOptions, check_case as run_case
    case = make_case("cuda_sigmoid", "sigmoid(x)", dtypes=["float32"])
    report = run_case(case, CheckOptions(device="cuda"))
    assert {r.status for r in report.results} == {"pass"}


def test_a_block_of_points_owns_its_inputs():
    """torch's forward mode over a view of the whole batch builds tangents the size of the
    whole batch (125 MB for 64 of 1000 points of a 128-softmax): a block gets a copy."""
    from diffcheck.autograd import Torchside
    from diffcheck.points import draw
    from diffcheck.symbolic import compile_case

    case = make_case("blocks", "softmax(x)", {"x": {"shape": [8]}}, samples=50)
    side = Torchside(compile_case(case), "float64", draw(case, "float64"))
    part = side._part(10, 20)
    assert part.points.count == 10 and part.inputs[0].shape == (10, 8)
    assert part.inputs[0]._base is None
    assert part.inputs[0].untyped_storage().data_ptr() != side.inputs[0].untyped_storage().data_ptr()


# --- big derivatives compared block by block as torch computes them ------------------------

def _without_streaming(monkeypatch, case):
    from diffcheck import pipeline as check_module
    with monkeypatch.context() as m:
        m.setattr(check_module, "_streamed", lambda *a, **k: None)
        return [r.to_dict() for r in results(case)]


@pytest.mark.parametrize("name, expr, torch_impl, points", [
    ("softmax", "softmax(x)", None, None),
    ("detached", "softmax(x)", "torch.exp(x) / torch.Tensor.detach(torch.sum(torch.exp(x)))", None),
    # torch's naive softmax is NaN at logits of 1000: the block is declined, the general path classifies it
    ("naive", "softmax(x)", "torch.exp(x) / torch.sum(torch.exp(x))", [{"x": [1000, -1000, 0]}]),
])
def test_streamed_comparison_is_the_whole_one(monkeypatch, name, expr, torch_impl, points):
    from diffcheck import autograd
    monkeypatch.setattr(autograd, "CHUNK_CELLS", 20)  # 2 points of a 3-softmax Jacobian a block
    kw = {"torch": torch_impl} if torch_impl else {}
    case = make_case(name, expr, {"x": {"shape": [3], "domain": [-5, 5]}}, samples=9, dtypes=["float64", "float32"],
                     modes=["reverse", "forward"], points=points or [], **kw)
    calls = []
    from diffcheck import pipeline as check_module
    real = check_module._streamed
    monkeypatch.setattr(check_module, "_streamed", lambda *a, **k: calls.append(1) or real(*a, **k))
    streamed = [r.to_dict() for r in results(case)]
    assert calls  # the block-by-block path was taken
    for r in streamed:
        r.pop("seconds", None)
    whole = _without_streaming(monkeypatch, case)
    for r in whole:
        r.pop("seconds", None)
    assert streamed == whole
    statuses_seen = {r["status"] for r in streamed if r["check"] == "jacobian"}
    assert statuses_seen == {"softmax": {"pass"}, "detached": {"fail"}, "naive": {"unstable"}}[name]


def test_a_streamed_derivative_is_never_held_whole(monkeypatch):
    from diffcheck import autograd
    monkeypatch.setattr(autograd, "CHUNK_CELLS", 20)
    case = make_case("softmax", "softmax(x)", {"x": {"shape": [3]}}, samples=9, dtypes=["float64"], modes=["reverse"])
    compiled = compile_case(case)
    from diffcheck.points import draw
    side = autograd.Torchside(compiled, "float64", draw(case, "float64"))
    (target,) = compiled.targets(Check("jacobian"))
    blocks = []
    assert side.derivative(target, "reverse", consume=lambda s, g: blocks.append((s, g.shape)) or True) is True
    assert [s for s, _ in blocks] == list(range(0, 9, 2)) and all(shape[1] == 9 for _, shape in blocks)
    stopped = []
    assert side.derivative(target, "reverse", consume=lambda s, g: stopped.append(s) or s < 4) is False
    assert stopped == [0, 2, 4]


def test_a_kernel_torch_lacks_in_a_dtype_is_reported_as_such_not_as_a_failure():
    """torch has no float16/bfloat16 kernel for det on the CPU (torch 2.4 had none for mse_loss
    either): nothing can be checked in that dtype; the result says so, and the run is not failed."""
    case = make_case("det_half", "det(A)", variables={"A": {"shape": [2, 2], "domain": [1, 2]}},
                     dtypes=["float64", "float16"], samples=2, modes=["reverse"])
    report = check_case(case)
    half = [r for r in report.results if r.dtype == "float16"]
    assert half and {r.status for r in half} == {"unsupported"}
    assert all("has no float16 kernel for" in r.message for r in half)
    assert {r.status for r in report.results if r.dtype == "float64"} <= {"pass", "kink"}
    assert not report.status.failing
