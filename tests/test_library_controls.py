"""The controls of cases/library/: every library function has one, and each passes by default.

A control checks torch's own kernel against the exact definition in every dtype torch has for
the function, every mode, at random points and at its special points; a control that cannot
pass is an ``xfail`` whose reason says why (a measured torch deviation, or a named false alarm
of diffcheck).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from diffcheck.language import Call, _children, parse
from diffcheck.language.library import LIBRARY
from diffcheck.loader import load_paths
from diffcheck.runner import RunOptions, run

ROOT = Path(__file__).resolve().parent.parent
CONTROLS = sorted((ROOT / "cases" / "library").glob("*.yaml"))


def _calls(node) -> set[str]:
    out = {node.func} if isinstance(node, Call) else set()
    for child in _children(node):
        out |= _calls(child)
    return out


def controlled_functions() -> set[str]:
    """Library functions called by the `expr` of some control."""
    cases, errors = load_paths([str(p) for p in CONTROLS])
    assert not errors, errors
    out: set[str] = set()
    for case in cases:
        out |= _calls(parse(case.expr))
    return out


def test_controls_load_and_call_only_library_functions():
    assert CONTROLS
    assert controlled_functions() <= set(LIBRARY)


@pytest.mark.parametrize("path", CONTROLS, ids=[p.stem for p in CONTROLS])
def test_every_control_passes_by_default(path):
    report = run([str(path)], RunOptions(jobs=1, cache=False))
    bad = [f"{r.case} {r.check} {r.mode} {r.dtype}: {r.status} {r.message}" for r in report.results
           if r.status in ("fail", "error", "unstable", "xpass", "not_differentiable")]
    assert report.exit_code == 0 and not bad, "\n".join(bad[:10])
