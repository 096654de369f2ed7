"""pytest plugin: collect case files as tests.

Enabled by the ``pytest11`` entry point, and off until asked for with ``--diffcheck`` (or
``addopts = --diffcheck``). Then a YAML file is collected as a case file when

* it was named on the command line, or lies in a folder named there (``pytest --diffcheck
  cases/``), other than the project's root folder;
* its name matches one of the ``diffcheck_glob`` patterns (default ``*.diffcheck.yaml``,
  ``*.diffcheck.yml``, ``diffcheck_*.yaml``, ``diffcheck_*.yml``); or
* it lies under one of the ``diffcheck_paths`` folders (ini option, relative to the ini file).

Other YAML files (a project's configuration, CI files, data) are never collected.

There is one test item per case, with the node id ``path/to/file.yaml::case-name`` (relative
to the root folder). It checks the case as ``diffcheck run -j 1`` does: in a worker process
forked from the pytest process once per session (:class:`diffcheck.runner.Pool`), under the
case's time and memory limits, so that a segfault, a hang in C code or a change of torch's
global state fails that item (an error), never the session; ``--diffcheck-in-process`` checks
in the pytest process instead (for a debugger; no hard limit). A failure is shown the way the console shows it, not as a traceback; the
short summary line is the first failure's one-line message. A case stopped by its limits
fails even when it is marked ``xfail``: that is not the failure it expects. Warnings that
torch raises inside its own modules while a case runs are not shown (they are torch's, not
the code under test's). ``--diffcheck-report DIR`` and ``--diffcheck-json FILE`` write the
Markdown report and the JSON of the cases checked, as ``diffcheck run`` does; under
pytest-xdist the controller collects every worker's cases and writes them once.
"""

from __future__ import annotations

import base64
import dataclasses
import fnmatch
import os
import pickle
from pathlib import Path

from typing import Callable

import pytest

from .errors import CaseFileError
from .results import CaseReport, RunReport

DEFAULT_GLOBS = ("*.diffcheck.yaml", "*.diffcheck.yml", "diffcheck_*.yaml", "diffcheck_*.yml")
SUFFIXES = (".yaml", ".yml")
_REPORT_ATTRIBUTE = "diffcheck_case"  # a TestReport attribute carrying the CaseReport (xdist-safe)


def pytest_addoption(parser):
    group = parser.getgroup("diffcheck")
    group.addoption("--diffcheck", action="store_true", default=False,
                    help="collect diffcheck case files as tests: YAML files named on the command line "
                         "or in folders named there, files matching diffcheck_glob, and files under "
                         "diffcheck_paths")
    group.addoption("--diffcheck-dtype", action="append", default=[],
                    help="override the dtypes of every case (repeatable)")
    group.addoption("--diffcheck-in-process", action="store_true", default=False,
                    help="check cases in the pytest process (for a debugger): no hard time or memory limit")
    group.addoption("--diffcheck-report", metavar="DIR", default=None,
                    help="write a Markdown report of the cases checked to DIR/index.md")
    group.addoption("--diffcheck-no-plots", action="store_true", default=False,
                    help="write the --diffcheck-report without plots (they cost about a second of "
                         "CPU per ten cases)")
    group.addoption("--diffcheck-json", metavar="FILE", default=None,
                    help="write the results of the cases checked as JSON to FILE")
    parser.addini("diffcheck_paths", type="paths", default=[],
                  help="folders whose YAML files are all diffcheck case files")
    parser.addini("diffcheck_glob", type="args", default=list(DEFAULT_GLOBS),
                  help="file name patterns of diffcheck case files (default: "
                       + " ".join(DEFAULT_GLOBS) + ")")
    parser.addini("diffcheck_allow_imports", type="bool", default=False,
                  help="let `imports:` in case files import and run Python modules (code you trust)")


class _Selection:
    """Which YAML files are case files (see the module's docstring)."""

    def __init__(self, config):
        self.globs = tuple(config.getini("diffcheck_glob") or ())
        self.folders = [Path(p).resolve() for p in config.getini("diffcheck_paths") or ()]
        self.named: list[Path] = []
        root = Path(config.rootpath).resolve()
        if config.args_source == pytest.Config.ArgsSource.ARGS:
            base = Path(config.invocation_params.dir)
            for arg in config.args:
                path = (base / arg.split("::")[0]).resolve()
                if path.exists() and path != root:
                    self.named.append(path)

    def wants(self, path: Path) -> bool:
        if path.suffix.lower() not in SUFFIXES:
            return False
        if any(fnmatch.fnmatch(path.name, pattern) for pattern in self.globs):
            return True
        resolved = path.resolve()
        return any(resolved == p or p in resolved.parents for p in (*self.named, *self.folders))


def pytest_configure(config):
    if config.getoption("diffcheck"):
        config.stash[_SELECTION] = _Selection(config)
        if config.getoption("diffcheck_report") or config.getoption("diffcheck_json"):
            config.pluginmanager.register(_Collector(config), "diffcheck-collector")


_SELECTION = pytest.StashKey[_Selection]()
_POOLS = pytest.StashKey[dict]()


def _execute(config, case, dtypes: tuple[str, ...]):
    """The Outcome of ``case``, checked in the session's worker (or in this process)."""
    from .pipeline import CheckOptions
    from .runner import Pool, Unit, can_fork, run_case
    options = CheckOptions(dtypes=dtypes)
    if case.imports and _imports_allowed(config):  # the project's opt-in, carried by the case
        case = dataclasses.replace(case, allow_imports=True)
    if config.getoption("diffcheck_in_process") or not can_fork():
        return run_case(case, options)
    pools = config.stash.setdefault(_POOLS, {})
    pool = pools.get(dtypes)
    if pool is None:
        pool = pools[dtypes] = Pool(1, options)
    return pool.run_one(Unit(0, case, None, whole=True))


def _imports_allowed(config) -> bool:
    """`diffcheck_allow_imports = true` in the ini options, or `allow-imports = true` under
    [tool.diffcheck] in the pyproject.toml of the rootdir."""
    from .project import allow_imports_setting
    return bool(config.getini("diffcheck_allow_imports")) or allow_imports_setting(config.rootpath)


def pytest_unconfigure(config):
    for pool in config.stash.get(_POOLS, {}).values():
        pool.close(kill=True)
    config.stash[_POOLS] = {}


def pytest_collect_file(parent, file_path):
    selection = parent.config.stash.get(_SELECTION, None)
    if selection is not None and selection.wants(Path(file_path)):
        return CaseFile.from_parent(parent, path=file_path)
    return None


def _relative(path: Path, root: Path) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:  # another drive
        return str(path)


_READER = pytest.StashKey[Callable]()


def _file_reader(config: pytest.Config) -> Callable:
    """How case files are read at collection: one forked child per session, each file under the
    load limits, as `diffcheck run` reads them (in this process where the platform cannot fork)."""
    if _READER not in config.stash:
        from .runner import limits
        from .runner.isolated import FileReader
        if limits.can_fork():
            reader = FileReader()
            config.add_cleanup(reader.close)
        else:
            from .loader import load_file as reader
        config.stash[_READER] = reader
    return config.stash[_READER]


class CaseFile(pytest.File):
    def collect(self):
        cases, errors = _file_reader(self.config)(self.path, name=_relative(self.path, self.config.rootpath))
        seen: set[str] = set()
        for err in errors:
            loc = err.location
            name = f"invalid@{loc.line}:{loc.column}" if loc is not None and loc.line > 0 else "invalid"
            unique, count = name, 1
            while unique in seen:  # two problems at one place: every item its own id
                count += 1
                unique = f"{name}#{count}"
            seen.add(unique)
            yield InvalidCase.from_parent(self, name=unique, error=err)
        for case in cases:
            yield CaseItem.from_parent(self, name=case.name, case=case)


class CaseFailed(Exception):
    """A case whose results include a failing status."""


class CaseStopped(Exception):
    """A case stopped by its time or memory limit, or by an internal error of diffcheck."""


class _Failure:
    """A failure as pytest shows it: the console's block, and a one-line message (pytest's
    short summary reads ``reprcrash.message``; ``str()`` starts with it too, for xdist)."""

    def __init__(self, headline: str, body: str):
        self.headline, self.body = headline, body
        self.reprcrash = _Crash(headline)

    def toterminal(self, tw) -> None:
        for line in str(self).splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return f"{self.headline}\n\n{self.body}".rstrip("\n")


class _Crash:
    def __init__(self, message: str):
        self.message = message


class CaseItem(pytest.Item):
    def __init__(self, *, case, **kwargs):
        super().__init__(**kwargs)
        self.case = case
        self.case_report: CaseReport | None = None
        if case.xfail:
            self.add_marker(pytest.mark.xfail(reason=case.xfail, strict=True, raises=CaseFailed))

    def runtest(self):
        from .api import torch_warnings_ignored
        dtypes = tuple(self.config.getoption("diffcheck_dtype") or ())
        with torch_warnings_ignored():  # the worker is forked inside: it inherits the filters
            outcome = _execute(self.config, self.case, dtypes)
        self.case_report = report = outcome.report
        verdict = outcome.verdict
        if verdict == "invalid":
            raise outcome.error
        if verdict == "internal":
            raise CaseStopped(f"internal error of diffcheck: {outcome.internal}")
        if verdict == "stopped":
            raise CaseStopped(self._render(report))
        # for an xfail case, "failed" is the expected failure: pytest's own xfail judges it
        if verdict == "failed":
            raise CaseFailed(self._render(report))

    def _render(self, case_report) -> str:
        from .report.console import failure_text
        return failure_text(case_report, width=160)

    def _headline(self) -> str:
        report = self.case_report
        results = report.results if report is not None else []
        failed = [r for r in results if r.failed] or [r for r in results if r.failed_as_expected]
        if not failed:
            return f"case {self.case.name} failed"
        first = failed[0]
        where = " · ".join(part for part in (first.check, first.mode, first.dtype) if part)
        status = first.original_status or first.status
        message = " ".join((first.message or "").split())
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        return f"{where}: {status}{more}: {message}" if message else f"{where}: {status}{more}"

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, CaseFileError):
            return str(excinfo.value)
        if isinstance(excinfo.value, (CaseFailed, CaseStopped)):
            return _Failure(self._headline(), str(excinfo.value))
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.case.location.line - 1, f"diffcheck case {self.case.name}"


class InvalidCase(pytest.Item):
    def __init__(self, *, error: CaseFileError, **kwargs):
        super().__init__(**kwargs)
        self.error = error

    def runtest(self):
        raise self.error

    def repr_failure(self, excinfo):
        return str(excinfo.value)

    def reportinfo(self):
        loc = self.error.location
        return self.path, (loc.line - 1 if loc and loc.line > 0 else 0), "invalid case file"


# --- the case reports, for --diffcheck-report and --diffcheck-json (also under xdist) ------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if isinstance(item, CaseItem) and call.when == "call" and item.case_report is not None \
            and (item.config.getoption("diffcheck_report") or item.config.getoption("diffcheck_json")):
        blob = pickle.dumps((str(item.path), item.case.location.line, item.case_report),
                            protocol=pickle.HIGHEST_PROTOCOL)
        setattr(outcome.get_result(), _REPORT_ATTRIBUTE, base64.b64encode(blob).decode("ascii"))


class _Collector:
    """Keeps the case reports of a session (in the xdist controller: every worker's, as
    their test reports arrive) and writes them at its end, in file and line order."""

    def __init__(self, config):
        self.config = config
        self.cases: dict[str, tuple] = {}

    def pytest_runtest_logreport(self, report):
        blob = getattr(report, _REPORT_ATTRIBUTE, None)
        if blob is not None:
            self.cases[report.nodeid] = pickle.loads(base64.b64decode(blob))

    def pytest_sessionfinish(self, session):
        if hasattr(self.config, "workerinput"):  # an xdist worker: the controller writes
            return
        from .runner import versions
        run = RunReport(versions=versions())
        for _, _, case in sorted(self.cases.values(), key=lambda entry: entry[:2]):
            run.cases.append(case)
            run.results.extend(case.results)
            run.seconds += case.seconds
        report_dir = self.config.getoption("diffcheck_report")
        json_file = self.config.getoption("diffcheck_json")
        if report_dir:
            from .report.markdown import write_markdown
            write_markdown(run, report_dir, plots=not self.config.getoption("diffcheck_no_plots"))
        if json_file:
            from .report.jsonout import write_json
            write_json(run, json_file)
