"""Running many cases: load, filter, check each under its time and memory limits, collect a
RunReport.

Bad input never loses other results: a case that fails to compile becomes a case-file error
and the other cases still run; an unexpected exception inside one case is recorded as an
internal error for that case, and the run goes on.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Sequence


from ..symbolic import cache
from ..case import Case
from ..pipeline import CheckOptions, case_parts, check_case, check_part, finish_case, prepare
from ..environment import versions
from ..errors import CaseFileError, CaseTimeout
from .keyword import matches
from ..loader import load_paths
from ..results import CASE_CHECK, ERROR, FAIL, CaseReport, Result, RunReport


@dataclass
class RunOptions:
    keyword: str | None = None
    dtypes: tuple[str, ...] = ()
    seed: int | None = None
    fail_fast: bool = False
    verbose: int = 0
    device: str = "cpu"
    search: bool = False
    jobs: int = 1
    cache: bool = True

    def check_options(self) -> CheckOptions:
        return CheckOptions(dtypes=self.dtypes, seed=self.seed, device=self.device, verbose=self.verbose,
                            search=self.search)


def list_cases(paths: Sequence[str], keyword: str | None = None) -> tuple[list[Case], list[CaseFileError]]:
    """The cases under ``paths`` (filtered by a -k expression) and the case-file errors."""
    cases, errors = load_paths(paths)
    if keyword:
        cases = [c for c in cases if matches(keyword, c.name)]
    return cases, errors


@contextmanager
def time_limit(seconds: float, limit: float | None = None):
    """Raise CaseTimeout in this thread after ``seconds`` (main thread on POSIX only); the
    message names ``limit`` (default ``seconds``): a part of a case gets what is left of it.

    An alarm the caller has set (pytest-timeout's signal method, say) still goes off when it
    is due: if it is due first, its own handler runs then, and the case's limit after it;
    if not, it is set again after the block for the time it has left."""
    usable = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not usable or seconds <= 0:
        yield
        return
    started = time.monotonic()
    previous = signal.getsignal(signal.SIGALRM)
    outer, _ = signal.getitimer(signal.ITIMER_REAL)  # seconds until the caller's alarm; 0: none
    pending = [bool(outer) and outer < seconds]       # the caller's alarm is due first

    def expire(signum, frame):
        if pending[0]:  # the caller's alarm: its handler, then ours for the time we have left
            pending[0] = False
            signal.setitimer(signal.ITIMER_REAL, max(seconds - (time.monotonic() - started), 1e-3))
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:  # what the signal would have done: end the process
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGALRM)
            return
        raise CaseTimeout(f"the case ran longer than its time limit of {limit or seconds:g} s")

    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, outer if pending[0] else seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer and (pending[0] or outer >= seconds):  # the caller's alarm has not gone off: again
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 1e-3))


def run_case(case: Case, options: RunOptions) -> tuple[CaseReport | None, CaseFileError | None, str | None]:
    """Check one case: (report, case-file error, internal error text) — exactly one is set,
    except that a timed-out case gives a report holding an error result."""
    return _guarded(case, lambda: check_case(case, options.check_options()))


def run_part(case: Case, part: str, options: RunOptions, formulas: bool = False,
             seconds: float | None = None) -> tuple[CaseReport | None, CaseFileError | None, str | None]:
    """One part of a case (a dtype, or its claims: check.case_parts) under the case's time
    limit, as :func:`run_case` reports a whole case; ``formulas`` adds the case's LaTeX.
    ``seconds``: what the case's other parts have left of its limit (the limit is the whole
    case's; parallel.run_parallel keeps the count). :func:`merge_parts` makes the case's report from its
    parts'."""
    def work() -> CaseReport:
        compiled = _compiled(case)
        report = check_part(case, part, options.check_options(), compiled)
        if formulas:
            shown = check_part(case, None, options.check_options(), compiled)
            report.expr_latex, report.derivatives_latex = shown.expr_latex, shown.derivatives_latex
        return report
    return _guarded(case, work, seconds)


_COMPILED: dict[int, tuple[Case, object]] = {}


def _compiled(case: Case):
    """The compiled case, kept for the next part of the same case in this process."""
    kept = _COMPILED.get(id(case))
    if kept is not None and kept[0] is case:
        return kept[1]
    compiled = prepare(case)
    _COMPILED.clear()
    _COMPILED[id(case)] = (case, compiled)
    return compiled


def merge_parts(case: Case, outcomes: Sequence[tuple]) -> tuple[CaseReport | None, CaseFileError | None,
                                                                  str | None]:
    """The outcome of a whole case from its parts' outcomes (in case_parts order): what
    :func:`run_case` gives for the case. An internal error or a case-file error in any part
    is the case's; a part stopped by the time or memory limit is the case's report, alone, as
    when the whole case is stopped."""
    for _, _, internal in outcomes:
        if internal is not None:
            return None, None, internal
    for _, error, _ in outcomes:
        if error is not None:
            return None, error, None
    for report, _, _ in outcomes:
        if any(r.stopped for r in report.results):
            return report, None, None
    merged = CaseReport(name=case.name, file=case.file, description=case.description, expr=case.expr,
                        xfail=case.xfail)
    for report, _, _ in outcomes:
        merged.expr_latex = merged.expr_latex or report.expr_latex
        merged.derivatives_latex = merged.derivatives_latex or report.derivatives_latex
        merged.results.extend(report.results)
        merged.seconds += report.seconds
    return finish_case(case, merged), None, None


def _guarded(case: Case, work: Callable[[], CaseReport],
             seconds: float | None = None) -> tuple[CaseReport | None, CaseFileError | None, str | None]:
    from .parallel import case_memory, memory_limit
    try:
        with time_limit(case.timeout if seconds is None else seconds, case.timeout), memory_limit(case_memory()):
            return work(), None, None
    except CaseFileError as err:
        return None, err, None
    except CaseTimeout as err:
        report = CaseReport(name=case.name, file=case.file, description=case.description, expr=case.expr)
        report.results.append(Result(case=case.name, file=case.file, check=CASE_CHECK, mode=None, dtype=None,
                                     status=ERROR, message=str(err)))
        return report, None, None
    except MemoryError:
        report = CaseReport(name=case.name, file=case.file, expr=case.expr)
        report.results.append(Result(case=case.name, file=case.file, check=CASE_CHECK, mode=None, dtype=None,
                                     status=ERROR, message="the case ran out of memory"))
        return report, None, None
    except Exception:  # a bug in diffcheck: keep the other cases, report it as internal
        return None, None, f"case {case.name!r} ({case.file}): {traceback.format_exc(limit=8)}"


def run(paths: Sequence[str], options: RunOptions | None = None,
        progress: Callable[[CaseReport], None] | None = None) -> RunReport:
    """Load every case under ``paths``, check them, and return the whole run.

    ``options.jobs > 1`` checks the cases in that many worker processes (same results, same
    order; see :mod:`diffcheck.parallel`); ``options.cache`` keeps derivations on disk
    (:mod:`diffcheck.cache`). ``progress(case_report)`` is called as each case finishes; if
    it has a ``set_total(n)`` method, that is called first with the number of cases."""
    options = options or RunOptions()
    start = time.perf_counter()
    report = RunReport(seed=options.seed, versions=versions())
    try:
        cases, errors = list_cases(paths, options.keyword)
    except ValueError as err:  # a bad -k expression
        report.errors.append(CaseFileError(str(err)))
        return report
    report.errors.extend(errors)
    if progress is not None and hasattr(progress, "set_total"):  # a display that can show a bar
        progress.set_total(len(cases))
    from ..autograd import dynamo_references
    dynamo_references()  # found before any worker forks: they inherit them
    with cache.use(options.cache):
        check_options = options.check_options()
        in_workers = options.jobs > 1 and sum(len(case_parts(c, check_options)) for c in cases) > 1
        if in_workers:
            outcomes = _in_workers(cases, options, progress)
        else:
            outcomes = (run_case(case, options) for case in cases)
        for outcome in outcomes:
            if outcome is None:  # never started: -x stopped the workers first
                continue
            case_report, error, internal = outcome
            if error is not None:
                report.errors.append(error)
            if internal is not None:
                report.internal_errors.append(internal)
            if case_report is not None:
                report.cases.append(case_report)
                report.results.extend(case_report.results)
                if progress is not None and not in_workers:  # workers tick as cases finish
                    progress(case_report)
                if options.fail_fast and case_report.status == FAIL:
                    break
    report.seconds = time.perf_counter() - start
    return report


def _in_workers(cases: Sequence[Case], options: RunOptions,
                progress: Callable[[CaseReport], None] | None) -> list:
    """-j N: the same outcomes as in-process, in input order; progress ticks as cases finish.

    The workers take parts of cases (each dtype, and the claims: check.case_parts), so that
    one big case keeps every worker busy too; each case's parts are merged as they finish."""
    from .parallel import run_parallel

    check_options = options.check_options()
    units, owner, spans = [], [], []  # spans[i]: case i's units are units[start:stop]
    for i, case in enumerate(cases):
        start = len(units)
        for k, part in enumerate(case_parts(case, check_options)):
            units.append((case, part, k == 0))
            owner.append(i)
        spans.append((start, len(units)))
    pending = [stop - start for start, stop in spans]
    parts: list[list] = [[] for _ in cases]
    merged: list = [None] * len(cases)

    def finished(index: int, outcome) -> bool:
        i = owner[index]
        parts[i].append((index, outcome))
        pending[i] -= 1
        if pending[i]:
            return True
        merged[i] = merge_parts(cases[i], [o for _, o in sorted(parts[i], key=lambda p: p[0])])
        case_report = merged[i][0]
        if progress is not None and case_report is not None:
            progress(case_report)
        return not (options.fail_fast and case_report is not None and case_report.status == FAIL)

    def stop_at(unit_index: int) -> int:  # -x: no part of a later case starts
        return spans[owner[unit_index]][1]

    for i, count in enumerate(pending):
        if count == 0:  # nothing to check in workers (no dtype, no claims): the case's report is empty
            merged[i] = merge_parts(cases[i], [])
    run_parallel(units, options, options.jobs, finished, stop_at)
    return merged
