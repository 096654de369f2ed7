"""check_case on Case objects: kinks, every float16 input, the exact reference, the other
checks, case-file errors, xfail, streaming.

torch's correct kernels in every dtype and mode and the planted bugs (a broken kernel fails in
every dtype where the policy can see the bug) are case files in tests/data/cases/, read by
tests/test_soundness_cases.py. The exact reference is correct to float64 even where float64
itself cannot compute the formula (σ'(-800), softmax at logits ±1000).
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
from diffcheck.symbolic import compile_case

DTYPES = ["float64", "float32", "float16", "bfloat16"]
MODES = ["reverse", "backward", "forward"]


def results(case, **options):
    return check_case(case, CheckOptions(**options) if options else None).results


def statuses(case) -> dict[tuple[str, str | None, str], str]:
    """(check, mode, dtype) -> status."""
    return {(r.check, r.mode, r.dtype): r.status for r in results(case)}


# --- kinks and every float16 input --------------------------------------------------------
# (torch's correct kernels in every dtype and mode, and the planted bugs, are case files:
# tests/data/cases/kernels.yaml and planted.yaml, read by tests/test_soundness_cases.py)

VEC4 = {"x": {"shape": [4]}}


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


LOG_NDTR_TAIL = [-12.0, -15.5, -20.0, -24.0625, -29.0, -35.0]


def test_reference_log_ndtr_where_its_cdf_cancels_to_zero_at_30_digits():
    # d/dx log Φ(x) = φ(x)/Φ(x); SymPy writes Φ(x) = 1 − erfc(x/√2)/2, which is 0 at 30 digits
    # for x ≤ −12 (Φ(−12) = 1.8e-33). 1/0 there is not a proven undefined value: its bound
    # says so, and a higher precision finds the finite value
    case = make_case("l", "log_ndtr(x)")
    rows = [[x] for x in LOG_NDTR_TAIL]
    values, kinds = _reference(case, Check("gradient"), rows)
    assert (kinds == cmp.FINITE).all()
    with mpmath.workdps(80):
        want = [_rounded(mpmath.npdf(x) / mpmath.ncdf(x)) for x in LOG_NDTR_TAIL]
    assert values[:, 0].tolist() == want


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_log_ndtr_in_its_left_tail_has_no_undefined_point(dtype):
    case = make_case("l", "log_ndtr(x)", {"x": {"domain": [-36, -11]}}, dtypes=[dtype],
                     modes=["reverse"], samples=0, points=[{"x": x} for x in LOG_NDTR_TAIL])
    rs = results(case)
    for r in rs:
        assert not (r.counts.get("undefined") or r.counts.get("singular")), (r.check, r.counts, r.message)
        assert r.points == len(LOG_NDTR_TAIL)
    # the value passes; torch's gradient is off by about (x²/2)·eps there (cases/library/special.yaml)
    assert rs[0].check == "value" and rs[0].status == "pass", rs[0].message


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


LET = {"z": "2 * x", "u": "sin(z)"}


def test_intermediates():
    case = make_case("inter", "sigmoid(u) * z", let=LET, check=["intermediates", "gradient"],
                     dtypes=["float64", "float32"], modes=MODES, samples=16)
    got = statuses(case)
    assert {c for c, _, _ in got} == {"value", "intermediates:z", "intermediates:u", "gradient"}
    assert {m for c, m, _ in got if c.startswith("intermediates")} == {"backward"}
    assert set(got.values()) == {"pass"}


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
