"""Custom autograd.Functions in every mode they support (issue 12, items 4 and 5).

backward mode runs the user's code as a training loop does (no vmap, no torch.func); a
Function that cannot run under vmap is checked point by point with a note; forward mode of a
Function without jvp or setup_context is ``unsupported`` (not a failure) unless the case
asks for forward mode by name; torch's own failure with nested forward mode through a
Function is named as torch's.

The cases that need only statuses and messages (an old-style Function and one without jvp
are unsupported in forward mode, a wrong backward under a value branch fails) are in
tests/data/cases/custom_functions.yaml, read by tests/test_soundness_cases.py.
"""

from __future__ import annotations

import textwrap

from diffcheck.pipeline import CheckOptions  # the imports opt-in
from diffcheck import check_case
from diffcheck.loader import load_text

import custom_functions


def _run(text: str):
    cases, errors = load_text(textwrap.dedent(text), "<custom>")
    assert not errors, errors
    return [check_case(c, CheckOptions(allow_imports=True)) for c in cases]


def _by(report):
    return {(r.check, r.mode): r for r in report.results}


def test_forward_mode_asked_for_by_name_is_an_error():
    (report,) = _run("""
        name: old_exp_forward
        variables: {x: {domain: [-2, 2]}}
        expr: exp(x)
        torch: f(x)
        imports: {f: "custom_functions:old_exp"}
        modes: [backward, forward]
        samples: 4
        dtypes: [float64]
        """)
    got = _by(report)
    assert got[("gradient", "backward")].status == "pass"
    assert got[("gradient", "forward")].status == "error"
    assert "`modes:` asks for forward mode" in got[("gradient", "forward")].message
    assert "setup_context" in got[("gradient", "forward")].message


def test_value_branching_function_is_checked_point_by_point():
    (report,) = _run("""
        name: sin_branching
        variables: {x: {domain: [-2, 2]}}
        expr: sin(x)
        torch: f(x)
        imports: {f: "custom_functions:sin_branching"}
        check: [gradient, hessian]
        modes: [reverse, backward, forward]
        samples: 5
        dtypes: [float64, float32]
        """)
    assert all(r.status == "pass" for r in report.results), [(r.check, r.mode, r.message) for r in report.results]
    got = _by(report)
    notes = list(got[("gradient", "reverse")].details.notes)
    assert len(notes) == 1 and "point by point" in notes[0]
    # the Hessian in forward mode: torch cannot nest forward mode through a Function;
    # the note says so and the Hessian is taken forward-over-reverse
    notes = " ".join(got[("hessian", "forward")].details.notes)
    assert "known torch limitation" in notes and "forward-over-reverse" in notes


def test_backward_mode_runs_without_vmap():
    custom_functions._CountingSquare.calls.clear()
    (report,) = _run("""
        name: counting
        variables: {x: {shape: [2], domain: [-2, 2]}}
        expr: x**2
        torch: f(x)
        imports: {f: "custom_functions:counting_square"}
        check: [jacobian]
        modes: [backward]
        samples: 3
        dtypes: [float64]
        """)
    assert all(r.status == "pass" for r in report.results)
    assert custom_functions._CountingSquare.calls  # the user's backward ran ...
    assert set(custom_functions._CountingSquare.calls) == {"plain"}  # ... never under vmap


def test_an_error_in_the_users_function_names_its_file_and_line():
    (report,) = _run("""
        name: exp_bad_jvp
        variables: {x: {domain: [-2, 2]}}
        expr: exp(x)
        torch: f(x)
        imports: {f: "custom_functions:exp_jvp_reads_nothing"}
        samples: 4
        dtypes: [float64]
        """)
    got = _by(report)
    assert got[("gradient", "reverse")].status == "pass"
    forward = got[("gradient", "forward")]
    assert forward.status == "error"
    line = next(n for n, text in enumerate(open(custom_functions.__file__), 1) if "must point at" in text)
    assert f"custom_functions.py:{line} in jvp" in forward.message, forward.message
