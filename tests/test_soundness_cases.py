"""The soundness controls and planted bugs of tests/data/cases/: every control passes, every
planted bug (a case with ``xfail:``) fails, with default settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffcheck.pipeline import CheckOptions  # the imports opt-in
from diffcheck.loader import load_file
from diffcheck.pipeline import check_case
from diffcheck.results import FAILING, XFAIL

FILES = sorted((Path(__file__).parent / "data" / "cases").glob("*.yaml"))

def _cases():
    out = []
    for f in FILES:
        cases, problems = load_file(f)
        assert not problems, problems
        out += cases
    return out


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_soundness_case(case):
    report = check_case(case, CheckOptions(allow_imports=True))
    bad = [(r.check, r.mode, r.dtype, r.status, r.message) for r in report.results if r.status in FAILING]
    assert not bad, bad
    if case.xfail:
        assert any(r.status == XFAIL for r in report.results), [(r.check, r.mode, r.status) for r in report.results]
