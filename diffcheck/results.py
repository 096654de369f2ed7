"""The typed result model that flows from the checker to every writer (console, JSON,
Markdown, JUnit, GitHub annotations, baselines) and to pytest.

Writers take these types and know nothing about SymPy or torch. A :class:`Result` is a
frozen value: the checker builds it once, from a comparison (or a claim's verdict), and the
outcome policy (``xfail``, ``differentiable: false``) makes a *new* result with
:meth:`Result.with_outcome`; nothing mutates one afterwards. Every fact a writer reads is a
typed field: statuses and point classes are :class:`enum.StrEnum`\\ s (so the JSON bytes are
the plain strings), and the facts beyond the numbers are frozen dataclasses in
:class:`Details`. :meth:`Result.to_dict` is the JSON contract; :meth:`Result.from_dict`
reads it back (``diffcheck compare`` and ``diffcheck merge`` do).

The exit code of a run is computed in exactly one place: :meth:`RunReport.exit_code`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable, Mapping

try:
    from enum import StrEnum
except ImportError:  # Python 3.10
    class StrEnum(str, Enum):  # type: ignore[no-redef]
        """The members are their values as plain strings (``str()``, f-strings, JSON)."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return format(str(self.value), spec)

from .errors import CaseFileError, Location


class Status(StrEnum):
    """The verdict of one result. A point that is not a plain pass is also counted by its
    :class:`PointClass` in ``Result.counts`` (see :mod:`diffcheck.compare`)."""

    PASS = "pass"
    FAIL = "fail"
    XFAIL = "xfail"                  # failed, and the case says it is expected to
    XPASS = "xpass"                  # passed, but the case says it is expected to fail
    ERROR = "error"                  # torch raised, a limit stopped the case, a claim undecided
    KINK = "kink"                    # passed; torch's value is a valid one-sided choice at a kink
    SINGULAR = "singular"            # passed where defined; the exact value is infinite/undefined somewhere
    UNSTABLE = "unstable"            # exact value finite, torch NaN/inf or far off: a failure
    NOT_DIFFERENTIABLE = "not_differentiable"  # torch cannot differentiate it at all
    SKIPPED = "skipped"              # nothing to compare (e.g. no points)
    UNSUPPORTED = "unsupported"      # torch has no such mode for this code (forward mode of a custom
                                     # Function without jvp/setup_context); the message says why

    @property
    def failing(self) -> bool:
        return self in FAILING


class PointClass(StrEnum):
    """The outcome of one point, from best to worst (a point takes the worst class of its
    entries); :mod:`diffcheck.compare` decides them."""

    PASS = "pass"
    KINK = "kink"
    OVERFLOW = "overflow"
    UNDEFINED = "undefined"
    SINGULAR = "singular"
    UNSTABLE = "unstable"
    FAIL = "fail"
    RAISED = "raised"     # torch raised at this point (the others were computed): an error


# The statuses under their short names, as the checker and older code spell them.
PASS, FAIL, XFAIL, XPASS, ERROR = Status.PASS, Status.FAIL, Status.XFAIL, Status.XPASS, Status.ERROR
KINK, SINGULAR, UNSTABLE = Status.KINK, Status.SINGULAR, Status.UNSTABLE
NOT_DIFFERENTIABLE, SKIPPED, UNSUPPORTED = Status.NOT_DIFFERENTIABLE, Status.SKIPPED, Status.UNSUPPORTED

#: statuses that make a run fail (exit code 1)
FAILING = frozenset({FAIL, XPASS, ERROR, UNSTABLE, NOT_DIFFERENTIABLE})

#: from best to worst: a baseline comparison calls a move to the right a regression
SEVERITY = {PASS: 0, KINK: 0, SINGULAR: 0, SKIPPED: 0, UNSUPPORTED: 0, XFAIL: 1, XPASS: 2, FAIL: 3, UNSTABLE: 3,
            NOT_DIFFERENTIABLE: 3, ERROR: 4}

#: the ``check`` of a result that stands for a whole case stopped by a limit
CASE_CHECK = "case"

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERNAL, EXIT_NO_CASES = 0, 1, 2, 3, 5
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process ended by Ctrl-C


def _clean(x: Any) -> Any:
    """JSON-safe copy: non-finite floats become strings ("nan", "inf", "-inf"), tuples lists."""
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


def _float(x: Any) -> Any:
    """A JSON number back: ``"nan"``/``"inf"``/``"-inf"`` as floats, everything else as is."""
    if isinstance(x, str) and x in ("nan", "inf", "-inf"):
        return float(x)
    return x


class _Unset:
    """Marks a field that a writer leaves out of the JSON (not the same as a null)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()


# --- the details of a result ---------------------------------------------------------------

@dataclass(frozen=True)
class WorstPoint:
    """The point with the largest error ÷ allowed: the inputs, which output/input entry
    (``entry``, e.g. ``"d y[0] / d x[1]"``), the exact value and torch's, and the errors
    there (the ULP error is computed at the same point)."""

    point: dict[str, Any]
    entry: str
    reference: float
    autograd: float
    abs_error: float
    rel_error: float
    ulp_error: float
    formula: str | None = None  # the exact derivative of that entry, as text

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WorstPoint:
        return cls(point=d["point"], entry=d["entry"], reference=_float(d["reference"]),
                   autograd=_float(d["autograd"]), abs_error=_float(d["abs_error"]),
                   rel_error=_float(d["rel_error"]), ulp_error=_float(d["ulp_error"]),
                   formula=d.get("formula"))


@dataclass(frozen=True)
class KinkFinding:
    """torch's value at a kink point, against the one-sided limits there."""

    function: str
    check: str
    point: dict[str, Any]
    entry: str
    left: float
    right: float
    torch: float
    convention: str  # which one-sided choice torch made, or "outside the subdifferential"

    OUTSIDE = "outside the subdifferential"

    @property
    def outside(self) -> bool:
        return self.convention == self.OUTSIDE


@dataclass(frozen=True)
class SingularPoint:
    """A point where the exact value is infinite or undefined: what torch returned there and
    whether that is the limit both sides agree on."""

    point: dict[str, Any]
    entry: str
    exact: str          # "inf", "-inf" or "undefined"
    left: float
    right: float
    limit: str          # "+inf", "-inf" or "none"
    torch: float
    matches_limit: bool
    why: str = ""       # what the limits said: "pole", "undefined nearby", "unsettled"


@dataclass(frozen=True)
class LimitFinding:
    """An entry whose reference is its limit, not SymPy's value at the point (an undefined
    or infinite value there, or a branch's convention on a boundary): what torch returned."""

    point: dict[str, Any]
    entry: str
    exact: Any          # SymPy's value at the point: a number, or "inf", "-inf", "undefined"
    limit: float
    torch: float
    passed: bool


@dataclass(frozen=True)
class SearchHit:
    """What ``--search`` ran into: a failing point and the ``points:`` line that pins it.
    ``point`` None: the search ran and found nothing."""

    point: dict[str, Any] | None = None
    points_line: str | None = None
    stage: str | None = None

    def to_dict(self) -> dict:
        if self.point is None:
            return {"found": None}
        return {"point": self.point, "points_line": self.points_line, "stage": self.stage}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SearchHit:
        return cls(d.get("point"), d.get("points_line"), d.get("stage"))


@dataclass(frozen=True)
class ClaimRow:
    """One claimed number (or expression) of an ``expect`` claim, next to the exact value and
    torch's. ``holds`` None: undecided. The fields left UNSET are not written."""

    label: str
    claimed: Any
    exact: Any
    torch: Any
    holds: bool | None
    claim: Any = UNSET
    at: Any = UNSET
    exact_float: Any = UNSET
    method: Any = UNSET


@dataclass(frozen=True)
class DescentStep:
    """One iterate of a gradient-descent claim: claimed, exact and torch's values."""

    step: int
    claimed: dict[str, Any] | None
    exact: dict[str, Any]
    torch: dict[str, Any]
    holds: bool | None


def _row_dict(row: Any) -> dict:
    return {f.name: getattr(row, f.name) for f in dataclasses.fields(row)
            if getattr(row, f.name) is not UNSET}


def _row_from(cls: type, d: Mapping[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class Details:
    """The facts of a result beyond its numbers, each read by the writers by name.

    Empty tuples and UNSET fields are left out of the JSON, so a result carries only the
    keys that apply to it (a gradient has no ``trajectory``)."""

    kinks: tuple[KinkFinding, ...] = ()
    singular: tuple[SingularPoint, ...] = ()
    limits: tuple[LimitFinding, ...] = ()
    regions: tuple[str, ...] = ()        # unstable regions, described in words
    notes: tuple[str, ...] = ()          # how torch was run (a vmap fallback, …)
    search: SearchHit | None = None      # set when --search ran
    # claims (check "expect.*")
    claim: tuple[ClaimRow, ...] = ()
    method: Any = UNSET                  # identity claims: "symbolic" or "numeric"
    torch_dtype: Any = UNSET             # the dtype torch was run in for a claim
    trajectory: tuple[DescentStep, ...] = ()
    lr: Any = UNSET
    arithmetic: Any = UNSET              # how the exact descent was computed
    start: Any = UNSET                   # the descent's start point
    torch_error: Any = UNSET             # what torch raised during a descent

    _ROWS = {"kinks": KinkFinding, "singular": SingularPoint, "limits": LimitFinding, "claim": ClaimRow,
             "trajectory": DescentStep}

    def to_dict(self) -> dict:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is UNSET or value is None or (isinstance(value, tuple) and not value):
                continue
            if f.name in self._ROWS:
                out[f.name] = [_row_dict(row) for row in value]
            elif f.name == "search":
                out[f.name] = value.to_dict()
            else:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Details:
        kw: dict[str, Any] = {}
        names = {f.name for f in dataclasses.fields(cls)}
        for key, value in d.items():
            if key not in names:
                continue  # e.g. tolerance_ratio, original_status: fields of Result
            if key in cls._ROWS:
                value = tuple(_row_from(cls._ROWS[key], row) for row in value)
            elif key == "search":
                value = SearchHit.from_dict(value)
            elif key in ("regions", "notes"):
                value = tuple(value)
            kw[key] = value
        return cls(**kw)


NO_DETAILS = Details()


@dataclass(frozen=True, eq=False)
class PointProfile:
    """A result point by point, for the report's plots (kept, and written to the JSON, as
    its :class:`PlotData`):
    ``ratio`` is each point's worst error ÷ allowed over its entries (NaN where nothing was
    compared), ``classes`` each point's class (:class:`PointClass` values), and ``x`` the
    point's value when the case has one scalar variable (``variable``, on ``domain``)."""

    ratio: Any                      # numpy array (P,)
    classes: Any                    # numpy array (P,) of class names
    x: Any = None                   # numpy array (P,), or None
    variable: str | None = None
    domain: tuple[float, float] | None = None


#: error ÷ allowed below this (an exact 0 included) is drawn, and counted, at this height
PLOT_FLOOR = 1e-4
HISTOGRAM_BINS_PER_DECADE = 6
#: a domain series of more points is kept as its envelope: the largest error ÷ allowed in
#: each of this many equal bins of x (of asinh(x) on a domain wider than WIDE_DOMAIN)
SERIES_CAP = 1500
WIDE_DOMAIN = 1000
MARKS_CAP = 200    # points of one class (kink, singular, …) marked on a domain plot at most
X_DIGITS = 6       # significant digits kept of a point's x
RATIO_DIGITS = 3   # … and of its error ÷ allowed
MARKED = ("kink", "singular", "undefined", "overflow", "unstable")


def _rounded(values: Any, digits: int) -> tuple[float, ...]:
    return tuple(float(f"{v:.{digits}g}") for v in values.tolist())


@dataclass(frozen=True)
class PlotData:
    """What the report's plots draw of one result, compact and rounded, written to the JSON
    (``"plot"``) so that ``diffcheck merge`` draws from the shards' JSON the plots a single
    run draws: both draw from this, never from the points themselves.

    ``histogram`` is ``(first, counts)``: ``counts[i]`` points have an error ÷ allowed in
    bin ``first + i``, bin ``k`` holding ``[10^(k/B), 10^((k+1)/B))`` with ``B`` =
    :data:`HISTOGRAM_BINS_PER_DECADE` (ratios below :data:`PLOT_FLOOR` in its bin). For a
    case of one scalar variable, ``x`` and ``ratio`` are the points sorted by x with a finite
    ratio (the envelope of them beyond :data:`SERIES_CAP` points, ``envelope`` then true),
    ``marks`` the x of the points of each class of :data:`MARKED` (at most
    :data:`MARKS_CAP`), ``unstable`` the span of the unstable points."""

    histogram: tuple[int, tuple[int, ...]] = (0, ())
    x: tuple[float, ...] | None = None
    ratio: tuple[float, ...] = ()
    envelope: bool = False
    marks: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    unstable: tuple[float, float] | None = None
    variable: str | None = None
    domain: tuple[float, float] | None = None

    @classmethod
    def of(cls, profile: PointProfile) -> PlotData:
        """The plot data of the points of a result."""
        import numpy as np
        ratio = np.asarray(profile.ratio, dtype=np.float64).reshape(-1)
        finite = np.isfinite(ratio)
        histogram: tuple[int, tuple[int, ...]] = (0, ())
        if finite.any():
            with np.errstate(divide="ignore"):
                bins = np.floor(np.log10(np.maximum(ratio[finite], PLOT_FLOOR)) * HISTOGRAM_BINS_PER_DECADE)
            bins = bins.astype(np.int64)
            first = int(bins.min())
            histogram = (first, tuple(int(n) for n in np.bincount(bins - first)))
        if profile.x is None:
            return cls(histogram=histogram)
        x = np.asarray(profile.x, dtype=np.float64).reshape(-1)
        classes = np.asarray(profile.classes).reshape(-1)
        order = np.argsort(x, kind="stable")
        x, ratio, classes, finite = x[order], ratio[order], classes[order], finite[order]
        domain = tuple(float(d) for d in profile.domain) if profile.domain is not None else None
        sx, sy, envelope = x[finite], ratio[finite], False
        if len(sx) > SERIES_CAP:
            sx, sy, envelope = (*_envelope(sx, sy, domain is not None and domain[1] - domain[0] > WIDE_DOMAIN), True)
        marks = {}
        for name in MARKED:
            at = classes == name
            if at.any():
                marks[name] = _rounded(np.unique(x[at])[:MARKS_CAP], X_DIGITS)
        unstable = None
        if (classes == "unstable").any():
            lo, hi = x[classes == "unstable"].min(), x[classes == "unstable"].max()
            unstable = _rounded(np.array([lo, hi]), X_DIGITS)
        return cls(histogram=histogram, x=_rounded(sx, X_DIGITS), ratio=_rounded(sy, RATIO_DIGITS),
                   envelope=envelope, marks=marks, unstable=unstable, variable=profile.variable,
                   domain=domain)

    def to_dict(self) -> dict:
        first, counts = self.histogram
        out: dict[str, Any] = {"histogram": {"first": first, "counts": list(counts)}}
        if self.x is not None:
            out.update(x=list(self.x), ratio=list(self.ratio), variable=self.variable,
                       domain=list(self.domain) if self.domain is not None else None,
                       marks={k: list(v) for k, v in self.marks.items()},
                       unstable=list(self.unstable) if self.unstable is not None else None,
                       envelope=self.envelope)
        return {k: v for k, v in out.items() if v is not None and v != {}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlotData:
        h = d.get("histogram") or {}
        x = d.get("x")
        return cls(histogram=(int(h.get("first", 0)), tuple(int(n) for n in h.get("counts") or ())),
                   x=tuple(float(v) for v in x) if x is not None else None,
                   ratio=tuple(float(v) for v in d.get("ratio") or ()), envelope=bool(d.get("envelope")),
                   marks={str(k): tuple(float(v) for v in vs) for k, vs in (d.get("marks") or {}).items()},
                   unstable=tuple(float(v) for v in d["unstable"]) if d.get("unstable") else None,
                   variable=d.get("variable"),
                   domain=tuple(float(v) for v in d["domain"]) if d.get("domain") else None)


def _envelope(x: Any, y: Any, wide: bool) -> tuple[Any, Any]:
    """The largest y in each of SERIES_CAP equal bins of x (of asinh(x) when ``wide``), at
    the middle of its bin."""
    import numpy as np
    t = np.arcsinh(x) if wide else x
    edges = np.linspace(t.min(), t.max(), SERIES_CAP + 1)
    which = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, SERIES_CAP - 1)
    top = np.full(SERIES_CAP, -np.inf)
    np.maximum.at(top, which, y)
    keep = np.isfinite(top)
    middle = (edges[:-1] + edges[1:]) / 2
    return (np.sinh(middle) if wide else middle)[keep], top[keep]


# --- results ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Result:
    """One case × check × mode × dtype (or one claim, with ``check == "expect.<kind>"``).

    Frozen: built once by the checker; :meth:`with_outcome` and :meth:`timed` return new
    results."""

    case: str
    file: str
    check: str
    mode: str | None
    dtype: str | None
    status: Status
    points: int = 0                      # points compared
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    max_ulp_error: float | None = None
    worst_point: WorstPoint | None = None
    message: str | None = None           # what happened, in one or two sentences
    counts: Mapping[str, int] = field(default_factory=dict)  # point class -> points
    tolerance: Mapping[str, float] | None = None
    details: Details = NO_DETAILS
    ratio: float | None = None           # worst error ÷ allowed: the number that decides
    original_status: Status | None = None  # before xfail / differentiable: false changed it
    seconds: float = 0.0
    #: what the plots draw (a PointProfile given is kept as its PlotData)
    profile: PlotData | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.profile, PointProfile):
            object.__setattr__(self, "profile", PlotData.of(self.profile))
        if not isinstance(self.status, Status):
            object.__setattr__(self, "status", Status(self.status))
        if self.original_status is not None and not isinstance(self.original_status, Status):
            object.__setattr__(self, "original_status", Status(self.original_status))
        if isinstance(self.details, Mapping):
            details = dict(self.details)
            if "tolerance_ratio" in details and self.ratio is None:
                object.__setattr__(self, "ratio", _float(details["tolerance_ratio"]))
            if details.get("original_status") and self.original_status is None:
                object.__setattr__(self, "original_status", Status(details["original_status"]))
            object.__setattr__(self, "details", Details.from_dict(details))

    @property
    def failed(self) -> bool:
        return self.status in FAILING

    @property
    def compared(self) -> bool:
        """Whether points were compared against a tolerance (not a claim, a skip or an error)."""
        return self.tolerance is not None

    @property
    def stopped(self) -> bool:
        """A whole case stopped by a limit (time, memory) or a crash."""
        return self.check == CASE_CHECK and self.status == ERROR

    @property
    def failed_as_expected(self) -> bool:
        """An xfail whose original status was a failure."""
        return self.status == XFAIL and self.original_status in FAILING

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """What identifies a result across runs: (file, case, check, mode, dtype)."""
        return (self.file, self.case, self.check, self.mode or "", self.dtype or "")

    def with_outcome(self, status: Status, message: str | None) -> Result:
        """This result judged again by the case's outcome policy, remembering the status the
        comparison gave."""
        return dataclasses.replace(self, status=status, message=message,
                                   original_status=self.original_status or self.status)

    def timed(self, seconds: float) -> Result:
        return dataclasses.replace(self, seconds=seconds)

    def to_dict(self) -> dict:
        details = self.details.to_dict()
        if self.original_status is not None:
            details["original_status"] = str(self.original_status)
        if self.compared:
            details["tolerance_ratio"] = self.ratio
        return _clean({
            "case": self.case, "file": self.file, "check": self.check, "mode": self.mode,
            "dtype": self.dtype, "status": str(self.status), "points": self.points,
            "max_abs_error": self.max_abs_error, "max_rel_error": self.max_rel_error,
            "max_ulp_error": self.max_ulp_error,
            "worst_point": self.worst_point.to_dict() if self.worst_point is not None else None,
            "message": self.message, "counts": dict(self.counts),
            "tolerance": dict(self.tolerance) if self.tolerance is not None else None,
            "details": details, "seconds": self.seconds,
            **({"plot": self.profile.to_dict()} if self.profile is not None else {}),
        })

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Result:
        """A result read back from :meth:`to_dict`'s JSON."""
        worst = d.get("worst_point")
        details = dict(d.get("details") or {})
        return cls(
            case=d["case"], file=d["file"], check=d["check"], mode=d.get("mode"), dtype=d.get("dtype"),
            status=Status(d["status"]), points=d.get("points", 0),
            max_abs_error=_float(d.get("max_abs_error")), max_rel_error=_float(d.get("max_rel_error")),
            max_ulp_error=_float(d.get("max_ulp_error")),
            worst_point=WorstPoint.from_dict(worst) if worst else None,
            message=d.get("message"), counts=dict(d.get("counts") or {}),
            tolerance=d.get("tolerance"), details=Details.from_dict(details),
            ratio=_float(details.get("tolerance_ratio")),
            original_status=Status(details["original_status"]) if details.get("original_status") else None,
            seconds=d.get("seconds", 0.0),
            profile=PlotData.from_dict(d["plot"]) if d.get("plot") else None,
        )


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
    line: int | None = None              # where the case starts in its file
    seed: int | None = None              # the seed its random points were drawn with

    @property
    def status(self) -> Status:
        return case_status(self.results)

    @classmethod
    def for_case(cls, case: Any, seed: int | None = None, **fields: Any) -> CaseReport:
        """An empty report of ``case`` (a :class:`diffcheck.case.Case`); ``seed`` is the run's
        ``--seed``, which overrides the case's own."""
        location = getattr(case, "location", None)
        return cls(name=case.name, file=case.file, description=case.description, expr=case.expr,
                   xfail=case.xfail, line=location.line if location is not None and location.line > 0 else None,
                   seed=case.seed if seed is None else seed, **fields)

    @property
    def where(self) -> str:
        """``file:line`` of the case (just the file when the line is not known)."""
        return f"{self.file}:{self.line}" if self.line else self.file

    @property
    def worst_ratio(self) -> float | None:
        """The largest error ÷ allowed of its compared results."""
        ratios = [r.ratio for r in self.results if r.compared and r.ratio is not None]
        return max(ratios) if ratios else None

    def summary(self) -> dict:
        """The per-case summary of the JSON (``"cases"``): everything but the results, which
        are listed once, under ``"results"``."""
        counts: dict[str, int] = {}
        for r in self.results:
            counts[str(r.status)] = counts.get(str(r.status), 0) + 1
        return _clean({
            "name": self.name, "file": self.file, "line": self.line, "status": str(self.status),
            "results": len(self.results), "counts": counts, "worst_ratio": self.worst_ratio,
            "seed": self.seed, "xfail": self.xfail, "description": self.description, "expr": self.expr,
            "expr_latex": self.expr_latex, "derivatives_latex": [list(d) for d in self.derivatives_latex],
            "seconds": self.seconds,
        })

    @classmethod
    def from_summary(cls, d: Mapping[str, Any], results: list[Result]) -> CaseReport:
        return cls(name=d["name"], file=d["file"], description=d.get("description"), expr=d.get("expr"),
                   expr_latex=d.get("expr_latex"),
                   derivatives_latex=[tuple(x) for x in d.get("derivatives_latex") or []],
                   results=results, xfail=d.get("xfail"), seconds=d.get("seconds", 0.0), line=d.get("line"),
                   seed=d.get("seed"))


def case_status(results: Iterable[Result]) -> Status:
    """The verdict of a case from its results: fail if any failed, else xfail if any is an
    xfail, else pass."""
    statuses = [r.status for r in results]
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
    #: the run was stopped (Ctrl-C, SIGTERM) before every case was checked
    interrupted: bool = False
    #: the names of the cases not checked because the run was interrupted
    not_run: list[str] = field(default_factory=list)
    shard: str | None = None             # "K/N" when this run checked one shard of the cases
    baseline: Any = None                 # a diffcheck.baseline.BaselineDiff (run --baseline)

    @property
    def exit_code(self) -> int:
        """0 every case passed (xfail cases failed as expected); 1 a case failed, or a case
        regressed against the baseline; 2 an invalid case file; 3 an internal error; 5 no case
        found; 130 the run was interrupted (Ctrl-C, SIGTERM). When several apply, the
        highest-priority one wins: 130, then 3, then 2, then 1."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.internal_errors:
            return EXIT_INTERNAL
        if self.errors:
            return EXIT_INVALID
        if any(r.failed for r in self.results):
            return EXIT_FAILED
        if self.baseline is not None and self.baseline.regressions:
            return EXIT_FAILED
        if not self.cases:
            return EXIT_NO_CASES
        return EXIT_OK

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[str(r.status)] = out.get(str(r.status), 0) + 1
        return out

    @property
    def seeds(self) -> list[int]:
        """The seeds the cases' random points were drawn with (each case's own, or --seed)."""
        return sorted({c.seed for c in self.cases if c.seed is not None})

    def to_dict(self) -> dict:
        d = {
            "version": 1,
            "seed": self.seed,
            "seeds": self.seeds,
            "versions": self.versions,
            "exit_code": self.exit_code,
            "counts": self.counts(),
            "cases": [c.summary() for c in self.cases],
            "results": [r.to_dict() for r in self.results],
            "errors": [e.to_dict() for e in self.errors],
            "internal_errors": list(self.internal_errors),
            "seconds": self.seconds,
            **({"interrupted": True, "not_run": list(self.not_run)} if self.interrupted else {}),
        }
        if self.shard is not None:
            d["shard"] = self.shard
        return _clean(d)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunReport:
        """A run read back from its JSON (``diffcheck compare`` and ``merge`` read runs so).
        Raises ValueError when ``d`` is not a diffcheck JSON report."""
        if not isinstance(d, Mapping) or d.get("version") != 1 or not isinstance(d.get("results"), list):
            raise ValueError("not a diffcheck JSON report (expected {\"version\": 1, \"results\": [...]})")
        results = [Result.from_dict(r) for r in d["results"]]
        by_case: dict[tuple[str, str], list[Result]] = {}
        for r in results:
            by_case.setdefault((r.file, r.case), []).append(r)
        summaries = d.get("cases")
        if summaries is None:  # a report written before the per-case summary: one case per name
            summaries = [{"name": name, "file": file} for file, name in by_case]
        cases = [CaseReport.from_summary(c, by_case.get((c["file"], c["name"]), [])) for c in summaries]
        errors = []
        for e in d.get("errors") or []:
            where = Location(e["file"], e.get("line") or 0, e.get("column") or 0) if e.get("file") else None
            errors.append(CaseFileError(e["message"], where, e.get("hint"), case=e.get("case")))
        return cls(results=results, cases=cases, errors=errors, internal_errors=list(d.get("internal_errors") or []),
                   seed=d.get("seed"), versions=dict(d.get("versions") or {}), seconds=d.get("seconds", 0.0),
                   interrupted=bool(d.get("interrupted")), not_run=list(d.get("not_run") or []),
                   shard=d.get("shard"))


def merge_reports(reports: Iterable[RunReport]) -> RunReport:
    """Runs of shards of one suite joined into the run of the whole suite: cases in the order a
    single run lists them (files sorted, then by line), each case-file error once. The
    versions are the first run's; the seconds those of the longest (the shards ran side by
    side)."""
    reports = list(reports)
    cases = [c for r in reports for c in r.cases]
    order = {id(c): i for i, c in enumerate(cases)}
    cases.sort(key=lambda c: (c.file, c.line or 0, order[id(c)]))
    errors, seen = [], set()
    for r in reports:
        for e in r.errors:
            key = (str(e.location), e.message, e.hint, e.case)
            if key not in seen:
                seen.add(key)
                errors.append(e)
    errors.sort(key=lambda e: (e.location.file, e.location.line, e.location.column) if e.location else ("", 0, 0))
    return RunReport(
        results=[res for c in cases for res in c.results], cases=cases, errors=errors,
        internal_errors=[e for r in reports for e in r.internal_errors],
        seed=reports[0].seed if reports else None, versions=dict(reports[0].versions) if reports else {},
        seconds=max((r.seconds for r in reports), default=0.0),
        interrupted=any(r.interrupted for r in reports), not_run=[n for r in reports for n in r.not_run])
