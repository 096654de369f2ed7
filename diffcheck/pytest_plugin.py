"""pytest plugin: collect case files as tests.

Enabled by the ``pytest11`` entry point, and off until asked for: ``pytest --diffcheck
cases/`` collects every ``*.yaml``/``*.yml`` file under the given paths. There is one test
item per case. It checks it as ``diffcheck run -j 1`` does (:func:`diffcheck.runner.run_case`:
:func:`diffcheck.check_case` under the case's time and memory limits), and a failure is shown
the way the console shows it, not as a traceback. A case stopped by its limits fails even
when it is marked ``xfail``: that is not the failure it expects.
"""

from __future__ import annotations

import io

import pytest

from .errors import CaseFileError
from .results import RunReport


def pytest_addoption(parser):
    group = parser.getgroup("diffcheck")
    group.addoption("--diffcheck", action="store_true", default=False,
                    help="collect diffcheck case files (*.yaml, *.yml) as tests")
    group.addoption("--diffcheck-dtype", action="append", default=[],
                    help="override the dtypes of every case (repeatable)")


def pytest_collect_file(parent, file_path):
    if parent.config.getoption("diffcheck") and file_path.suffix in (".yaml", ".yml"):
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFile(pytest.File):
    def collect(self):
        from .loader import load_file
        cases, errors = load_file(self.path)
        for err in errors:
            yield InvalidCase.from_parent(self, name=f"invalid:{err.location}", error=err)
        for case in cases:
            yield CaseItem.from_parent(self, name=case.name, case=case)


class CaseFailed(Exception):
    """A case whose results include a failing status."""


class CaseStopped(Exception):
    """A case stopped by its time or memory limit, or by an internal error of diffcheck."""


class CaseItem(pytest.Item):
    def __init__(self, *, case, **kwargs):
        super().__init__(**kwargs)
        self.case = case
        if case.xfail:
            self.add_marker(pytest.mark.xfail(reason=case.xfail, strict=True, raises=CaseFailed))

    def runtest(self):
        from .runner import RunOptions, run_case
        dtypes = tuple(self.config.getoption("diffcheck_dtype") or ())
        report, error, internal = run_case(self.case, RunOptions(dtypes=dtypes))
        if error is not None:
            raise error
        if internal is not None:
            raise CaseStopped(f"internal error of diffcheck: {internal}")
        if any(r.stopped for r in report.results):
            raise CaseStopped(self._render(report))
        if self.case.xfail:
            # let pytest's own xfail judge: raise when the case failed as expected
            if any(r.failed_as_expected for r in report.results):
                raise CaseFailed(self._render(report))
            return
        if any(r.failed for r in report.results):
            raise CaseFailed(self._render(report))

    def _render(self, case_report) -> str:
        from rich.console import Console

        from .report.console import render_console
        run = RunReport(results=case_report.results, cases=[case_report])
        out = io.StringIO()
        render_console(run, Console(file=out, width=160, color_system=None), verbosity=-1)
        return out.getvalue()

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, (CaseFailed, CaseStopped, CaseFileError)):
            return str(excinfo.value)
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
        return self.path, (loc.line - 1 if loc else 0), "invalid case file"
