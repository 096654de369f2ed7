"""Exceptions of diffcheck.

One root, :class:`DiffcheckError`; each subclass says when you would see it. A case file
that is wrong is never an internal error: it is a :class:`CaseFileError` that names the
file, line and column and says how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass


class DiffcheckError(Exception):
    """Root of every exception diffcheck raises on purpose."""


@dataclass(frozen=True)
class Location:
    """A place in a case file; ``line`` and ``column`` count from 1."""

    file: str
    line: int = 0
    column: int = 0

    def shifted(self, offset: int) -> "Location":
        """The location ``offset`` characters further along the same line."""
        return Location(self.file, self.line, self.column + offset)

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


class CaseFileError(DiffcheckError):
    """A case file is invalid: bad YAML, an unknown key, a wrong type, an expression
    outside the case language, an unknown function or a shape mismatch.

    ``str(err)`` is ``file:line:column: message`` followed by the hint when there is one.
    """

    def __init__(self, message: str, location: Location | None = None, hint: str | None = None,
                 case: str | None = None):
        self.message = message
        self.location = location
        self.hint = hint
        self.case = case
        super().__init__(self.render())

    def render(self) -> str:
        where = f"{self.location}: " if self.location else ""
        text = f"{where}{self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def at(self, location: Location) -> "CaseFileError":
        """This error placed at ``location`` (if it has none yet)."""
        if self.location is not None and self.location.line > 0:
            return self
        return CaseFileError(self.message, location, self.hint, self.case)

    def to_dict(self) -> dict:
        loc = self.location
        return {
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
            "case": self.case,
            "message": self.message,
            "hint": self.hint,
        }


class ExpressionError(CaseFileError):
    """An expression in a case (``expr``, ``let``, ``torch``, an ``expect`` claim) is not in
    the case language, calls an unknown function, or combines shapes that do not fit.
    ``offset`` is the 0-based character offset inside the expression text."""

    def __init__(self, message: str, offset: int = 0, hint: str | None = None):
        self.offset = offset
        super().__init__(message, None, hint)


class CaseTimeout(BaseException):
    """A case ran longer than its time limit and was stopped.

    A BaseException, as KeyboardInterrupt is: raised from a signal handler wherever the case
    happens to be, it must not be taken for an error of the code it interrupts. As an
    Exception, the fallback from vmap to a loop over points caught it, and the case ran on
    with no limit at all (2.2 s for a case with a 1 s limit)."""


class MissingDependency(DiffcheckError):
    """An optional dependency that a requested feature needs is not installed. The message
    names the extra that installs it (``pip install 'diffcheck[plots]'``)."""


class CheckFailed(DiffcheckError, AssertionError):
    """A check made through the Python API failed (:func:`diffcheck.assert_function`,
    ``FunctionReport.raise_for_failures``). ``str(err)`` is the console's failure report;
    ``err.report`` is the :class:`~diffcheck.api.FunctionReport`. An AssertionError, so
    that pytest shows it as a failed assertion."""

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report
