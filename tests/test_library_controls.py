"""The controls of cases/library/: every library function has one.

A control checks torch's own kernel against the exact definition in every dtype torch has for
the function, every mode, at random points and at its special points; a control that cannot
pass is an ``xfail`` whose reason says why (a measured torch deviation, or a named false alarm
of diffcheck).
"""

from __future__ import annotations

from pathlib import Path

from diffcheck.language import Call, _children, parse
from diffcheck.language.library import LIBRARY
from diffcheck.loader import load_paths

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

# That every control passes by default is tests/test_end_to_end.py::test_the_shipped_suite_passes
# (it runs all of cases/, cases/library/ included); running them twice would double their cost.
