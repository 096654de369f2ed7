"""The data type a case file becomes: :class:`Case`, plain and already validated.

The loader (:mod:`diffcheck.loader`) turns YAML into these; everything downstream takes
a ``Case`` and never looks at YAML again. Expressions stay text here: they are parsed by
:mod:`diffcheck.language` when the case is compiled, and errors found then are placed with
``Case.positions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .errors import Location

DTYPES = ("float64", "float32", "float16", "bfloat16")
MODES = ("reverse", "backward", "forward")
CHECK_KINDS = ("gradient", "jacobian", "hessian", "intermediates", "derivative")
DEFAULT_DOMAIN = (-10.0, 10.0)
DEFAULT_SAMPLES = 32
DEFAULT_MODES = ("reverse", "forward")
DEFAULT_DTYPES = ("float64", "float32")
DEFAULT_TIMEOUT = 300.0  # seconds a case may run (key ``timeout``)


@dataclass(frozen=True)
class Variable:
    """A differentiable input; ``shape == ()`` is a scalar."""

    name: str
    shape: tuple[int, ...] = ()
    domain: tuple[float, float] = DEFAULT_DOMAIN


@dataclass(frozen=True)
class Check:
    """One derivative check: ``kind`` is one of CHECK_KINDS; ``order`` is n for
    ``{derivative: n}`` and 1 otherwise (2 for hessian)."""

    kind: str
    order: int = 1

    @property
    def label(self) -> str:
        return f"derivative{self.order}" if self.kind == "derivative" else self.kind


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float


@dataclass(frozen=True)
class Case:
    """One validated case. ``positions`` maps a key path to where its value starts in the
    file: ``"expr"``, ``"torch"``, ``"let.NAME"``, ``"points.3"``, ``"expect.values.0"``…
    ``tolerance`` maps a dtype name, or ``"*"`` for all dtypes, to a :class:`Tolerance`.
    ``expect`` keeps the validated claim mapping as plain data (see the contract).
    ``function``, set only by the Python API, replaces the ``torch`` key."""

    name: str
    file: str
    location: Location
    expr: str
    variables: tuple[Variable, ...]
    description: str | None = None
    constants: Mapping[str, Any] = field(default_factory=dict)
    let: tuple[tuple[str, str], ...] = ()
    torch: str | None = None
    imports: Mapping[str, str] = field(default_factory=dict)
    checks: tuple[Check, ...] | None = None  # None: the default for the output's shape
    modes: tuple[str, ...] = DEFAULT_MODES
    points: tuple[Mapping[str, Any], ...] = ()
    samples: int | str = DEFAULT_SAMPLES  # an int or "all"
    seed: int = 0
    dtypes: tuple[str, ...] = DEFAULT_DTYPES
    tolerance: Mapping[str, Tolerance] = field(default_factory=dict)
    expect: Mapping[str, Any] | None = None
    xfail: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    positions: Mapping[str, Location] = field(default_factory=dict)
    #: the implementation under test as a Python function of the environment (name ->
    #: tensor), in place of ``torch``. Only the Python API sets it
    #: (:func:`diffcheck.check_function`); a case file cannot name one.
    function: Callable[[Mapping[str, Any]], Any] | None = field(default=None, compare=False, repr=False)
    #: the project's opt-in to `imports:` (never read from a case file: the runner sets it from
    #: --allow-imports, pyproject.toml or the pytest ini; see diffcheck.project)
    allow_imports: bool = False

    def where(self, key: str) -> Location:
        """Where ``key`` (a key path) is in the file, falling back to the case itself."""
        while key:
            if key in self.positions:
                return self.positions[key]
            key = key.rpartition(".")[0]
        return self.location

    def variable(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)
