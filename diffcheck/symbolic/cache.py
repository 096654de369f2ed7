"""The derivation cache: exact derivatives kept on disk as data, so an unchanged suite re-runs
without symbolic work.

An entry holds the targets of one check of one case — their shared graphs
(:class:`~diffcheck.symbolic.dag.Program`) as plain JSON — under a key that is the SHA-256
of everything the derivation depends on (:func:`environment_key` and the case's mathematics:
``CompiledCase.derivation_key``). Change any of them and the key changes.

**Data, never code.** An entry is JSON: each node an op name from ``dag.OPS``, its child
ids (each smaller than its own), and its datum in a fixed shape per op (integers and
fractions as exact decimal text). Nothing in it is unpickled or evaluated. :func:`decode`
validates every field, and the entry carries its own key and the SHA-256 of its content; an
entry whose key or hash does not match, or that fails validation (truncated, corrupt, copied
under another key, written by someone else), is refused with a note in
``CacheStats.errors``, recomputed and written again — never a crash, never a wrong result.
Programs holding a node that is not plain data (a ``foreign`` SymPy object) are not stored.

Where: ``$DIFFCHECK_CACHE_DIR``, else ``$XDG_CACHE_HOME/diffcheck``, else
``~/.cache/diffcheck``. A cache is passed in (``CheckOptions.cache``); with none,
:func:`~diffcheck.check_case` does not touch the disk. A directory that cannot be written
only costs the speed-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from .dag import Program
from .ops import OPS

FORMAT = "diffcheck-derivations 2"
MAX_ENTRY_BYTES = 256 << 20
#: modules whose source decides what a case's derivatives are
_SOURCES = ("language/library.py", "language/__init__.py", "symbolic/__init__.py", "symbolic/derive.py",
            "symbolic/dag.py")


class CorruptEntry(ValueError):
    """A cache entry that is not what diffcheck writes."""


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    writes: int = 0
    errors: list[str] = field(default_factory=list)

    def snapshot(self) -> tuple[int, int, int, int]:
        return self.hits, self.misses, self.writes, len(self.errors)

    def since(self, before: tuple[int, int, int, int]) -> "CacheStats":
        return CacheStats(self.hits - before[0], self.misses - before[1], self.writes - before[2],
                          self.errors[before[3]:])

    def add(self, other: "CacheStats") -> None:
        self.hits += other.hits
        self.misses += other.misses
        self.writes += other.writes
        self.errors.extend(other.errors)


@dataclass
class DerivationCache:
    """A content-addressed store of derivations in ``directory`` (see the module's docstring)."""

    directory: Path
    stats: CacheStats = field(default_factory=CacheStats)

    def path(self, key: str) -> Path:
        return self.directory / "derivations" / key[:2] / f"{key}.json"

    def get(self, key: str) -> list[dict] | None:
        """The targets stored under ``key`` (as :func:`decode` gives them), or None: a miss."""
        path = self.path(key)
        try:
            with open(path, "rb") as f:
                if not os.path.isfile(path):
                    raise CorruptEntry("not a regular file")
                blob = f.read(MAX_ENTRY_BYTES + 1)
            if len(blob) > MAX_ENTRY_BYTES:
                raise CorruptEntry("larger than any entry diffcheck writes")
            value = decode(blob, key)
        except FileNotFoundError:
            self.stats.misses += 1
            return None
        except (OSError, CorruptEntry) as err:
            self.stats.misses += 1
            self.stats.errors.append(f"{path}: refused ({err}); recomputed")
            return None
        self.stats.hits += 1
        return value

    def put(self, key: str, targets: list[dict]) -> None:
        path = self.path(key)
        try:
            blob = encode(key, targets)
        except CorruptEntry:  # not plain data (a foreign node): not stored
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(blob)
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


_environment: str | None = None


def environment_key(symengine: bool) -> str:
    """Versions and derivation source (hashed once per process), and whether SymEngine derives."""
    global _environment
    if _environment is None:
        import sympy

        from ..version import __version__
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
                                   "format": FORMAT, "source": source.hexdigest()})
    return _environment + ("+symengine" if symengine else "")


def key_of(environment: str, content: dict) -> str:
    blob = json.dumps([environment, content], sort_keys=True, default=repr)
    return hashlib.sha256(blob.encode()).hexdigest()


# -- the format -------------------------------------------------------------------------------
# An entry: {"format", "key", "sha256" (of the canonical JSON of "targets"), "targets": [
#   {"label", "rows", "cols", "wrt", "program": {"nsym", "outputs", "nodes": [[op, [args], datum]]}}]}

_CONSTS = ("pi", "E")
_SPECIALS = ("oo", "-oo", "zoo", "nan")


def _datum_out(op: str, data: Any) -> Any:
    if op == "sym":
        return data
    if op == "num":
        return f"{data.numerator}/{data.denominator}"
    if op == "float":
        (sign, man, exp, bc), prec = data
        return [sign, str(man), str(exp), bc, prec]
    if op in ("const", "special", "bool", "dirac"):
        return data
    if op == "foreign" or data is not None:  # not plain data, or data this format does not know
        raise CorruptEntry(f"a {op} node with data is not stored")
    return None


def _content(targets: list[dict]) -> list[dict]:
    out = []
    for t in targets:
        p: Program = t["program"]
        nodes = [[op, list(args), _datum_out(op, data)] for op, args, data in zip(p.ops, p.args, p.data)]
        out.append({"label": t["label"], "rows": list(t["rows"]), "cols": list(t["cols"]), "wrt": t["wrt"],
                    "program": {"nsym": p.nsym, "outputs": list(p.outputs), "nodes": nodes}})
    return out


def _digest(content: list[dict]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def encode(key: str, targets: list[dict]) -> bytes:
    """The entry of ``targets`` (dicts with label, rows, cols, wrt and a Program) under ``key``."""
    content = _content(targets)
    return json.dumps({"format": FORMAT, "key": key, "sha256": _digest(content), "targets": content},
                      separators=(",", ":")).encode()


def decode(blob: bytes, key: str) -> list[dict]:
    """The targets of an entry, validated field by field; CorruptEntry if anything is off."""
    try:
        entry = json.loads(blob)
    except (ValueError, RecursionError) as err:
        raise CorruptEntry(f"not JSON: {err}") from None
    _expect(isinstance(entry, dict) and entry.get("format") == FORMAT, "not a diffcheck entry of this format")
    _expect(entry.get("key") == key, "stored under another key")
    content = entry.get("targets")
    _expect(isinstance(content, list), "no targets")
    _expect(entry.get("sha256") == _digest(content), "its content does not match its hash")
    return [_target(t) for t in content]


def _expect(condition: bool, why: str) -> None:
    if not condition:
        raise CorruptEntry(why)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _target(t: Any) -> dict:
    _expect(isinstance(t, dict) and isinstance(t.get("label"), str) and _strings(t.get("rows"))
            and _strings(t.get("cols")) and (t.get("wrt") is None or isinstance(t.get("wrt"), str)),
            "a target without its label, rows and columns")
    p = t.get("program")
    _expect(isinstance(p, dict) and _int(p.get("nsym")) and p["nsym"] >= 0
            and isinstance(p.get("outputs"), list) and isinstance(p.get("nodes"), list), "a malformed program")
    ops, args, data = [], [], []
    for i, node in enumerate(p["nodes"]):
        _expect(isinstance(node, list) and len(node) == 3 and isinstance(node[0], str) and node[0] in OPS
                and node[0] != "foreign",
                f"node {i}: not a known operation")
        op, kids, datum = node
        _expect(isinstance(kids, list) and all(_int(k) and 0 <= k < i for k in kids),
                f"node {i}: a child that is not an earlier node")
        ops.append(op)
        args.append(tuple(kids))
        data.append(_datum_in(op, kids, datum, p["nsym"], i))
    outputs = p["outputs"]
    _expect(all(_int(j) and 0 <= j < len(ops) for j in outputs), "an output that is not a node")
    _expect(len(outputs) == len(t["rows"]) * len(t["cols"]), "outputs do not match rows × columns")
    return {"label": t["label"], "rows": t["rows"], "cols": t["cols"], "wrt": t["wrt"],
            "program": Program(ops, args, data, list(outputs), p["nsym"])}


def _datum_in(op: str, kids: list, datum: Any, nsym: int, i: int) -> Any:
    where = f"node {i} ({op})"
    arity = OPS[op].arity  # the op table's: None is any number
    _expect(arity is None or len(kids) == arity, f"{where}: {len(kids)} children")
    if op == "piecewise":
        _expect(len(kids) % 2 == 0 and kids, f"{where}: an odd number of children")
    if op == "sym":
        _expect(_int(datum) and 0 <= datum < nsym, f"{where}: not an input column")
        return datum
    if op == "num":
        _expect(isinstance(datum, str) and len(datum) <= 10_000, f"{where}: not a fraction")
        numerator, _, denominator = datum.partition("/")
        try:
            value = Fraction(int(numerator), int(denominator))
        except (ValueError, ZeroDivisionError):
            raise CorruptEntry(f"{where}: not a fraction") from None
        _expect(f"{value.numerator}/{value.denominator}" == datum, f"{where}: not a fraction in lowest terms")
        return value
    if op == "float":
        _expect(isinstance(datum, list) and len(datum) == 5 and datum[0] in (0, 1) and isinstance(datum[1], str)
                and isinstance(datum[2], str) and _int(datum[3]) and _int(datum[4]) and 0 < datum[4] <= 100_000
                and len(datum[1]) <= 40_000 and len(datum[2]) <= 40, f"{where}: not a float")
        try:
            man, exp = int(datum[1]), int(datum[2])
        except ValueError:
            raise CorruptEntry(f"{where}: not a float") from None
        _expect(man >= 0 and (datum[3] == man.bit_length() or (man == 0 and datum[3] in (-1, -2, -3))),
                f"{where}: not a float")
        from mpmath.libmp import MPZ
        return ((datum[0], MPZ(man), exp, datum[3]), datum[4])
    if op == "const":
        _expect(datum in _CONSTS, f"{where}: not a known constant")
    elif op == "special":
        _expect(datum in _SPECIALS, f"{where}: not a known value")
    elif op == "bool":
        _expect(isinstance(datum, bool), f"{where}: not a boolean")
    elif op == "dirac":
        _expect(_int(datum) and 0 <= datum <= 64, f"{where}: not an order")
    else:
        _expect(datum is None, f"{where}: unexpected data")
    return datum
