"""Unit tests of ``expect`` claims (diffcheck.claims): the rounding rule, identities decided
symbolically or numerically, values, differentiable, descent, malformed claims, xfail."""

from __future__ import annotations

import json
import textwrap
from fractions import Fraction

import pytest

from diffcheck.pipeline import check_case
from diffcheck.claims import Exact, check_claims, decimals, exact_number, round_half_even
from diffcheck.errors import CaseFileError
from diffcheck.loader import WrittenFloat, load_text
from diffcheck.results import FAIL, PASS, XFAIL, XPASS
from diffcheck.symbolic import compile_case

import sympy as sp


def case_of(text: str):
    cases, errors = load_text(textwrap.dedent(text), "claims.yaml")
    assert not errors, [str(e) for e in errors]
    assert len(cases) == 1
    return cases[0]


def claims(text: str):
    return check_claims(compile_case(case_of(text)))


# --- the rounding rule ---------------------------------------------------------------------

@pytest.mark.parametrize("value, places", [
    (72, 0), (72.0, 1), (-21.44, 2), (1.2535, 4), (1.6655e-34, 38), (1e16, -16), (1e15, 1), (0.5, 1),
    (WrittenFloat(0.0, "0.0000e+00"), 4), (WrittenFloat(1.0, "1.0000e+00"), 4),
    (WrittenFloat(72.0, "72."), 0), (WrittenFloat(1e16, "1e+16"), -16),
])
def test_decimals_written(value, places):
    assert decimals(value) == places


def test_exact_number_is_the_decimal_written():
    assert exact_number(0.1) == Fraction(1, 10)
    assert exact_number(WrittenFloat(0.28, "0.28")) == Fraction(7, 25)
    assert exact_number(3) == 3


def test_round_half_even():
    assert round_half_even(Fraction(1, 8), 2) == Fraction(12, 100)   # 0.125 -> 0.12
    assert round_half_even(Fraction(3, 8), 2) == Fraction(38, 100)   # 0.375 -> 0.38
    assert round_half_even(Fraction(1253504, 10 ** 6), 4) == Fraction(12535, 10 ** 4)
    assert round_half_even(Fraction(15), -1) == 20  # to tens, half to even
    assert round_half_even(Fraction(25), -1) == 20


@pytest.mark.parametrize("exact, claimed, holds", [
    (sp.Rational(-536, 25), -21.44, True),
    (sp.Rational(-536, 25), -21.4, True),
    (sp.Rational(-536, 25), -21.0, False),
    (sp.Integer(24), 72, False),
    (sp.Integer(24), 24.0, True),
    (sp.Rational(1253504, 10 ** 6), 1.2535, True),
    (sp.Rational(1253504, 10 ** 6), 1.2536, False),
    (1 / (1 + sp.exp(100)), WrittenFloat(0.0, "0.0000e+00"), True),
    (1 / (1 + sp.exp(sp.Rational(1944444465637207, 25000000000000))), 1.6655e-34, True),
    (1 / (1 + sp.exp(-sp.Rational(1944444465637207, 25000000000000))), 0.99999, False),
    (sp.tanh(1), -0.7616, False),
    (-sp.tanh(1), -0.7616, True),
])
def test_exact_value_holds_when_it_rounds_to_the_claim(exact, claimed, holds):
    assert Exact(exact).holds(claimed) is holds


def test_exact_text():
    assert Exact(sp.Integer(24)).text == "24"
    assert Exact(sp.Rational(-536, 25)).text == "-536/25 = -21.44"
    assert Exact(sp.Rational(1, 3)).text == "1/3 ≈ 0.3333333333333333"
    assert Exact(-sp.tanh(1)).text.startswith("-tanh(1) ≈ -0.76159415595576")


def test_undefined_exact_value_never_holds():
    assert Exact(sp.zoo).holds(0) is False
    assert Exact(sp.oo).holds(1e300) is False


# --- identities --------------------------------------------------------------------------

def test_identity_decided_symbolically():
    (r,) = claims("""
        name: sig
        variables: {x: {}}
        expr: sigmoid(x)
        expect:
          derivative: sigmoid(x) * (1 - sigmoid(x))
        """)
    assert r.check == "expect.derivative" and r.status == PASS
    assert r.details.method == "symbolic"
    assert r.details.claim[0].method == "symbolic" and r.details.claim[0].holds is True
    assert "symbolic" in r.message


def test_identity_decided_numerically_when_simplify_cannot():
    (r,) = claims("""
        name: relu
        variables: {x: {}}
        expr: relu(x)
        expect:
          derivative: step(x)
        """)
    assert r.status == PASS
    assert r.details.method == "numeric"
    assert r.points == 32
    assert "numeric" in r.message


def test_gradient_identity_with_constants_and_let_steps():
    (r,) = claims("""
        name: sse
        variables: {w: {}, b: {}}
        constants: {x: [-2.0, 0.5, 3.0], y: [1.1, 0.2, 6.8]}
        let: {f: w*x + b}
        expr: sum((y - f)**2)
        expect:
          gradient:
            w: -2 * sum((y - f) * x)
            b: -2 * sum(y - f)
        """)
    assert r.status == PASS, r.message
    assert [c.label for c in r.details.claim] == ["∂f/∂w", "∂f/∂b"]


def test_jacobian_identity():
    (r,) = claims("""
        name: softmax
        variables: {x: {shape: [3]}}
        expr: softmax(x)
        expect:
          jacobian: diag(softmax(x)) - outer(softmax(x), softmax(x))
        """)
    assert r.check == "expect.jacobian" and r.status == PASS


def test_false_identity_fails_with_a_counterexample():
    (r,) = claims("""
        name: sin
        variables: {x: {}}
        expr: sin(x)
        expect:
          derivative: cos(x) + x**2/1e20
        """)
    assert r.status == FAIL
    row = r.details.claim[0]
    assert row.holds is False and row.method == "numeric"
    assert row.at and isinstance(row.torch, float)
    assert "is false" in r.message and "differ by" in r.message


def test_false_mean_gradient_identity_fails():
    (r,) = claims("""
        name: mse
        variables: {w: {}}
        constants: {x: [1.0, 2.0, 3.0], y: [2.0, 4.0, 6.5]}
        expr: mse(w*x, y)
        expect:
          gradient: {w: -2 * sum((y - w*x) * x)}
        """)
    assert r.status == FAIL


def test_bad_expression_in_a_claim_is_a_placed_case_file_error():
    case = case_of("""
        name: bad
        variables: {x: {}}
        expr: x**2
        expect:
          derivative: 2*q
        """)
    with pytest.raises(CaseFileError) as info:
        check_claims(compile_case(case))
    assert "unknown name 'q'" in str(info.value)
    assert info.value.location.line == 6


# --- values ----------------------------------------------------------------------------------

def test_failing_value_claim_names_claim_exact_and_torch():
    (r,) = claims("""
        name: w2
        variables: {w: {}}
        expr: (w*2)**2
        expect:
          values:
            - at: {w: 3}
              value: 36
              gradient: {w: 72}
        """)
    assert r.check == "expect.values" and r.status == FAIL
    assert "∂f/∂w = 72" in r.message and "w=3" in r.message
    assert "exact 24" in r.message and "torch (float64) 24.0" in r.message
    value_row, grad_row = r.details.claim
    assert value_row.holds is True and value_row.exact == "36"
    assert (grad_row.claimed, grad_row.exact, grad_row.torch, grad_row.holds) == (72, "24", 24.0, False)
    json.dumps(r.to_dict())


def test_values_rounded_rationals_and_closed_forms():
    results = claims("""
        name: sse
        variables: {a: {}, b: {}}
        expr: (2 - a - b)**2 + (4 - 3*a - b)**2
        expect:
          values:
            - at: {a: 0.28, b: 0.12}
              value: 11.8016
              gradient: {a: -21.44, b: -9.28}
        """)
    (r,) = results
    assert r.status == PASS, r.message
    value, da, db = r.details.claim
    assert value.exact == "7376/625 = 11.8016" and value.claimed == "11.8016"  # as written
    assert (da.label, da.exact, da.claimed) == ("∂f/∂a", "-536/25 = -21.44", "-21.44")
    assert (db.label, db.exact, db.claimed) == ("∂f/∂b", "-232/25 = -9.28", "-9.28")
    assert da.method == "rounded to 2 decimals"
    assert r.points == 3


def test_value_claims_torch_in_the_case_dtype():
    (r,) = claims("""
        name: sse32
        variables: {a: {}, b: {}}
        expr: (2 - a - b)**2 + (4 - 3*a - b)**2
        dtypes: [float32]
        expect:
          values:
            - at: {a: 0.28, b: 0.12}
              gradient: {a: -21.440000534057617, b: -9.279999732971191}
        """)
    assert r.status == FAIL  # the printed float32 digits are not the exact value
    assert r.details.torch_dtype == "float32"
    assert [c.torch for c in r.details.claim] == [-21.440000534057617, -9.279999732971191]
    assert "exact -536/25 = -21.44" in r.message and "torch (float32) -21.440000534057617" in r.message


def test_intermediates_and_jacobian_values():
    (r,) = claims("""
        name: chain
        variables: {t: {}}
        let: {y: t**2}
        expr: y**2
        expect:
          values:
            - at: {t: 1}
              derivative: 4.0
              intermediates: {y: 2.0}
        """)
    assert r.status == PASS, r.message
    assert r.details.claim[1].torch == 2.0
    (r,) = claims("""
        name: sm
        variables: {x: {shape: [2]}}
        expr: softmax(x)
        expect:
          values:
            - at: {x: [0, 0]}
              value: [0.5, 0.5]
              jacobian: [[0.25, -0.25], [-0.25, 0.25]]
        """)
    assert r.status == PASS, r.message
    assert r.points == 6


@pytest.mark.parametrize("entry, message", [
    ("{value: 1}", "is missing the required key `at`"),
    ("{at: {x: 1}}", "claims nothing"),
    ("{at: {x: 1}, slope: 2}", "unknown key 'slope'"),
    ("{at: {y: 1}, value: 1}", "gives 'y', which is not a variable"),
    ("{at: {x: 1}, gradient: {y: 1}}", "gives 'y', which is not a variable"),
    ("{at: {x: [1, 2]}, value: 1}", "has shape [2] but variable 'x' has shape []"),
    ("{at: {x: 1}, intermediates: {z: 1}}", "which is not a `let` step"),
    ("{at: {x: 1}, value: fast}", "must be a number or a list of numbers, got 'fast'"),
    ("{at: {x: 1}, intermediates: {}}", "`expect.values[0].intermediates` must be non-empty"),
    ("{at: {x: 1}, gradient: {}}", "`expect.values[0].gradient` names no variable"),
    ("{at: {x: .nan}, value: 1}", "`expect.values[0].at.x` must be finite, got nan"),
    ("{at: {x: 1}, value: .inf}", "`expect.values[0].value` must be finite, got inf"),
    ("{at: {x: 1}, gradient: [.nan]}", "must be finite, got [nan]"),
])
def test_malformed_value_claims_are_case_file_errors_at_load_time(entry, message):
    cases, errors = load_text(textwrap.dedent(f"""
        name: bad
        variables: {{x: {{}}}}
        expr: x**2
        expect:
          values:
            - {entry}
        """), "claims.yaml")
    assert not cases
    assert any(message in str(e) for e in errors), [str(e) for e in errors]
    assert all(e.location is not None and e.location.line >= 6 for e in errors)


def test_a_claim_of_the_wrong_shape_is_found_when_the_case_is_compiled():
    case = case_of("""
        name: bad
        variables: {x: {}}
        expr: x**2
        expect:
          values:
            - {at: {x: 1}, value: [1, 2]}
        """)
    with pytest.raises(CaseFileError, match="shape"):
        check_claims(compile_case(case))


def test_every_malformed_claim_of_a_file_is_reported_at_once_with_its_place():
    cases, errors = load_text(textwrap.dedent("""
        name: three_bad_claims
        variables: {w: {}}
        expr: (w * 2) ** 2
        expect:
          values:
            - at: {w: 3}
              graident: {w: 24}
            - at: {v: 3}
              gradient: {w: 24}
          descent:
            start: {w: 0}
            lr: fast
            steps: [{w: 1}]
        """), "c.yaml")
    assert not cases
    assert [str(e) for e in errors] == [
        "c.yaml:8:7: unknown key 'graident' in `expect.values[0]` of case 'three_bad_claims' "
        "(did you mean 'gradient'?)",
        "c.yaml:9:11: `expect.values[1].at` gives no value for variable 'w' (give every variable: w)",
        "c.yaml:9:12: `expect.values[1].at` gives 'v', which is not a variable of case 'three_bad_claims' "
        "(the variables are w)",
        "c.yaml:13:9: `expect.descent.lr` must be a finite number, got 'fast' (str)",
    ]


@pytest.mark.parametrize("claim, message", [
    ("gradient: {}", "`expect.gradient` must be non-empty"),
    ("descent: {start: {x: 1}, lr: 0.1, steps: [{}]}", "`expect.descent.steps[0]` claims nothing"),
    ("descent: {start: {x: 1}, lr: 0.1, steps: [{after: 3}]}", "`expect.descent.steps[0]` claims nothing"),
    ("descent: {start: {x: 1}, lr: 0.1, steps: [{after: 3, x: 1}, {after: 2, x: 1}]}",
     "`expect.descent.steps[1].after` must be a whole number greater than 3"),
    ("descent: {start: {x: 1}, lr: 0.1, steps: [{x: 1}, {after: 5000, x: 1}]}",
     "at most 1000 steps; `expect.descent.steps[1]` asks for 5000"),
    ("descent: {start: {x: .inf}, lr: 0.1, steps: [{x: 1}]}", "`expect.descent.start.x` must be finite"),
    ("descent: {start: {x: 1}, lr: 0.1, steps: [{x: .nan}]}", "`expect.descent.steps[0].x` must be finite"),
])
def test_malformed_claims_the_claims_no_longer_check_are_load_errors(claim, message):
    """claims/ trusts the loader for the structure of a claim: these reach it never."""
    cases, errors = load_text(textwrap.dedent(f"""
        name: bad
        variables: {{x: {{}}}}
        expr: x**2
        expect:
          {claim}
        """), "claims.yaml")
    assert not cases
    assert any(message in str(e) for e in errors), [str(e) for e in errors]
    assert all(e.location is not None and e.location.line == 6 for e in errors)


# --- differentiable --------------------------------------------------------------------------

def test_step_is_not_differentiable_in_torch():
    (r,) = claims("""
        name: step
        variables: {x: {}}
        expr: step(x)
        points: [{x: 1.0}]
        expect:
          differentiable: false
        """)
    assert r.check == "expect.differentiable" and r.status == PASS
    assert "heaviside" in r.message
    assert r.details.claim[0].holds is True


def test_claiming_a_smooth_function_is_not_differentiable_fails():
    (r,) = claims("""
        name: sq
        variables: {x: {}}
        expr: x**2
        expect:
          differentiable: false
        """)
    assert r.status == FAIL
    assert "can differentiate" in r.message


def test_detached_graph_has_no_gradient_path():
    (r,) = claims("""
        name: det
        variables: {t: {}}
        let: {y: t**2}
        expr: y**2
        torch: torch.Tensor.detach(y)**2
        expect:
          differentiable: false
        """)
    assert r.status == PASS
    assert "no grad_fn" in r.message


# --- descent ---------------------------------------------------------------------------------

SSE_W = """
    name: sse_w
    variables: {{w: {{}}}}
    expr: 14*w**2 - 56*w + 56
    expect:
      descent:
        start: {{w: 0}}
        lr: {lr}
        steps: {steps}
    """


def test_descent_exact_and_torch_side_by_side():
    (r,) = claims(SSE_W.format(lr=0.5, steps="[{w: 28}, {w: -336}]"))
    assert r.check == "expect.descent" and r.status == PASS, r.message
    traj = r.details.trajectory
    assert [row.step for row in traj] == [0, 1, 2]
    assert traj[1].exact["w"] == "28" and traj[1].torch["w"] == 28.0
    assert traj[2].exact["w"] == "-336" and traj[2].torch["w"] == -336.0
    assert traj[2].holds is True and traj[0].holds is None
    assert r.details.arithmetic == "exact rational arithmetic"
    json.dumps(r.to_dict())


def test_descent_with_the_notes_wrong_step_fails():
    (r,) = claims(SSE_W.format(lr=0.5, steps="[{w: 1}, {w: 15}]"))
    assert r.status == FAIL
    assert "claims w = 1 after step 1; exact 28" in r.message
    assert [row.holds for row in r.details.trajectory] == [None, False, False]


def test_descent_rounded_steps_hold():
    (r,) = claims(SSE_W.format(lr=0.01, steps="[{w: 0.56}, {w: 0.9632}, {w: 1.2535}]"))
    assert r.status == PASS, r.message
    assert r.details.trajectory[3].exact["w"] == "19586/15625 = 1.253504"


def test_descent_loss_claims_and_after():
    (r,) = claims("""
        name: sse_ab
        variables: {a: {}, b: {}}
        expr: (2 - a - b)**2 + (4 - 3*a - b)**2
        expect:
          descent:
            start: {a: 0, b: 0, loss: 20}
            lr: 0.01
            steps:
              - {a: 0.28, b: 0.12, loss: 11.8016}
              - {after: 400, a: 1.0, b: 1.0}
        """)
    assert r.status == PASS, r.message
    steps = [row.step for row in r.details.trajectory]
    assert steps == [0, 1, 400]
    assert r.details.trajectory[0].claimed == {"loss": 20}


def test_malformed_descent_is_a_case_file_error_at_load_time():
    _, errors = load_text(textwrap.dedent("""
        name: d
        variables: {w: {}}
        expr: w**2
        expect:
          descent: {start: {w: 0}, lr: 0.1}
        """), "d.yaml")
    assert [str(e) for e in errors] == [
        "d.yaml:6:12: `expect.descent` of case 'd' is missing the required key `steps`"]
    _, errors = load_text(textwrap.dedent(SSE_W.format(lr=0.1, steps="[{v: 1}]")), "d.yaml")
    assert [str(e) for e in errors] == [
        "d.yaml:9:14: `expect.descent.steps[0]` gives 'v', which is not a variable of case 'sse_w' "
        "(the variables are w)"]
    _, errors = load_text(textwrap.dedent(SSE_W.format(lr=0.1, steps="[{w: 1, after: 0}]")), "d.yaml")
    assert [str(e) for e in errors] == [
        "d.yaml:9:27: `expect.descent.steps[0].after` must be a whole number of steps >= 1, got 0 (int) "
        "(for example `after: 10`)"]


# --- through check_case: xfail and xpass ---------------------------------------------------

def test_failing_claim_of_an_xfail_case_is_xfail():
    case = case_of("""
        name: w2_note
        xfail: the exact gradient is 24
        variables: {w: {}}
        expr: (w*2)**2
        samples: 2
        expect:
          values:
            - at: {w: 3}
              gradient: {w: 72}
        """)
    report = check_case(case)
    claims_ = [r for r in report.results if r.check.startswith("expect.")]
    assert [r.status for r in claims_] == [XFAIL]
    assert report.status == XFAIL
    assert all(r.status == PASS for r in report.results if not r.check.startswith("expect."))


def test_holding_claim_of_an_xfail_case_is_xpass():
    case = case_of("""
        name: w2_fixed
        xfail: supposedly wrong
        variables: {w: {}}
        expr: (w*2)**2
        samples: 2
        expect:
          values:
            - at: {w: 3}
              gradient: {w: 24}
        """)
    report = check_case(case)
    assert {r.status for r in report.results} == {XPASS}


def test_claims_appear_in_check_case_results():
    case = case_of("""
        name: sq
        variables: {x: {}}
        expr: x**2 + 3*x
        samples: 2
        expect:
          derivative: 2*x + 3
          values:
            - at: {x: 2.0}
              derivative: 7.
        """)
    report = check_case(case)
    checks = [r.check for r in report.results]
    assert "expect.derivative" in checks and "expect.values" in checks
    assert report.status == PASS


# --- the compiled descent is the general one ---------------------------------------------------

DESCENT = """
    name: descent
    variables: {w: {}, b: {}}
    constants:
      x: [0.126, -0.132, 0.64, 0.105, -0.536]
      y: [1.252, 0.736, 2.28, 1.21, -0.072]
    expr: mean((w*x + b - y)**2) + w**4/3
    expect:
      descent:
        start: {w: 0.5, b: 0}
        lr: 0.05
        steps:
          - {w: 0.5}
          - {after: 150, w: 1.0}
    """


def test_compiled_descent_equals_the_general_one(monkeypatch):
    """Fractions then mpmath (the compiled path) give the iterates SymPy's general path gives:
    the same rationals while they fit, and the same 60-digit values after the switch."""
    from diffcheck.claims import descent as claims_module

    (fast,) = claims(DESCENT)
    calls = []
    monkeypatch.setattr(claims_module, "_arithmetic_descent", lambda *a, **k: calls.append(1))
    (general,) = claims(DESCENT)
    assert calls  # the general path really ran
    assert "then 60 significant digits from step" in fast.details.arithmetic
    assert fast.details.arithmetic == general.details.arithmetic
    for a, b in zip(fast.details.trajectory, general.details.trajectory):
        assert a.exact == b.exact, a.step
    assert fast.status == general.status
    assert fast.message == general.message


def test_a_loss_that_is_not_rational_arithmetic_takes_the_general_path():
    from diffcheck.claims import descent as claims_module

    w = sp.Symbol("w")
    assert claims_module._is_arithmetic(w ** 2 / 3 + sp.Rational(1, 7) * w, [w])
    assert not claims_module._is_arithmetic(sp.exp(w) + w, [w])
    assert not claims_module._is_arithmetic(w ** sp.Rational(1, 2), [w])


@pytest.mark.parametrize("d, zero", [
    ("exp(-x)/(1 + exp(-x))**2 - (1 - 1/(1 + exp(-x)))/(1 + exp(-x))", True),  # by cancel
    ("sin(x)**2 + cos(x)**2 - 1", True),                                         # needs simplify
    ("exp(x + y) - exp(x)*exp(y)", True),
    ("x**2 - 2*x + 1 - (x - 1)**2", True),
    ("exp(x)/(1 + exp(x)) - 1/(1 + exp(x))", False),
    ("sqrt(x**2) - x", False),                                                    # |x| − x for real x
])
def test_zero_is_decided_by_cancel_then_simplify(d, zero):
    from diffcheck.claims.identity import _simplifies_to_zero

    x, y = sp.symbols("x y", real=True)
    assert _simplifies_to_zero(sp.sympify(d, locals={"x": x, "y": y})) is zero


def test_a_gradient_claim_of_a_one_variable_case_may_give_the_numbers_alone():
    (r,) = claims("""
        name: w2
        variables: {w: {}}
        expr: (w*2)**2
        expect:
          values:
            - at: {w: 3}
              gradient: 24
        """)
    assert r.status == PASS, r.message
    _, errors = load_text(textwrap.dedent("""
        name: two
        variables: {w: {}, b: {}}
        expr: w*b
        expect:
          values:
            - {at: {w: 3, b: 1}, gradient: 1}
        """), "g.yaml")
    assert [str(e) for e in errors] == [
        "g.yaml:7:36: `expect.values[0].gradient` gives numbers without naming the variable, but the case "
        "has several (map each variable to its numbers: {w: ...})"]
