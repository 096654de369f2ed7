"""Bounds checked when a case is loaded or compiled (issue 10 item 7): every value a case file
can give ends as a case-file error with file:line:column (exit 2) or as a result, never as an
internal error (exit 3) or a RecursionError."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffcheck import runner

BASE = "name: b\nvariables: {x: {}}\nexpr: x**2\nsamples: 2\ndtypes: [float64]\n"

REFUSED = [
    # (case text, line, words in the message)
    (BASE + "timeout: 1e12\n", 6, "at most 3600 seconds"),
    ("name: b\nvariables: {x: {domain: [-1e308, 1e308]}}\nexpr: x**2\n", 2, "within ±1e+300"),
    ("name: b\nvariables: {x: {shape: [" + ", ".join(["1"] * 70) + "]}}\nexpr: sum(x)\n", 2, "70 dimensions"),
    ("name: b\nvariables: {x: {shape: [100000, 100000]}}\nexpr: sum(x)\n", 2, "at most 100,000"),
    ("name: b\nvariables: {x: {}}\nconstants: {k: 1" + "0" * 330 + "}\nexpr: x*k\n", 3, "too large for float64"),
    ("name: b\nvariables: {x: {}}\nexpr: x*1" + "0" * 330 + "\n", 3, "number out of range"),
    ("name: b\nvariables: {x: {}}\nexpr: x/0\n", 3, "divides by a constant zero"),
    ("name: b\nvariables: {x: {}}\nexpr: log(x*0)\n", 3, "divides by a constant zero"),
    ("name: b\nvariables: {x: {shape: [3]}}\nexpr: x[2:1]\n", 3, "has no entries"),
    ("name: b\nvariables: {x: {}}\nexpr: " + "sin(" * 199 + "x" + ")" * 199 + "\n", 3, "nested more than"),
    ("name: b\nvariables: {x: {}}\nexpr: " + "-" * 5000 + "x\n", 3, "too deeply nested"),
    ("name: b\nvariables: {x: {}}\nexpr: " + " + ".join(["x"] * 3000) + "\n", 3, "5000 parts"),
    ("name: b\nvariables: {x: {}}\nexpr: x\ntorch: " + "torch.sin(" * 199 + "x" + ")" * 199 + "\n", 4,
     "nested more than"),
    ("name: b\nvariables: {x: {}}\nexpr: abs(x)\nsamples: 0\n", 4, "nothing to check"),
    (BASE.replace("samples: 2", "samples: 1000000000000"), 4, "at most 1,000,000"),
]


def _run(tmp_path: Path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return runner.run([str(path)], runner.RunOptions(jobs=1, cache=False))


@pytest.mark.parametrize("text, line, says", REFUSED, ids=[s for _, _, s in REFUSED])
def test_refused_at_load_with_its_place(tmp_path, text, line, says):
    report = _run(tmp_path, text)
    assert not report.internal_errors, report.internal_errors
    assert report.exit_code == 2
    (error,) = report.errors
    assert says in str(error) and error.location.line == line and error.location.column > 0, str(error)


ACCEPTED = [
    # a 1,000-term sum (the chain is not nesting), in both keys; at whole-number points, where
    # torch's 1,000 roundings are exact
    "name: b\nvariables: {x: {}, y: {}}\nexpr: " + " + ".join(["x*y"] * 1000) + "\ntorch: "
    + " + ".join(["x*y"] * 1000) + "\npoints: [{x: 2, y: 3}, {x: -1, y: 5}]\nsamples: 0\ndtypes: [float64]\n",
    # 90 nested calls
    "name: b\nvariables: {x: {domain: [-1, 1]}}\nexpr: " + "sin(" * 90 + "x" + ")" * 90
    + "\nsamples: 2\ndtypes: [float64]\nmodes: [reverse]\n",
    # an integer-valued constant with check: [intermediates] (was "unknown name", no location)
    "name: b\nvariables: {x: {}}\nconstants: {k: 2}\nlet: {z: x**2}\nexpr: k*z\ncheck: [intermediates]\n"
    "samples: 2\ndtypes: [float64]\n",
    # an empty slice inside a sum is an empty sum
    "name: b\nvariables: {x: {shape: [3]}}\nexpr: sum(x[2:1]) + sum(x)\nsamples: 2\ndtypes: [float64]\n",
]


@pytest.mark.parametrize("text", ACCEPTED, ids=["sum1000", "nested90", "intermediates_int_constant",
                                                "empty_sum"])
def test_accepted_and_checked(tmp_path, text):
    report = _run(tmp_path, text)
    assert not report.errors and not report.internal_errors, [str(e) for e in report.errors]
    assert report.exit_code == 0, [(r.check, r.status, r.message) for r in report.results]
