"""Running many cases: load, filter, check each in a worker process under its time and memory
limits, collect a RunReport.

Bad input never loses other results: a case that fails to compile becomes a case-file error
and the other cases still run; an unexpected exception inside one case is recorded as an
internal error for that case; a case that crashes its process, hangs in C code or changes
torch's global state is an ``error`` result, and the run goes on. Ctrl-C (or SIGTERM, which
the CLI turns into the same) ends the run with what has finished: the rest is listed as not
run, and the exit code is 130.

The modules: :mod:`.execute` (the contract: one case under its limits, an ``Outcome``),
:mod:`.limits` (time, memory, ``-j auto``), :mod:`.parallel` (the worker pool),
:mod:`.state` (torch's global state), :mod:`.isolated` (case files read under limits),
:mod:`.keyword` (``-k``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from ..autograd import prepare_workers
from ..case import Case
from ..environment import versions
from ..errors import CaseFileError
from ..pipeline import CheckOptions, case_parts
from ..results import FAIL, CaseReport, RunReport
from ..symbolic.cache import DerivationCache, cache_dir
from .isolated import load_paths_limited
from .execute import Limits, Outcome, merge_parts, run_case, run_part
from .keyword import compile_keyword
from .shard import select
from .limits import auto_jobs, can_fork, case_memory, memory_limit, time_limit
from .parallel import Pool, Unit, run_units

__all__ = ["RunOptions", "run", "list_cases", "run_case", "run_part", "merge_parts", "Outcome", "Limits",
           "Pool", "Unit", "auto_jobs", "can_fork", "case_memory", "memory_limit", "time_limit", "versions"]


@dataclass
class RunOptions:
    keyword: str | None = None
    dtypes: tuple[str, ...] = ()
    seed: int | None = None
    fail_fast: bool = False
    verbose: int = 0
    device: str = "cpu"
    search: bool = False
    #: worker processes; "auto": one per CPU (limits.auto_jobs)
    jobs: int | str = 1
    #: check every case in this process: for a debugger; no hard limit (see the README)
    in_process: bool = False
    #: keep derivations on disk (symbolic.cache): True (in ``cache_dir`` or the default
    #: directory), False, or a DerivationCache of the caller's (its statistics are kept)
    cache: bool | DerivationCache = True
    cache_dir: str | None = None
    #: the project's opt-in to `imports:`; None: read `allow-imports` from [tool.diffcheck] in
    #: the pyproject.toml of the current directory (diffcheck.project)
    allow_imports: bool | None = None

    def imports_allowed(self) -> bool:
        if self.allow_imports is None:
            from ..project import allow_imports_setting
            return allow_imports_setting()
        return self.allow_imports
    #: (K, N): check only shard K of N (runner.shard)
    shard: tuple[int, int] | None = None

    def workers(self) -> int:
        return auto_jobs(self.device) if self.jobs == "auto" else max(1, int(self.jobs))

    def derivation_cache(self) -> DerivationCache | None:
        from pathlib import Path
        if isinstance(self.cache, DerivationCache):
            return self.cache
        return DerivationCache(Path(self.cache_dir) if self.cache_dir else cache_dir()) if self.cache else None

    def check_options(self, cache: DerivationCache | None = None) -> CheckOptions:
        return CheckOptions(dtypes=self.dtypes, seed=self.seed, device=self.device,
                            search=self.search, cache=cache, allow_imports=self.imports_allowed())


def list_cases(paths: Sequence[str], keyword: str | None = None) -> tuple[list[Case], list[CaseFileError]]:
    """The cases under ``paths`` (filtered by a -k expression) and the case-file errors; each
    file is read under a time and memory limit (:mod:`.isolated`)."""
    cases, errors = load_paths_limited(paths)
    if keyword:
        selected = compile_keyword(keyword)  # parsed once, not once per case
        cases = [c for c in cases if selected(c.name)]
    return cases, errors


def run(paths: Sequence[str], options: RunOptions | None = None,
        progress: Callable[[CaseReport], None] | None = None) -> RunReport:
    """Load every case under ``paths``, check them, and return the whole run.

    Each case is checked in a worker process (``options.jobs`` of them, "auto": one per CPU;
    same results, same order as ``options.in_process``, which checks them in this process
    with no hard limit; where the platform cannot fork, ``jobs == 1`` runs in this process
    too). ``options.cache`` keeps derivations on disk (:mod:`diffcheck.symbolic.cache`).
    ``progress(case_report)`` is called as each case finishes; if it has a ``set_total(n)``
    method, that is called first with the number of cases. A KeyboardInterrupt (Ctrl-C)
    ends the run: the report holds every finished case, lists the others in ``not_run``,
    and its exit code is 130."""
    options = options or RunOptions()
    start = time.perf_counter()
    report = RunReport(seed=options.seed, versions=versions())
    cases = _cases_to_run(paths, options, report)
    if cases is None:
        return report
    if progress is not None and hasattr(progress, "set_total"):  # a display that can show a bar
        progress.set_total(len(cases))
    prepare_workers()  # before any worker forks: they inherit what it finds
    cache = options.derivation_cache()
    check_options = options.check_options(cache)
    jobs = options.workers()
    in_process = options.in_process or (jobs == 1 and not can_fork())
    done: list[bool] = [False] * len(cases)

    def record(i: int, outcome: Outcome) -> bool:
        """Add case i's outcome; False: -x stops the run here."""
        done[i] = True
        if outcome.error is not None:
            report.errors.append(outcome.error)
        if outcome.internal is not None:
            report.internal_errors.append(outcome.internal)
        if outcome.report is not None:
            if options.seed is not None:  # the seed its points were drawn with
                outcome.report.seed = options.seed
            report.cases.append(outcome.report)
            report.results.extend(outcome.report.results)
            if progress is not None:
                progress(outcome.report)
            if options.fail_fast and outcome.report.status == FAIL:
                return False
        return True

    try:
        if in_process:
            for i, case in enumerate(cases):
                if not record(i, run_case(case, check_options)):
                    break
        else:
            _in_workers(cases, check_options, jobs, record)
    except KeyboardInterrupt:
        report.interrupted = True
        report.not_run = [c.name for c, finished in zip(cases, done) if not finished]
    report.seconds = time.perf_counter() - start
    return report


def _cases_to_run(paths: Sequence[str], options: RunOptions, report: RunReport) -> list[Case] | None:
    """The cases of this run (its shard, with the project's imports opt-in), their files'
    errors added to ``report``; None when nothing can run (a bad -k, Ctrl-C while loading)."""
    try:
        cases, errors = list_cases(paths, options.keyword)
    except ValueError as err:  # a bad -k expression
        report.errors.append(CaseFileError(str(err)))
        return None
    except KeyboardInterrupt:  # while loading: nothing checked
        report.interrupted = True
        return None
    if options.shard is not None:
        cases, errors = select(cases, errors, *options.shard)
        report.shard = "{}/{}".format(*options.shard)
    report.errors.extend(errors)
    if options.imports_allowed():  # the project's opt-in travels with each case to its worker
        cases = [dataclasses.replace(c, allow_imports=True) if c.imports else c for c in cases]
    return list(cases)


def _in_workers(cases: Sequence[Case], options: CheckOptions, jobs: int,
                record: Callable[[int, Outcome], bool]) -> None:
    """The cases' outcomes, through ``record`` in input order, from a pool of ``jobs``
    workers. The workers take parts of cases (each dtype, and the claims:
    pipeline.case_parts), so that one big case keeps every worker busy too; each case's parts
    are merged as they finish, and handed on in input order."""
    units: list[Unit] = []
    spans = []  # spans[i]: case i's units are units[start:stop]
    for i, case in enumerate(cases):
        start = len(units)
        units.extend(Unit(i, case, part, formulas=(k == 0)) for k, part in enumerate(case_parts(case, options)))
        spans.append((start, len(units)))
    parts: list[dict[int, Outcome]] = [{} for _ in cases]
    merged: list[Outcome | None] = [None] * len(cases)
    handed = [0]      # cases before this one have gone to record(), in input order
    stopped = [False]

    def hand_on() -> bool:
        while handed[0] < len(cases) and merged[handed[0]] is not None and not stopped[0]:
            if not record(handed[0], merged[handed[0]]):
                stopped[0] = True
            handed[0] += 1
        return not stopped[0]

    def finished(index: int, outcome: Outcome) -> bool:
        i = units[index].key
        parts[i][index] = outcome
        start, stop = spans[i]
        if len(parts[i]) == stop - start:
            merged[i] = merge_parts(cases[i], [parts[i][k] for k in range(start, stop)])
        return hand_on()

    for i, (start, stop) in enumerate(spans):
        if start == stop:  # nothing to check (no dtype, no claims): the case's report is empty
            merged[i] = merge_parts(cases[i], [])
    pool = Pool(jobs, options)
    try:
        if hand_on() and units:
            run_units(pool, units, finished, lambda index: spans[units[index].key][1])
    except KeyboardInterrupt:  # keep every case that has finished, in input order
        for i in range(handed[0], len(cases)):
            if merged[i] is not None and not stopped[0]:
                record(i, merged[i])
        raise
    finally:
        pool.close(kill=True)
