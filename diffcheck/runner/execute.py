"""The execution contract: one case (or one part of a case) checked under its limits, with
one typed :class:`Outcome`.

The CLI, the worker processes, the pytest plugin and the Python API all go through
:func:`run_case` / :func:`run_part` (in the process that checks the case) and read an
:class:`Outcome`. Where the case runs — in a worker process (the default) or in the calling
process (``--in-process``) — is :mod:`diffcheck.runner.parallel`'s business.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Callable, Sequence

from ..case import Case
from ..errors import CaseFileError, CaseTimeout
from ..pipeline import CheckOptions, check_case, check_part, finish_case, prepare
from ..results import CASE_CHECK, ERROR, CaseReport, Result
from . import limits, state


@dataclass
class Outcome:
    """What checking a case (or a part of one) gave: exactly one of a report, a case-file
    error or an internal error (a bug of diffcheck, with its traceback). A case stopped by a
    limit, a signal or a change of torch's state is a report holding one ``error`` result of
    check ``case`` (:meth:`stopped`)."""

    report: CaseReport | None = None
    error: CaseFileError | None = None
    internal: str | None = None
    #: the case changed torch's global state: the process that checked it is not clean
    tainted: bool = False

    @classmethod
    def stopped(cls, case: Case, message: str, tainted: bool = False) -> "Outcome":
        report = CaseReport.for_case(case)
        report.results.append(Result(case=case.name, file=case.file, check=CASE_CHECK, mode=None, dtype=None,
                                     status=ERROR, message=message))
        return cls(report=report, tainted=tainted)

    @property
    def is_stopped(self) -> bool:
        """Stopped by a limit, a signal or a state change (not a verdict on the derivatives)."""
        return self.report is not None and any(r.stopped for r in self.report.results)

    @property
    def verdict(self) -> str:
        """``invalid``, ``internal``, ``stopped``, ``failed`` (a failing status, after xfail)
        or ``passed``; for an xfail case, ``failed`` means it failed as it expected to."""
        if self.error is not None:
            return "invalid"
        if self.internal is not None:
            return "internal"
        if self.is_stopped:
            return "stopped"
        assert self.report is not None
        if self.report.xfail:
            expected = any(r.failed_as_expected for r in self.report.results)
            return "failed" if expected else "passed"
        return "failed" if any(r.failed for r in self.report.results) else "passed"


@dataclass(frozen=True)
class Limits:
    """The limits one check runs under: seconds (None: the case's timeout), and the memory
    its process may add (``extra``) and never pass (``ceiling``)."""

    seconds: float | None = None
    extra: int | None = None
    ceiling: int | None = None


def run_case(case: Case, options: CheckOptions, limits_: Limits | None = None,
             guard_state: bool = True) -> Outcome:
    """Check a whole case in this process under its time and memory limits."""
    return run_part(case, None, options, formulas=False, limits_=limits_, guard_state=guard_state,
                    whole=True)


_COMPILED: dict[object, tuple[Case, object]] = {}


def _compiled(case: Case, key: object, options: CheckOptions):
    """The compiled case, kept for the next part of the same case in this process."""
    kept = _COMPILED.get(key)
    if kept is not None and _same_case(kept[0], case):
        return kept[1]
    compiled = prepare(case, options.cache)
    _COMPILED.clear()
    _COMPILED[key] = (case, compiled)
    return compiled


def _same_case(a: Case, b: Case) -> bool:
    try:
        return a is b or bool(a == b)
    except Exception:  # a field that does not compare (an array): compile again
        return False


def run_part(case: Case, part: str | None, options: CheckOptions, formulas: bool = False,
             limits_: Limits | None = None, guard_state: bool = True, whole: bool = False,
             key: object = None) -> Outcome:
    """One part of a case (a dtype, or its claims: pipeline.case_parts) under the case's
    limits, as :func:`run_case` reports a whole case; ``formulas`` adds the case's LaTeX.
    ``limits_.seconds``: what the case's other parts have left of its limit. ``key``
    identifies the case across parts, so it is compiled once per process.
    :func:`merge_parts` makes the case's outcome from its parts'."""
    def work() -> CaseReport:
        if whole:
            return check_case(case, options)
        compiled = _compiled(case, key if key is not None else id(case), options)
        report = check_part(case, part, options, compiled)
        if formulas:
            shown = check_part(case, None, options, compiled)
            report.expr_latex, report.derivatives_latex = shown.expr_latex, shown.derivatives_latex
        return report
    return guarded(case, work, limits_ or Limits(), guard_state)


def guarded(case: Case, work: Callable[[], CaseReport], limits_: Limits, guard_state: bool = True) -> Outcome:
    """``work()`` under the case's time and memory limits, with torch's global state compared
    before and after (``guard_state``); never raises for what the case does."""
    seconds = case.timeout if limits_.seconds is None else limits_.seconds
    extra = limits_.extra if limits_.extra is not None else limits.case_memory()
    before = state.snapshot() if guard_state else None
    try:
        with limits.time_limit(seconds, case.timeout), limits.memory_limit(extra, limits_.ceiling):
            outcome = Outcome(report=work())
    except CaseFileError as err:
        outcome = Outcome(error=err)
    except CaseTimeout as err:
        outcome = Outcome.stopped(case, str(err))
    except MemoryError:
        outcome = Outcome.stopped(case, "the case ran out of memory (its limit is DIFFCHECK_CASE_MEMORY)")
    except RecursionError:
        outcome = Outcome.stopped(case, "the case nested calls too deeply (RecursionError)")
    except Exception as err:  # a bug in diffcheck: keep the other cases, report it as internal
        if _out_of_memory(err):  # torch's allocator, refused by the memory limit inside diffcheck's own code
            outcome = Outcome.stopped(case, f"the case ran out of memory (its limit is DIFFCHECK_CASE_MEMORY): {str(err)[:300]}")
        else:
            outcome = Outcome(internal=f"case {case.name!r} ({case.file}): {traceback.format_exc(limit=8)}")
    if before is not None:
        found = state.changes(before)
        if found:
            state.restore(before)
            outcome = Outcome.stopped(case, state.describe(found), tainted=True)
    return outcome


def _out_of_memory(err: Exception) -> bool:
    text = str(err)
    return isinstance(err, RuntimeError) and ("can't allocate memory" in text or "not enough memory" in text)


def merge_parts(case: Case, outcomes: Sequence[Outcome]) -> Outcome:
    """The outcome of a whole case from its parts' outcomes (in case_parts order): what
    :func:`run_case` gives for the case. An internal error or a case-file error in any part
    is the case's; a part stopped by a limit is the case's report, alone, as when the whole
    case is stopped."""
    for outcome in outcomes:
        if outcome.internal is not None:
            return Outcome(internal=outcome.internal)
    for outcome in outcomes:
        if outcome.error is not None:
            return Outcome(error=outcome.error)
    for outcome in outcomes:
        if outcome.is_stopped:
            return Outcome(report=outcome.report)
    merged = CaseReport.for_case(case)
    for outcome in outcomes:
        report = outcome.report
        merged.expr_latex = merged.expr_latex or report.expr_latex
        merged.derivatives_latex = merged.derivatives_latex or report.derivatives_latex
        merged.results.extend(report.results)
        merged.seconds += report.seconds
    return Outcome(report=finish_case(case, merged))
