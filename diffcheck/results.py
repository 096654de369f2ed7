"""Plain result types that flow from the checker to the console, JSON, markdown and pytest.

Writers take these and know nothing about SymPy or torch. The exit code of a run is
computed in exactly one place: :meth:`RunReport.exit_code`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import CaseFileError

# Result statuses. A point that is not a plain pass is also counted by its outcome class in
# ``Result.counts`` (see diffcheck.compare for what each means).
PASS, FAIL, XFAIL, XPASS, ERROR = "pass", "fail", "xfail", "xpass", "error"
KINK = "kink"                        # passed, torch's value is a valid one-sided choice at a kink
SINGULAR = "singular"                # passed where defined; the exact derivative is infinite/undefined at some points
UNSTABLE = "unstable"                # exact value finite, torch NaN/inf or far off: a failure
NOT_DIFFERENTIABLE = "not_differentiable"  # torch cannot differentiate it at all
SKIPPED = "skipped"                  # nothing to compare (e.g. no let steps for intermediates)

#: statuses that make a run fail (exit code 1)
FAILING = frozenset({FAIL, XPASS, ERROR, UNSTABLE, NOT_DIFFERENTIABLE})

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERNAL, EXIT_NO_CASES = 0, 1, 2, 3, 5


def _clean(x: Any) -> Any:
    """JSON-safe copy: non-finite floats become strings ("nan", "inf", "-inf")."""
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


@dataclass
class WorstPoint:
    """The point with the largest error: the inputs, which output/input entry (``entry``,
    e.g. ``"d y[0] / d x[1]"``), the exact value and torch's."""

    point: dict[str, Any]
    entry: str
    reference: float
    autograd: float
    abs_error: float
    rel_error: float
    ulp_error: float
    formula: str | None = None  # the exact derivative of that entry, as text


@dataclass
class Result:
    """One case × check × mode × dtype (or one claim, with ``check == "expect.<kind>"``)."""

    case: str
    file: str
    check: str
    mode: str | None
    dtype: str | None
    status: str
    points: int = 0                      # points compared
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    max_ulp_error: float | None = None
    worst_point: WorstPoint | None = None
    message: str | None = None           # what happened, in one or two sentences
    counts: dict[str, int] = field(default_factory=dict)  # outcome class -> points
    tolerance: dict[str, float] | None = None
    details: dict[str, Any] = field(default_factory=dict)  # extra, writer-specific facts
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status in FAILING

    def to_dict(self) -> dict:
        d = asdict(self)
        return _clean(d)


@dataclass
class CaseReport:
    """Everything known about one case after checking it."""

    name: str
    file: str
    description: str | None = None
    expr: str | None = None              # the case's expression text
    expr_latex: str | None = None
    derivatives_latex: list[tuple[str, str]] = field(default_factory=list)  # (label, latex)
    results: list[Result] = field(default_factory=list)
    xfail: str | None = None
    seconds: float = 0.0

    @property
    def status(self) -> str:
        statuses = [r.status for r in self.results]
        if any(s in FAILING for s in statuses):
            return FAIL
        if any(s == XFAIL for s in statuses):
            return XFAIL
        return PASS


@dataclass
class RunReport:
    """A whole run: every result, every case-file error, and the facts of the run."""

    results: list[Result] = field(default_factory=list)
    cases: list[CaseReport] = field(default_factory=list)
    errors: list[CaseFileError] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)
    seed: int | None = None
    versions: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 every case passed (xfail cases failed as expected); 1 a case failed;
        2 an invalid case file; 3 an internal error; 5 no case found.
        When several apply, the highest-priority one wins: 3, then 2, then 1."""
        if self.internal_errors:
            return EXIT_INTERNAL
        if self.errors:
            return EXIT_INVALID
        if any(r.failed for r in self.results):
            return EXIT_FAILED
        if not self.cases:
            return EXIT_NO_CASES
        return EXIT_OK

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def to_dict(self) -> dict:
        return _clean({
            "version": 1,
            "seed": self.seed,
            "versions": self.versions,
            "exit_code": self.exit_code,
            "counts": self.counts(),
            "results": [r.to_dict() for r in self.results],
            "errors": [e.to_dict() for e in self.errors],
            "internal_errors": list(self.internal_errors),
        })
