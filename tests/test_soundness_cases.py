"""The behaviour cases of tests/data/cases/: controls pass, planted bugs fail, each with the
verdicts its file writes down, with default settings.

Every file there is an ordinary case file (``diffcheck run tests/data/cases/`` exits 0: every
planted bug carries ``xfail:``). What a case must produce is written in comments right under
its ``- name:`` line, each a YAML value:

``# expected: STATUS`` or ``# expected: {SELECTOR: STATUS or [STATUS, ...], ...}``
    the status every result (or every result a selector picks) has before ``xfail`` turned it
    into ``xfail``. A selector is words separated by spaces, each the result's check
    (``value``, ``gradient``, ``intermediates:z``, ...), mode or dtype: ``gradient float16``
    picks the gradient results in float16; ``*`` picks every result. The selector with the
    most words that picks a result decides it; every selector must pick some result.
``# result: {SELECTOR: {FIELD: VALUE, ...}}``
    fields of the picked results' JSON (``Result.to_dict``), dotted for nested ones
    (``worst_point.autograd``, ``details.kinks.0.convention``); a string must be contained in
    the field, any other value equal to it.
``# results: N``
    the case has exactly N results.

Without comments the old rule holds alone: no result of a control fails, and some result of a
planted bug fails (as ``xfail``). Every case, commented or not, also keeps these: every result
that fails names a worst point where torch and the exact value differ, with its formula and a
positive error.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from diffcheck.loader import load_file
from diffcheck.pipeline import CheckOptions, check_case  # CheckOptions: the imports opt-in
from diffcheck.results import FAIL, FAILING, XFAIL

FILES = sorted((Path(__file__).parent / "data" / "cases").glob("*.yaml"))

_NAME = re.compile(r"^\s*-\s+name:\s*['\"]?([A-Za-z0-9_.-]+)")
_COMMENT = re.compile(r"^\s*#\s*(expected|result|results):\s*(.+?)\s*$")


def expectations(text: str) -> dict[str, dict[str, object]]:
    """case name -> {"expected": ..., "result": ..., "results": ...} from the comments under
    each ``- name:`` line."""
    out: dict[str, dict[str, object]] = {}
    current = None
    for line in text.splitlines():
        if m := _NAME.match(line):
            current = out.setdefault(m.group(1), {})
        elif (m := _COMMENT.match(line)) and current is not None:
            key, value = m.group(1), yaml.safe_load(m.group(2))
            assert key not in current, f"two `# {key}:` lines for one case"
            current[key] = {"*": value} if key == "expected" and isinstance(value, str) else value
    return out


def _cases():
    out = []
    for f in FILES:
        cases, problems = load_file(f)
        assert not problems, problems
        written = expectations(f.read_text(encoding="utf-8"))
        out += [pytest.param(c, written.get(c.name, {}), id=c.name) for c in cases]
    return out


CASES = _cases()


def _words(r) -> set[str]:
    return {str(r.check), str(r.mode), str(r.dtype)}


def _picked(selector: str, results) -> list[int]:
    """the indices of the results a selector picks"""
    words = set(selector.split()) - {"*"}
    return [i for i, r in enumerate(results) if words <= _words(r)]


def _decide(table: dict, results) -> dict[int, object]:
    """index of each result -> the value of the most specific selector that picks it."""
    out: dict[int, tuple[int, object]] = {}
    for selector, value in table.items():
        picked = _picked(selector, results)
        assert picked, f"the selector {selector!r} picks no result"
        rank = len(set(selector.split()) - {"*"})
        for i in picked:
            if i not in out or rank > out[i][0]:
                out[i] = (rank, value)
            elif rank == out[i][0] and value != out[i][1]:
                r = results[i]
                raise AssertionError(f"two selectors of equal rank disagree on {(r.check, r.mode, r.dtype)}")
    return {i: v for i, (_, v) in out.items()}


def _field(data, dotted: str):
    for part in dotted.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def _check_statuses(results, table) -> None:
    decided = _decide(table, results)
    wrong = []
    for i, r in enumerate(results):
        if i not in decided:
            continue
        want = decided[i]
        allowed = {want} if isinstance(want, str) else set(want)
        got = str(r.original_status or r.status)
        if got not in allowed:
            wrong.append(((r.check, r.mode, r.dtype), got, sorted(allowed), r.message))
    assert not wrong, wrong


def _check_fields(results, table) -> None:
    for selector, fields in table.items():
        picked = _picked(selector, results)
        assert picked, f"the selector {selector!r} picks no result"
        for i in picked:
            r = results[i]
            data = r.to_dict()
            for dotted, want in fields.items():
                got = _field(data, dotted)
                where = (r.check, r.mode, r.dtype, dotted)
                if isinstance(want, str):
                    assert isinstance(got, str) and want in got, (where, got)
                else:
                    assert got == want, (where, got)


def _check_failures_are_explained(results) -> None:
    for r in results:
        if (r.original_status or r.status) != FAIL or r.worst_point is None:
            continue
        w = r.worst_point
        assert w.reference != w.autograd and w.formula, (r.check, r.mode, r.dtype, w)
        assert w.abs_error > 0 and w.ulp_error > 0, (r.check, r.mode, r.dtype, w)


@pytest.mark.parametrize("case, written", CASES)
def test_behaviour_case(case, written):
    report = check_case(case, CheckOptions(allow_imports=True))
    results = list(report.results)
    bad = [(r.check, r.mode, r.dtype, r.status, r.message) for r in results if r.status in FAILING]
    assert not bad, bad
    if case.xfail:
        assert any(r.status == XFAIL for r in results), [(r.check, r.mode, r.status) for r in results]
    if "results" in written:
        assert len(results) == written["results"], [(r.check, r.mode, r.dtype) for r in results]
    if "expected" in written:
        _check_statuses(results, written["expected"])
    if "result" in written:
        _check_fields(results, written["result"])
    _check_failures_are_explained(results)


def test_the_comments_name_cases_of_their_file():
    for f in FILES:
        cases, _ = load_file(f)
        assert set(expectations(f.read_text(encoding="utf-8"))) == {c.name for c in cases}, f
