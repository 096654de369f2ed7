"""The Python API for a callable: check a function of tensors against a case-language formula.

    import diffcheck

    def test_softplus():
        diffcheck.assert_function(my_softplus, "log(1 + exp(x))",
                                  variables={"x": {"domain": [-20, 20]}})

The formula (``expr``) is parsed by the case language's allowlist parser, never evaluated.
The keywords are a case file's keys, validated by the same loader as a YAML case
(:func:`diffcheck.loader.load_mapping`), and the case runs as the CLI runs it
(:func:`diffcheck.runner.run_case`: under its time and memory limits, in the calling process,
since the callable may not survive a trip to a worker).
"""

from __future__ import annotations

import inspect
import io
import os
import re
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from .case import Case
from .errors import CaseFileError, CheckFailed, DiffcheckError, Location
from .results import CaseReport, Result, RunReport

__all__ = ["check_function", "assert_function", "FunctionReport"]

_PACKAGE = str(Path(__file__).resolve().parent)
_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class FunctionReport:
    """What :func:`check_function` found: ``ok`` is True when no result fails (xfail results
    from an ``xfail=`` reason count as expected); ``failures`` are the failing results;
    ``results`` all of them (one per check, mode and dtype, and the function's value)."""

    case: Case
    report: CaseReport

    @property
    def results(self) -> list[Result]:
        return self.report.results

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.report.results if r.failed]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def status(self) -> str:
        return self.report.status

    def __bool__(self) -> bool:
        return self.ok

    def render(self, verbosity: int = -1, width: int = 100) -> str:
        """The console's report of this case: with the default ``verbosity`` (-1), only the
        failures (each with its worst point, both values, the errors and the formula) and
        the summary line, as ``diffcheck run -q`` prints them."""
        from rich.console import Console

        from .report.console import render_console
        out = io.StringIO()
        run = RunReport(results=list(self.report.results), cases=[self.report], seconds=self.report.seconds)
        render_console(run, Console(file=out, width=width, color_system=None, soft_wrap=False),
                       verbosity=verbosity)
        return out.getvalue().rstrip("\n")

    def __str__(self) -> str:
        return self.render()

    def raise_for_failures(self) -> "FunctionReport":
        """Raise :class:`~diffcheck.errors.CheckFailed` (an AssertionError) when a result
        fails; return this report otherwise."""
        if self.failures:
            raise CheckFailed(f"diffcheck: {self.case.name} failed\n{self.render()}", self)
        return self


def check_function(fn: Callable[..., Any], expr: str, variables: Any = "x", *,
                   check: Any = None, dtypes: Any = None, modes: Any = None, points: Any = None,
                   samples: Any = None, constants: Mapping[str, Any] | None = None,
                   tolerance: Any = None, seed: int | None = None, name: str | None = None,
                   **keys: Any) -> FunctionReport:
    """Check ``fn``'s autograd derivatives against the exact derivatives of ``expr``.

    ``fn`` takes one tensor per variable and returns a tensor: by keyword when its
    parameters are named after every variable, else positionally in the order of
    ``variables``. Constants are passed by keyword to the parameters named after them. It is
    called at one point at a time (under ``torch.func.vmap`` where it can be batched, in a
    loop where it cannot), so each tensor has its variable's shape.

    ``expr`` is the mathematics, in the case language (``"log(1 + exp(x))"``).
    ``variables`` is the ``variables`` key of a case file (``{"x": {"shape": [3], "domain":
    [-5, 5]}}``), or names: ``"x"``, ``"x, w"``, ``["x", "w"]`` (scalars on the default
    domain [-10, 10]). The other keywords are the case file's keys, with the same meaning
    and defaults: ``check`` (``"gradient"`` or a list), ``dtypes``, ``modes``, ``points``,
    ``samples``, ``constants``, ``tolerance``, ``seed``, ``name`` (default: the function's
    name), and any other key (``let``, ``expect``, ``timeout``, ``xfail``, ``description``).
    Tensors and arrays are accepted wherever a case file has numbers.

    Returns a :class:`FunctionReport`. A wrong argument (an unknown function in ``expr``, a
    bad key) raises :class:`~diffcheck.errors.CaseFileError` naming the call's
    ``file:line``; an internal error of diffcheck raises
    :class:`~diffcheck.errors.DiffcheckError`.
    """
    if not callable(fn):
        raise TypeError(f"check_function needs a callable, not {type(fn).__name__}")
    for refused in ("torch", "imports"):
        if refused in keys:
            raise TypeError(f"check_function takes the implementation as `fn`; `{refused}=` is for case files")
    where = _call_site()
    data: dict[str, Any] = {"name": name if name is not None else _name_of(fn), "expr": expr,
                            "variables": _variables(variables)}
    optional = {"check": _checks(check), "dtypes": _names(dtypes), "modes": _names(modes),
                "points": points, "samples": samples, "constants": constants,
                "tolerance": tolerance, "seed": seed}
    data.update({key: value for key, value in optional.items() if value is not None})
    data.update(keys)
    data.setdefault("description", f"{_qualified(fn)} against {expr}" if isinstance(expr, str) else None)
    from .loader import load_mapping
    cases, errors = load_mapping(_plain(data), where.file, where)
    if errors:
        raise _one_error(errors)
    case = cases[0]
    case = replace(case, function=_caller(fn, case))
    return FunctionReport(case, _run(case))


def assert_function(fn: Callable[..., Any], expr: str, variables: Any = "x", **keys: Any) -> FunctionReport:
    """:func:`check_function`, raising :class:`~diffcheck.errors.CheckFailed` (an
    AssertionError whose message is the console's failure report) when a result fails."""
    return check_function(fn, expr, variables, **keys).raise_for_failures()


@contextmanager
def torch_warnings_ignored() -> Iterator[None]:
    """While a case runs, warnings that torch raises inside its own modules are not shown
    (``torch.jit.script`` is deprecated, vmap's fallback is slow, …), nor those raised where
    diffcheck calls torch: they are about torch, not about the code under test. A warning
    torch attributes to the user's own code (a deprecated torch function it calls) is still
    shown."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"torch(\.|$)")
        # torch's warnings about its own kernels, raised where diffcheck's compiled case
        # calls them (vmap's "performance drop … batching rule for aten::special_log_ndtr")
        warnings.filterwarnings("ignore", module=r"diffcheck(\.|$)")
        yield


def _run(case: Case) -> CaseReport:
    from .pipeline import CheckOptions
    from .runner import run_case
    from .symbolic.cache import DerivationCache, cache_dir
    with torch_warnings_ignored():
        outcome = run_case(case, CheckOptions(cache=DerivationCache(cache_dir())))
    if outcome.error is not None:
        raise outcome.error
    if outcome.internal is not None:
        raise DiffcheckError(f"internal error of diffcheck: {outcome.internal}")
    return outcome.report


def _caller(fn: Callable[..., Any], case: Case) -> Callable[[Mapping[str, Any]], Any]:
    """``fn`` as a function of the environment (name -> tensor)."""
    names = [v.name for v in case.variables]
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin without a signature: positional
        parameters = {}
    named = {p.name for p in parameters.values()
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    constants = [c for c in case.constants if c in named]
    if all(n in named for n in names):
        wanted = names + constants

        def by_keyword(env: Mapping[str, Any]) -> Any:
            return fn(**{n: env[n] for n in wanted})
        return by_keyword

    def positional(env: Mapping[str, Any]) -> Any:
        return fn(*(env[n] for n in names), **{c: env[c] for c in constants})
    return positional


def _call_site() -> Location:
    """The first frame outside diffcheck: where the user called the API."""
    frame = sys._getframe(1)
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(_PACKAGE + os.sep):
        frame = frame.f_back
    if frame is None:
        return Location("<python>")
    file = frame.f_code.co_filename
    try:
        relative = os.path.relpath(file)
        file = relative if not relative.startswith("..") else file
    except ValueError:  # another drive (Windows)
        pass
    return Location(file, frame.f_lineno, 1)


def _name_of(fn: Callable[..., Any]) -> str:
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type):  # a classmethod such as MyFunction.apply: the class's name
        fn = owner
    raw = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__
    raw = raw.replace(".<locals>", "")
    return _NOT_A_NAME.sub("_", raw).strip("_.-") or "function"


def _qualified(fn: Callable[..., Any]) -> str:
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type):
        return f"{owner.__module__}.{owner.__qualname__}.{getattr(fn, '__name__', '')}"
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None) or repr(fn)
    return f"{module}.{qualname}" if module and module != "builtins" else qualname


def _variables(value: Any) -> Any:
    if isinstance(value, str):
        return {name: {} for name in re.split(r"[,\s]+", value.strip()) if name}
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return {name: {} for name in value}
    if isinstance(value, Mapping):
        return {name: ({} if spec is None else spec) for name, spec in value.items()}
    return value  # the loader says what is wrong with it


def _checks(value: Any) -> Any:
    if isinstance(value, (str, Mapping)):
        return [value]
    return value


def _names(value: Any) -> Any:
    if isinstance(value, str):
        return [part for part in re.split(r"[,\s]+", value.strip()) if part]
    return value


def _plain(value: Any) -> Any:
    """Python values as a case file's YAML reads: tensors and arrays become nested lists,
    tuples lists, numpy and 0-d tensor scalars Python numbers."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and type(value).__module__.split(".")[0] in ("torch", "numpy"):
        return _plain(tolist())
    return value


def _one_error(errors: Sequence[CaseFileError]) -> CaseFileError:
    if len(errors) == 1:
        return errors[0]
    first = errors[0]
    rest = "\n".join(f"  {error.render()}" for error in errors)
    return CaseFileError(f"{len(errors)} problems with the arguments:\n{rest}", None, None, first.case)
