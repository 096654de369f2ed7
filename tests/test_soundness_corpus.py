"""The soundness corpus (issue 12, item 6): real PyTorch autograd bugs must fail, their
controls must pass, with default settings, in every dtype and mode their cases list.

The cases are tests/soundness/bugs.yaml and tests/soundness/controls.yaml; the functions
they import are in tests/soundness/bugs.py, each citing its issue. A bug or control that
today's diffcheck gets wrong is marked ``xfail(strict=True)`` with the mechanism it waits
for; when the mechanism lands the mark must go (strict: an unexpected pass fails).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import pytest

from diffcheck.pipeline import CheckOptions  # the imports opt-in
from diffcheck import check_case
from diffcheck.loader import load_text
from diffcheck.results import FAILING

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "soundness"
if str(ROOT) not in sys.path:  # the cases import tests.soundness.bugs
    sys.path.insert(0, str(ROOT))

#: today's misses, by case name: the mechanism each waits for
XFAIL: dict[str, str] = {}


def corpus_cases():
    cases = []
    for name in ("bugs.yaml", "controls.yaml"):
        path = CORPUS / name
        loaded, errors = load_text(path.read_text(), str(path.relative_to(ROOT)))
        assert not errors, errors
        cases.extend(loaded)
    return cases


CASES = corpus_cases()


def _params():
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=XFAIL[case.name])] if case.name in XFAIL else []
        yield pytest.param(case, id=case.name, marks=marks)


PARAMS = list(_params())


def test_corpus_size():
    bugs = [c for c in CASES if c.name.startswith("bug.")]
    controls = [c for c in CASES if c.name.startswith("control.")]
    assert len(bugs) >= 30
    assert len(controls) >= len(bugs)
    issues = {c.description.split()[0] for c in bugs}
    assert len(issues) == len(bugs), "every bug cites its own issue"
    assert all(c.description.startswith("pytorch/pytorch#") for c in bugs)
    stems = {c.name.split(".")[1] for c in controls}
    assert {c.name.split(".")[1] for c in bugs} <= stems, "every bug has a control"


@pytest.mark.parametrize("case", PARAMS)
def test_verdict(case):
    report = check_case(case, CheckOptions(allow_imports=True))
    derivative = [r for r in report.results if r.mode is not None]
    assert derivative, "the case checks derivatives"
    if case.name.startswith("bug."):
        # in every dtype and mode the case lists, some result fails
        failing = defaultdict(bool)
        for r in derivative:
            failing[(r.dtype, r.mode)] |= r.status in FAILING
        for r in report.results:
            if r.mode is None and r.status in FAILING:  # a wrong value fails every mode
                for key in failing:
                    if key[0] == r.dtype:
                        failing[key] = True
        missed = sorted(k for k, v in failing.items() if not v)
        assert not missed, f"the bug passes in {missed}: " + "; ".join(
            f"{r.check}/{r.mode}/{r.dtype}: {r.status} {r.message}" for r in derivative)
    else:
        bad = [f"{r.check}/{r.mode}/{r.dtype}: {r.status} {r.message}" for r in report.results
               if r.status in FAILING]
        assert not bad, "a control fails: " + "; ".join(bad)
