"""The derivation cache: exact derivatives kept on disk, so an unchanged suite re-runs
without symbolic work.

An entry holds the targets of one check of one case (their shared graphs,
:class:`~diffcheck.dag.Program`) under a key that is the SHA-256 of everything the
derivation depends on: the case's mathematics (``expr``, ``let`` steps, variables and their
shapes, constants and their values — small whole numbers enter the formulas), the check,
the versions of diffcheck, SymPy, SymEngine and Python, whether SymEngine is used, and the
source of the modules that turn a case into derivatives. Change any of them and the key
changes: a changed case misses, an unchanged one hits.

Where: ``$DIFFCHECK_CACHE_DIR``, else ``$XDG_CACHE_HOME/diffcheck``, else
``~/.cache/diffcheck``. A run uses the cache when :func:`use` turned it on (``diffcheck
run`` does, ``--no-cache`` does not); :func:`~diffcheck.check.check_case` on its own does
not touch the disk.

Entries are pickles that diffcheck itself wrote, under a header naming the format; like any
cache of Python objects, the directory must be as trusted as the code. An entry that does
not load (truncated, corrupt, another format) is a miss and is written again; a directory
that cannot be written only costs the speed-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import platform
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

FORMAT = b"diffcheck-derivations 1\n"
#: modules whose source decides what a case's derivatives are
_SOURCES = ("language/library.py", "language/__init__.py", "symbolic/__init__.py", "symbolic/derive.py",
            "symbolic/dag.py")


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    writes: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class DerivationCache:
    directory: Path
    stats: CacheStats = field(default_factory=CacheStats)

    def path(self, key: str) -> Path:
        return self.directory / "derivations" / key[:2] / f"{key}.pkl"

    def load(self, key: str):
        path = self.path(key)
        try:
            with open(path, "rb") as f:
                if f.read(len(FORMAT)) != FORMAT:
                    return None
                return pickle.load(f)
        except FileNotFoundError:
            return None
        except Exception:  # truncated or corrupt: a miss, and it will be written again
            return None

    def store(self, key: str, value) -> None:
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pkl")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(FORMAT)
                    pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, path)  # atomic: a reader sees the old entry or the new one
            except BaseException:
                os.unlink(tmp)
                raise
            self.stats.writes += 1
        except OSError as err:  # read-only or full disk: run on without the cache
            self.stats.errors.append(f"{path}: {err}")


def cache_dir() -> Path:
    """``$DIFFCHECK_CACHE_DIR``, else ``$XDG_CACHE_HOME/diffcheck``, else ``~/.cache/diffcheck``."""
    if os.environ.get("DIFFCHECK_CACHE_DIR"):
        return Path(os.environ["DIFFCHECK_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "diffcheck"
    return Path.home() / ".cache" / "diffcheck"


_active: DerivationCache | None = None


@contextmanager
def use(enabled: bool = True, directory: Path | str | None = None) -> Iterator[DerivationCache | None]:
    """Turn the derivation cache on (or off) for the code inside the ``with``."""
    global _active
    previous = _active
    _active = DerivationCache(Path(directory) if directory else cache_dir()) if enabled else None
    try:
        yield _active
    finally:
        _active = previous


def active() -> DerivationCache | None:
    return _active


_environment: str | None = None


def _environment_key() -> str:
    """Versions and derivation source, hashed once per process."""
    global _environment
    if _environment is None:
        import sympy

        from .. import __version__
        try:
            import symengine
            se_version = symengine.__version__
        except ImportError:
            se_version = None
        here = Path(__file__).parents[1]
        source = hashlib.sha256()
        for name in _SOURCES:
            source.update((here / name).read_bytes())
        _environment = json.dumps({"diffcheck": __version__, "sympy": sympy.__version__,
                                   "symengine": se_version, "python": platform.python_version(),
                                   "source": source.hexdigest()})
    from .derive import symengine_enabled
    return _environment + ("+symengine" if symengine_enabled() else "")


def key_of(compiled, check) -> str:
    """The cache key of ``check`` of a compiled case."""
    case = compiled.case
    content = {
        "expr": case.expr,
        "let": [list(step) for step in case.let],
        "variables": [[v.name, list(v.shape)] for v in case.variables],
        "constants": {name: [list(value.shape), value.ravel().tolist()]
                      for name, value in compiled.const_values.items()},
        "symbolic_constants": list(compiled.const_symbols),
        "check": [check.kind, check.order],
    }
    blob = json.dumps([_environment_key(), content], sort_keys=True, default=repr)
    return hashlib.sha256(blob.encode()).hexdigest()


def derivations(compiled, check, compute: Callable[[], list]) -> list:
    """The targets of ``check``: from the active cache if there, else computed (and stored)."""
    cache = _active
    if cache is None:
        return compute()
    from .dag import ExprList, from_sympy
    from . import Target

    key = key_of(compiled, check)
    symbols = compiled.symbols
    stored = cache.load(key)
    if _valid(stored, len(symbols)):
        cache.stats.hits += 1
        return [Target(t["label"], ExprList(t["program"], symbols), t["rows"], t["cols"], t["wrt"])
                for t in stored]
    cache.stats.misses += 1
    targets = compute()
    entries = []
    for t in targets:
        program = t.exprs.program if isinstance(t.exprs, ExprList) else from_sympy(list(t.exprs), symbols)
        entries.append({"label": t.label, "program": program, "rows": list(t.rows), "cols": list(t.cols),
                        "wrt": t.wrt})
    cache.store(key, entries)
    return targets


def _valid(stored, nsym: int) -> bool:
    from .dag import Program
    return (isinstance(stored, list)
            and all(isinstance(t, dict) and isinstance(t.get("program"), Program)
                    and t["program"].nsym == nsym and len(t["program"].outputs) == len(t["rows"]) * len(t["cols"])
                    for t in stored))
