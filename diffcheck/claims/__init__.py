"""``expect``: claims about a case, checked against its exact derivative.

:func:`check_claims` turns the ``expect`` mapping of a compiled case into results whose
``check`` is ``expect.<kind>``:

* ``derivative``, ``gradient``, ``jacobian`` — an identity, written in the case language,
  claimed for the exact derivative. It holds when the difference simplifies to zero
  (method ``symbolic``) or, where simplification cannot decide, when it vanishes at many
  seeded random points evaluated with 50 significant digits (method ``numeric``).
* ``values`` — numbers claimed at points: the function's ``value``, its ``derivative``,
  ``gradient``, ``jacobian`` and ``intermediates`` (d output / d let step). A claimed number
  holds when the exact value, rounded half-even to the decimal places written, equals it
  exactly: ``-21.44`` against an exact ``-536/25`` holds, ``72`` against ``24`` fails.
* ``differentiable`` — ``false``: torch cannot differentiate the function (it raises, or the
  output has no gradient path); ``true``: it can.
* ``descent`` — gradient-descent steps ``x ← x − lr·∇f(x)`` from ``start``, run in exact
  arithmetic and with torch autograd side by side; each claimed step is a number claim.

Numbers written in a claim, the ``at`` points and ``start`` are read as the exact decimal
they are written as (``0.1`` is 1/10), and so are constants. torch's values are computed by
the case's own torch implementation in the case's first dtype (float64 unless the case says
otherwise); they are shown beside the claim, the verdict is the exact value's alone.

The loader validates the structure of every claim when the file is read (all of a file's
bad claims at once, see diffcheck.loader); what needs the compiled case (a claim's shape
against the output's, a `derivative` of a vector function) is a :class:`CaseFileError` placed
at ``expect.<kind>`` here. One module per kind: identity.py, values.py, differentiable.py,
descent.py; numbers.py (numbers as written, exact values) and context.py (what every claim
reads) serve them.
"""

from __future__ import annotations

from typing import Mapping

from ..results import Result
from ..symbolic import CompiledCase
from .descent import descent_claim
from .differentiable import differentiable_claim
from .identity import decide_identity, identity_claim
from .numbers import Exact, decimals, exact_number, round_half_even
from .values import VALUE_KINDS, values_claim

__all__ = ["KINDS", "VALUE_KINDS", "Exact", "check_claims", "decide_identity", "decimals", "exact_number",
           "round_half_even"]

KINDS = ("derivative", "gradient", "jacobian", "values", "differentiable", "descent")


def check_claims(compiled: CompiledCase) -> list[Result]:
    """One or more results per claim of ``compiled.case.expect`` (empty without claims), in
    the order of KINDS. The claims are as the loader validated them: a mapping of known kinds,
    `values` and `descent` non-empty lists (one `descent` claim may be a mapping)."""
    expect = compiled.case.expect or {}
    results: list[Result] = []
    for kind in ("derivative", "gradient", "jacobian"):
        if kind in expect:
            results.append(identity_claim(compiled, kind, expect[kind]))
    for i, entry in enumerate(expect.get("values") or ()):
        results.append(values_claim(compiled, entry, f"expect.values.{i}"))
    if "differentiable" in expect:
        results.append(differentiable_claim(compiled, expect["differentiable"]))
    runs = expect.get("descent")
    if isinstance(runs, Mapping):
        results.append(descent_claim(compiled, runs, "expect.descent"))
    else:
        for i, run in enumerate(runs or ()):
            results.append(descent_claim(compiled, run, f"expect.descent.{i}"))
    return results
