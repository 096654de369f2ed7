"""Read case files: YAML in, validated :class:`~diffcheck.case.Case` objects out.

Reading never raises for bad input. Every problem becomes a :class:`CaseFileError` that
names the file, line and column (counted from 1) and says how to fix it. When one case of a
file is wrong, the file's other cases are still returned.

The work happens in three steps:

1. The YAML is composed into nodes by PyYAML's safe loader, which refuses aliases,
   anchors, unusual tags and deep nesting. The nodes then become plain Python values, and
   a :class:`Spot` tree records where each value (and its key) is in the file.
2. The document is split into cases, with the file's ``defaults`` merged into each one.
3. Each case is checked by pydantic models. Their errors are rewritten in our own words and
   placed with the spot tree. Then come the checks that span several keys (name clashes,
   points that must give every variable, …). Finally the :class:`Case` is built.
"""

from __future__ import annotations

import difflib
import keyword
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Mapping, Sequence

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator
from pydantic import model_validator
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from ..case import (
    CHECK_KINDS,
    DEFAULT_DOMAIN,
    DEFAULT_DTYPES,
    DEFAULT_MODES,
    DEFAULT_SAMPLES,
    DEFAULT_TIMEOUT,
    DTYPES,
    MODES,
    Case,
    Check,
    Tolerance,
    Variable,
)
from ..errors import CaseFileError, Location

__all__ = ["discover", "load_file", "load_mapping", "load_paths", "load_text", "WrittenFloat", "MAX_BYTES", "MAX_DEPTH"]

MAX_BYTES = 1 << 20  # larger files are refused before parsing
MAX_DEPTH = 50  # deepest nesting of YAML collections accepted
CASE_FILE_SUFFIXES = (".yaml", ".yml")

_YAML_TAG = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_YAML_TAG + kind for kind in ("str", "int", "float", "bool", "null", "seq", "map")}
# YAML 1.1 (PyYAML) reads `1e-3` and `1.0e5` as text; case files mean numbers there.
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
_LINE_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")
_SURROGATE = re.compile("[\ud800-\udfff]")

_CASE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_IMPORT_TARGET = re.compile(rf"{_DOTTED}:{_DOTTED}")
# Bounds checked when a file is loaded, so that no value of a case file reaches the checker
# outside what it can do (an OverflowError deep in numpy is an internal error, not an answer).
MAX_TIMEOUT = 3600.0        # seconds one case may run
MAX_MAGNITUDE = 1e300       # |domain bound|: high - low stays a finite float64
MAX_RANK = 16               # dimensions of a variable or constant
MAX_ELEMENTS = 100_000      # entries of one variable or constant (one exact symbol each)
MAX_SAMPLES = 1_000_000     # random points of one case
MAX_DESCENT_STEPS = 1000    # iterations a descent claim may ask for
_FLOAT64_MAX = 1.7976931348623157e308

# Names with a fixed meaning in expressions; a variable with one of them would be ambiguous.
_RESERVED_NAMES = frozenset({"pi", "E", "torch", "F"})
_PLAIN_CHECKS = tuple(kind for kind in CHECK_KINDS if kind != "derivative")
_SIXTEEN_BIT = ("float16", "bfloat16")
_TOLERANCE_KEYS = ("rtol", "atol", *DTYPES)
_TOP_LEVEL_KEYS = ("defaults", "cases")
_SECTION_NOUNS = {"variables": "a variable", "constants": "a constant", "let": "a let step",
                  "imports": "an import"}


class WrittenFloat(float):
    """A float from an ``expect`` claim that remembers how it was written (``.text``), so
    that a claim can be compared to the significant digits written."""

    text: str

    def __new__(cls, value: float, text: str) -> "WrittenFloat":
        number = super().__new__(cls, value)
        number.text = text
        return number

    def __reduce__(self):
        return WrittenFloat, (float(self), self.text)


# --------------------------------------------------------------------------------------
# Step 1: YAML text -> plain values + a tree of positions
# --------------------------------------------------------------------------------------

@dataclass
class Spot:
    """Where a value is in the file (``value``), where its key is (``key``, for mapping
    entries), its source text (scalars only), and the spots of its children by key or
    list index."""

    value: Location
    key: Location | None = None
    text: str | None = None
    children: dict[str | int, "Spot"] = field(default_factory=dict)

    def locate(self, path: Sequence[str | int], at_key: bool = False) -> Location:
        """The location of ``path`` below this spot. If the path only partly exists, this
        falls back to the deepest part that does."""
        spot = self
        for part in path:
            child = spot.children.get(part)
            if child is None:
                return spot.value
            spot = child
        if at_key and spot.key is not None:
            return spot.key
        return spot.value


@dataclass
class _Document:
    value: Any
    spot: Spot | None
    problems: list[tuple[tuple, CaseFileError]]  # (path of the problem, error)


class _SafeComposer(yaml.SafeLoader):
    """PyYAML's safe loader, made stricter while it composes nodes."""

    def __init__(self, text: str, file: str):
        super().__init__(text)
        self.file = file
        self.depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        where = _mark_location(self.file, event.start_mark)
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise CaseFileError("YAML aliases/anchors are not allowed in case files", where,
                                hint="write the value out in full; use `defaults:` to share keys "
                                     "between the cases of a file")
        tag = getattr(event, "tag", None)
        if tag not in (None, "!") and tag not in _ALLOWED_TAGS:
            raise CaseFileError(f"YAML tag '{_short_tag(tag)}' is not allowed in case files", where,
                                hint="remove the tag; case files hold plain text, numbers, lists "
                                     "and mappings")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise CaseFileError(f"the YAML is nested more than {MAX_DEPTH} levels deep", where,
                                    hint="case files never need this much nesting")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_SafeComposer.add_implicit_resolver(_YAML_TAG + "float", _EXPONENT_FLOAT, list("-+0123456789."))


def _mark_location(file: str, mark) -> Location:
    return Location(file, mark.line + 1, mark.column + 1)


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_YAML_TAG):] if tag.startswith(_YAML_TAG) else tag


def _compose(text: str, file: str):
    """The YAML node tree of ``text`` (None for an empty document)."""
    try:
        composer = _SafeComposer(text, file)  # its reader already rejects special characters
        try:
            return composer.get_single_node()
        finally:
            composer.dispose()
    except yaml.MarkedYAMLError as err:
        raise _yaml_syntax_error(err, file) from None
    except yaml.reader.ReaderError as err:
        raise _reader_error(err, text, file) from None


def _yaml_syntax_error(err: yaml.MarkedYAMLError, file: str) -> CaseFileError:
    mark = err.problem_mark or err.context_mark
    problem = err.problem or err.context or "invalid YAML"
    message = f"invalid YAML: {problem}"
    if "single document" in (err.context or ""):
        message = "invalid YAML: a case file holds one YAML document, but a second one starts here"
    elif err.context and err.problem and err.context_mark is not None:
        message += f" ({err.context} at line {err.context_mark.line + 1})"
    location = _mark_location(file, mark) if mark is not None else Location(file, 1, 1)
    return CaseFileError(message, location, hint=_yaml_hint(f"{problem} {err.context or ''}"))


def _yaml_hint(problem: str) -> str:
    if "'\\t'" in problem:
        return "indent with spaces, not tabs"
    if "single document" in problem:
        return "put several cases under `cases:` instead of separate YAML documents"
    return ("check the indentation, and quote values that contain ': ' or ' #' or that start "
            "with one of * & ! [ { | > % @ `")


def _reader_error(err: yaml.reader.ReaderError, text: str, file: str) -> CaseFileError:
    before = text[: err.position]
    line = before.count("\n") + 1
    column = err.position - (before.rfind("\n") + 1) + 1
    character = err.character if isinstance(err.character, str) else chr(err.character)
    return CaseFileError(f"case file contains the special character U+{ord(character):04X}",
                         Location(file, line, column), hint="remove it; case files are plain text")


class _TreeReader:
    """Turns composed YAML nodes into plain values and a :class:`Spot` tree. Problems that
    belong to one place (a duplicate key, a number that cannot be read) are collected with
    their path, so that only the case holding them is lost."""

    def __init__(self, text: str, file: str):
        self.constructor = yaml.constructor.SafeConstructor()
        self.file = file
        self.lines = _LINE_BREAK.split(text)
        self.problems: list[tuple[tuple, CaseFileError]] = []

    def read(self, node, path: tuple = (), key: Location | None = None) -> tuple[Any, Spot]:
        if isinstance(node, yaml.MappingNode):
            return self.read_mapping(node, path, key)
        if isinstance(node, yaml.SequenceNode):
            spot = Spot(self.at(node.start_mark), key)
            items = []
            for index, item_node in enumerate(node.value):
                item, spot.children[index] = self.read(item_node, path + (index,))
                items.append(item)
            return items, spot
        return self.read_scalar(node, path), Spot(self.content_location(node), key, text=node.value)

    def read_mapping(self, node, path: tuple, key: Location | None) -> tuple[dict, Spot]:
        spot = Spot(self.at(node.start_mark), key)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_location = self.at(key_node.start_mark)
            if not isinstance(key_node, yaml.ScalarNode):
                self.complain(path, "a key must be a plain name, not a list or mapping", key_location,
                              hint="write `name: value`")
                continue
            # Keys are names; their text is what the user typed, whatever YAML would read it as.
            name = self.text_of(key_node, path)
            if name in mapping:
                first = spot.children[name].key
                self.complain(path + (name,), f"duplicate key '{name}'", key_location,
                              hint=f"it is already given at line {first.line}; keep only one")
                continue
            mapping[name], spot.children[name] = self.read(value_node, path + (name,), key_location)
        return mapping, spot

    def read_scalar(self, node, path: tuple) -> Any:
        kind = node.tag.rpartition(":")[2]
        try:
            if kind == "null":
                return None
            if kind == "bool":
                return self.constructor.construct_yaml_bool(node)
            if kind == "int":
                return self.constructor.construct_yaml_int(node)
            if kind == "float":
                return self.constructor.construct_yaml_float(node)
        except (ValueError, KeyError):
            self.complain(path, f"cannot read {_shorten(node.value)!r} as {kind}",
                          self.at(node.start_mark), hint="write a plain number, or quote it as text")
        # Text, and scalars YAML 1.1 would read as dates and the like: kept as written.
        return self.text_of(node, path)

    def text_of(self, node, path: tuple) -> str:
        """The text of a scalar. Escaped surrogate pairs ("\\ud83d\\ude00", as JSON writes
        them) become the character they encode; a lone surrogate is refused."""
        text = node.value
        if not _SURROGATE.search(text):
            return text
        try:
            return text.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            self.complain(path, "text contains a lone surrogate escape (\\ud800-\\udfff)",
                          self.at(node.start_mark), hint="write the character itself")
            return _SURROGATE.sub("\ufffd", text)

    def content_location(self, node) -> Location:
        """Where the text of a scalar starts: after the quote of a quoted scalar, on the first
        content line of a block scalar."""
        if node.style in ('"', "'"):
            return self.at(node.start_mark).shifted(1)
        if node.style in ("|", ">"):
            last = min(node.end_mark.line, len(self.lines) - 1)
            for number in range(node.start_mark.line + 1, last + 1):
                line = self.lines[number]
                if line.strip():
                    return Location(self.file, number + 1, len(line) - len(line.lstrip(" ")) + 1)
        return self.at(node.start_mark)

    def at(self, mark) -> Location:
        return _mark_location(self.file, mark)

    def complain(self, path: tuple, message: str, location: Location, hint: str | None = None):
        self.problems.append((path, CaseFileError(message, location, hint)))


def _read_document(text: str, file: str) -> _Document:
    node = _compose(text, file)
    if node is None:
        return _Document(None, None, [])
    reader = _TreeReader(text, file)
    value, spot = reader.read(node)
    return _Document(value, spot, reader.problems)


# --------------------------------------------------------------------------------------
# Step 2: a document -> its cases, defaults merged
# --------------------------------------------------------------------------------------

@dataclass
class _RawCase:
    data: dict[str, Any]
    spot: Spot
    label: str  # how messages name the case: "case 'sigmoid'", "case #2"
    problems: list[CaseFileError]

    @property
    def name(self) -> str | None:
        name = self.data.get("name")
        return name if isinstance(name, str) else None


def _split_cases(document: _Document, file: str) -> tuple[list[_RawCase], list[CaseFileError]]:
    """The cases of a document, and the errors that lose the whole file."""
    top, spot = document.value, document.spot
    if top is None or spot is None:
        return [], [CaseFileError("no case in file", Location(file, 1, 1),
                                  hint="write a case with `name:`, `variables:` and `expr:`")]
    if not isinstance(top, dict):
        hint = ("put the list under `cases:`" if isinstance(top, list)
                else "start with `name:` for one case, or `cases:` for several")
        return [], [CaseFileError(f"a case file must hold a mapping, not {_describe(top)}",
                                  spot.value, hint=hint)]
    if "cases" not in top and "defaults" not in top:
        problems = [error for _, error in document.problems]
        return [_RawCase(top, spot, _case_label(top, "the case"), problems)], []
    return _split_multi_case(top, spot, document.problems)


def _case_label(data: Any, fallback: str) -> str:
    """How messages name a case: by its name when it has one."""
    name = data.get("name") if isinstance(data, dict) else None
    return f"case '{name}'" if isinstance(name, str) else fallback


def _split_multi_case(top: dict, spot: Spot, problems: list[tuple[tuple, CaseFileError]]
                      ) -> tuple[list[_RawCase], list[CaseFileError]]:
    errors = [error for path, error in problems if path[:1] != ("cases",) or len(path) < 2]
    for key in top:
        if key not in _TOP_LEVEL_KEYS:
            errors.append(_unknown_key_error(key, "the file", _TOP_LEVEL_KEYS,
                                             spot.locate([key], at_key=True)))
    defaults, defaults_spot = _read_defaults(top, spot, errors)
    cases = top.get("cases")
    if "cases" not in top or cases is None or cases == []:
        errors.append(CaseFileError("no case in file", spot.locate(["cases"]),
                                     hint="list the cases under `cases:`, each with `name:`, "
                                          "`variables:` and `expr:`"))
    elif not isinstance(cases, list):
        errors.append(CaseFileError(f"`cases` must be a list of cases, got {_describe(cases)}",
                                    spot.locate(["cases"]), hint="write each case as `- name: ...`"))
    if errors:
        return [], errors

    problems_of_case: dict[int, list[CaseFileError]] = {}
    for path, error in problems:
        problems_of_case.setdefault(path[1], []).append(error)
    raws = []
    for index, data in enumerate(cases):
        case_spot = spot.children["cases"].children[index]
        label = _case_label(data, f"case #{index + 1}")
        if not isinstance(data, dict):
            raws.append(_RawCase({}, case_spot, label, [CaseFileError(
                f"a case must be a mapping, not {_describe(data)}", case_spot.value,
                hint="write a case as `- name: ...` with its keys indented below")]))
            continue
        merged = {**{k: v for k, v in defaults.items() if k not in data}, **data}
        children = {k: defaults_spot.children[k] for k in defaults if k not in data}
        merged_spot = Spot(case_spot.value, case_spot.key, children={**children, **case_spot.children})
        raws.append(_RawCase(merged, merged_spot, label, problems_of_case.get(index, [])))
    return raws, []


def _read_defaults(top: dict, spot: Spot, errors: list[CaseFileError]) -> tuple[dict, Spot]:
    """The file's defaults (keys checked once here rather than in every case)."""
    defaults = top.get("defaults")
    if defaults is None:
        return {}, Spot(spot.value)
    defaults_spot = spot.children["defaults"]
    if not isinstance(defaults, dict):
        errors.append(CaseFileError(f"`defaults` must be a mapping of case keys, got "
                                    f"{_describe(defaults)}", defaults_spot.value,
                                    hint="for example `defaults: {dtypes: [float64]}`"))
        return {}, defaults_spot
    valid = tuple(key for key in CaseModel.model_fields if key != "name")
    for key in defaults:
        where = defaults_spot.locate([key], at_key=True)
        if key == "name":
            errors.append(CaseFileError("`name` cannot be a default: every case needs its own name",
                                        where, hint="move `name` into each case"))
        elif key not in valid:
            errors.append(_unknown_key_error(key, "`defaults`", valid, where))
    return defaults, defaults_spot


def _unknown_key_error(key: str, owner: str, valid: Sequence[str], location: Location,
                       case: str | None = None) -> CaseFileError:
    hint = _did_you_mean(key, valid) or f"valid keys: {', '.join(valid)}"
    if isinstance(key, str) and any(c in key for c in "()[]=*/+"):
        # `{expr: f(x, k=1), ...}`: YAML ends a value of a flow mapping at its first comma
        hint = ("this looks like the rest of an expression cut at a comma: inside `{...}` YAML ends a "
                "value at the first comma, so quote an expression that has one, e.g. "
                "`expr: \"gelu(x, approximate='tanh')\"`, or write the case as a block mapping")
    return CaseFileError(f"unknown key '{key}' in {owner}", location, hint=hint, case=case)


# --------------------------------------------------------------------------------------
# Step 3: the schema (pydantic) and its error messages
# --------------------------------------------------------------------------------------
#
# Validators raise `_problem(...)`: a message in our words in which "{key}" stands for the
# offending key path and "{owner}" for the mapping holding it, plus an optional hint and a
# `sub` path that points below the value pydantic was validating.

def _problem(message: str, hint: str | None = None, sub: Iterable[str | int] = (),
             at_key: bool = False) -> PydanticCustomError:
    return PydanticCustomError("diffcheck", "{message}",
                               {"message": message, "hint": hint, "sub": tuple(sub), "at_key": at_key})


def _unknown_key(valid: Sequence[str], sub: Iterable[str | int] = ()) -> PydanticCustomError:
    return PydanticCustomError("unknown_key", "unknown key", {"valid": tuple(valid), "sub": tuple(sub)})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_case_name(name: str) -> str:
    if not _CASE_NAME.fullmatch(name):
        suggestion = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "my_case"
        raise _problem(f"case name {name!r} may only contain letters, digits, '_', '.' and '-'",
                       hint=f"for example '{suggestion}'")
    return name


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise _problem(f"invalid name {name!r} in {{owner}}", at_key=True,
                       hint="a name starts with a letter and uses only letters, digits and '_'")
    if name in _RESERVED_NAMES or keyword.iskeyword(name):
        raise _problem(f"{name!r} in {{owner}} is a reserved word and cannot be a name",
                       at_key=True, hint="choose another name")
    return name


def _to_expression(value: Any) -> str:
    if isinstance(value, str):
        if not value.strip():
            raise _problem("{key} must not be empty", hint="write an expression such as `x**2`")
        return value
    if _is_number(value):
        return repr(value)
    raise _problem(f"{{key}} must be an expression (text or a number), got {_describe(value)}",
                   hint="put the expression in quotes if YAML reads it as something else")


def _to_shape(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        hint = f"write `shape: [{value}]`" if _is_whole(value) else "for example `shape: [3]`"
        raise _problem(f"{{key}} must be a list of sizes like [3] or [2, 4], got {_describe(value)}",
                       hint=hint)
    for index, size in enumerate(value):
        if not _is_whole(size) or size < 1:
            raise _problem(f"{{key}} must be a whole number >= 1, got {_describe(size)}", sub=(index,))
    _check_size(tuple(value))
    return tuple(value)


def _check_size(shape: tuple[int, ...], sub: tuple = ()) -> None:
    if len(shape) > MAX_RANK:
        raise _problem(f"{{key}} has {len(shape)} dimensions; at most {MAX_RANK} are supported", sub=sub)
    if math.prod(shape) > MAX_ELEMENTS:
        raise _problem(f"{{key}} has {math.prod(shape)} entries; at most {MAX_ELEMENTS:,} are supported "
                       "(each is an exact symbol)", hint="check a smaller size: derivatives do not "
                       "depend on it", sub=sub)


def _to_domain(value: Any) -> tuple[float, float]:
    if value is None:
        return DEFAULT_DOMAIN
    if not isinstance(value, list) or len(value) != 2:
        raise _problem(f"{{key}} must be [low, high], got {_describe(value)}",
                       hint="for example `domain: [-1, 1]`")
    for index, bound in enumerate(value):
        if not _is_number(bound) or not math.isfinite(bound):
            raise _problem(f"{{key}} must be a finite number, got {_describe(bound)}", sub=(index,))
        if abs(bound) > MAX_MAGNITUDE:
            raise _problem(f"{{key}} must be within ±{MAX_MAGNITUDE:g}, got {_describe(bound)}",
                           hint="points are drawn uniformly: a wider interval overflows float64",
                           sub=(index,))
    low, high = value
    if not low < high:
        raise _problem(f"{{key}} must have low < high, got [{low}, {high}]",
                       hint="swap the bounds" if low > high else "give an interval with low < high")
    return float(low), float(high)


def _array_shape(value: Any, sub: tuple = ()) -> tuple[int, ...]:
    """The shape of a number or of rectangular nested lists of numbers."""
    if _is_number(value):
        if isinstance(value, int) and abs(value) > _FLOAT64_MAX:
            raise _problem(f"{{key}} is too large for float64, got {_describe(value)}", sub=sub)
        return ()
    if not isinstance(value, list):
        raise _problem(f"{{key}} must be a number or a list of numbers, got {_describe(value)}", sub=sub)
    if not value:
        raise _problem("{key} must not be an empty list", sub=sub)
    shapes = [_array_shape(item, sub + (index,)) for index, item in enumerate(value)]
    for index, shape in enumerate(shapes):
        if shape != shapes[0]:
            raise _problem(f"{{key}} has shape {list(shape)} but the first entry has shape "
                           f"{list(shapes[0])}", hint="nested lists must be rectangular",
                           sub=sub + (index,))
    return (len(value),) + shapes[0]


def _to_array(value: Any) -> Any:
    _check_size(_array_shape(value))
    return value


def _to_float_array(value: Any) -> Any:
    _check_size(_array_shape(value))
    return _floats(value)


def _floats(value: Any) -> Any:
    return [_floats(item) for item in value] if isinstance(value, list) else float(value)


def _to_claimed_numbers(value: Any) -> Any:
    """Numbers of a claim (a point, a claimed value, a descent state): finite, since a claim
    is decided against an exact value."""
    numbers = _to_float_array(value)
    flat = [numbers]
    while flat and isinstance(flat[0], list):
        flat = [item for row in flat for item in row]
    if not all(math.isfinite(x) for x in flat):
        raise _problem(f"{{key}} must be finite, got {_describe(value)}")
    return numbers


def _to_import_target(value: str) -> str:
    if not _IMPORT_TARGET.fullmatch(value):
        raise _problem(f"{{key}} must look like 'package.module:attribute', got {_describe(value)}",
                       hint="name the module, a colon, then the callable")
    return value


def _to_checks(value: Any) -> tuple[Check, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        hint = f"write it as a list: `check: [{value}]`" if isinstance(value, str) else \
            "for example `check: [gradient, {derivative: 2}]`"
        raise _problem(f"{{key}} must be a list of checks, got {_describe(value)}", hint=hint)
    checks: list[Check] = []
    for index, item in enumerate(value):
        check = _to_check(item, (index,))
        if check in checks:
            raise _problem(f"{{key}} is {check.label} again", hint="list each check once", sub=(index,))
        checks.append(check)
    return tuple(checks)


def _to_check(item: Any, sub: tuple) -> Check:
    if isinstance(item, str):
        if item == "hessian":
            return Check("hessian", 2)
        if item in _PLAIN_CHECKS:
            return Check(item)
        if item == "derivative":
            raise _problem("{key} must say which derivative", hint="write `{derivative: 1}`", sub=sub)
    if isinstance(item, dict):
        return _to_derivative_check(item, sub)
    choices = ", ".join(_PLAIN_CHECKS)
    close = difflib.get_close_matches(item, CHECK_KINDS, n=1) if isinstance(item, str) else []
    hint = None
    if close:
        hint = "did you mean `{derivative: 1}`?" if close[0] == "derivative" else f"did you mean '{close[0]}'?"
    raise _problem(f"{{key}} must be one of {choices} or {{derivative: n}}, got {_describe(item)}",
                   hint=hint, sub=sub)


def _to_derivative_check(item: dict, sub: tuple) -> Check:
    for key in item:
        if key != "derivative":
            raise _unknown_key(("derivative",), sub=sub + (key,))
    if "derivative" not in item:
        raise _problem("{key} must be `{derivative: n}`", hint="for example `{derivative: 2}`", sub=sub)
    order = item["derivative"]
    if not _is_whole(order) or order < 1:
        raise _problem(f"{{key}} must be a whole number >= 1, got {_describe(order)}",
                       sub=sub + ("derivative",))
    return Check("derivative", order)


def _choice_list(choices: Sequence[str], what: str):
    """A validator for a non-empty list of distinct names from ``choices``."""

    def validate(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            hint = (f"write it as a list: [{value}]" if isinstance(value, str)
                    else f"for example [{', '.join(choices[:2])}]")
            raise _problem(f"{{key}} must be a list of {what}, got {_describe(value)}", hint=hint)
        if not value:
            raise _problem(f"{{key}} must name at least one of the {what}: {', '.join(choices)}")
        seen: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or item not in choices:
                hint = _did_you_mean(item, choices) if isinstance(item, str) else None
                raise _problem(f"{{key}} must be one of {', '.join(choices)}, got {_describe(item)}",
                               hint=hint, sub=(index,))
            if item in seen:
                raise _problem(f"{{key}} is '{item}' again", hint="list each one once", sub=(index,))
            seen.append(item)
        return tuple(seen)

    return validate


def _to_samples(value: Any) -> int | str:
    if value == "all" and isinstance(value, str):
        return "all"
    if _is_whole(value):
        if value < 0:
            raise _problem(f"{{key}} must not be negative, got {value}", hint="use 0 for explicit points only")
        if value > MAX_SAMPLES:
            raise _problem(f"{{key}} must be at most {MAX_SAMPLES:,}, got {value}")
        return value
    hint = (_did_you_mean(value.lower(), ["all"]) if isinstance(value, str) else None) or \
        "for example `samples: 100`"
    raise _problem(f"{{key}} must be a whole number or 'all', got {_describe(value)}", hint=hint)


def _to_seed(value: Any) -> int:
    if not _is_whole(value) or value < 0:
        raise _problem(f"{{key}} must be a whole number >= 0, got {_describe(value)}",
                       hint="for example `seed: 0`")
    return value


def _to_timeout(value: Any) -> float:
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise _problem(f"{{key}} must be a positive number of seconds, got {_describe(value)}",
                       hint="for example `timeout: 60`")
    if value > MAX_TIMEOUT:
        raise _problem(f"{{key}} must be at most {MAX_TIMEOUT:g} seconds, got {_describe(value)}",
                       hint="for example `timeout: 600`")
    return float(value)


def _wrap_tolerance_for_every_dtype(value: Any) -> Any:
    # `{rtol, atol}` applies to every dtype: stored under "*" like a per-dtype entry.
    if isinstance(value, dict) and {"rtol", "atol"} & value.keys():
        return {"*": value}
    return value


def _check_tolerance_key(key: str) -> str:
    if key != "*" and key not in DTYPES:
        raise _unknown_key(_TOLERANCE_KEYS)
    return key


_Name = Annotated[str, AfterValidator(_check_name)]
_Expression = Annotated[str, PlainValidator(_to_expression)]
_Array = Annotated[Any, PlainValidator(_to_array)]
_FloatArray = Annotated[Any, PlainValidator(_to_float_array)]
_NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class VariableModel(_Strict):
    shape: Annotated[tuple[int, ...], PlainValidator(_to_shape)] = ()
    domain: Annotated[tuple[float, float], PlainValidator(_to_domain)] = DEFAULT_DOMAIN


class ToleranceModel(_Strict):
    rtol: _NonNegative
    atol: _NonNegative


def _to_finite_number(value: Any) -> float:
    if not _is_number(value) or not math.isfinite(value):
        raise _problem(f"{{key}} must be a finite number, got {_describe(value)}")
    return value


def _to_step_number(value: Any) -> int:
    if not _is_whole(value) or value < 1:
        raise _problem(f"{{key}} must be a whole number of steps >= 1, got {_describe(value)}",
                       hint="for example `after: 10`")
    return value


def _one_or_list(value: Any) -> Any:
    # `descent:` is one claim or a list of them; one is read as a list of one (its errors are
    # placed without the index again in _translate)
    return [value] if isinstance(value, dict) else value


def _to_gradient_numbers(value: Any) -> Any:
    # {variable: numbers}, or the numbers alone for a case of one variable (checked by name
    # in _claim_problems)
    if isinstance(value, dict):
        if not value:
            raise _problem("{key} names no variable", hint="map each variable to its numbers: {w: 24}")
        return {name: _to_claimed_numbers(numbers) for name, numbers in value.items()}
    return _to_claimed_numbers(value)


_FiniteNumber = Annotated[float, PlainValidator(_to_finite_number)]
_ClaimedNumbers = Annotated[Any, PlainValidator(_to_claimed_numbers)]
_Numbers = dict[str, _ClaimedNumbers]


class ValueClaimModel(_Strict):
    """One entry of `expect.values`: a point and the numbers claimed there."""

    at: _Numbers
    value: _ClaimedNumbers | None = None
    derivative: _ClaimedNumbers | None = None
    gradient: Annotated[Any, PlainValidator(_to_gradient_numbers)] = None
    jacobian: _ClaimedNumbers | None = None
    intermediates: Annotated[_Numbers, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _claims_something(self) -> "ValueClaimModel":
        if all(getattr(self, kind) is None for kind in VALUE_CLAIMS):
            raise _problem("{owner} claims nothing at its point", hint=f"add one of {', '.join(VALUE_CLAIMS)}",
                           sub=("at",), at_key=True)
        return self


class DescentStepModel(_Strict):
    """A claimed state after a step: variables, optionally `loss`, and `after` (the step number)."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)
    __pydantic_extra__: dict[str, _ClaimedNumbers]  # the variables' values, checked by name in _claim_problems
    after: Annotated[int, PlainValidator(_to_step_number)] | None = None
    loss: _FiniteNumber | None = None

    @model_validator(mode="after")
    def _claims_something(self) -> "DescentStepModel":
        if self.loss is None and not self.__pydantic_extra__:
            raise _problem("{key} claims nothing", hint="give the variables' values or `loss` after the step")
        return self


class DescentModel(_Strict):
    """A gradient-descent claim: from `start`, with learning rate `lr`, the claimed `steps`."""

    start: _Numbers
    lr: _FiniteNumber
    steps: Annotated[list[DescentStepModel], Field(min_length=1)]

    @model_validator(mode="after")
    def _steps_in_order(self) -> "DescentModel":
        k = 0
        for index, step in enumerate(self.steps):
            if step.after is not None and step.after <= k:
                raise _problem(f"{{key}} must be a whole number greater than {k} (the step before)",
                               sub=("steps", index, "after"))
            k = step.after if step.after is not None else k + 1
            if k > MAX_DESCENT_STEPS:
                raise _problem(f"a descent claim may ask for at most {MAX_DESCENT_STEPS} steps; {{key}} asks for {k}",
                               sub=("steps", index))
        return self


VALUE_CLAIMS = tuple(k for k in ValueClaimModel.model_fields if k != "at")


class ExpectModel(_Strict):
    """The claims, validated here once; the case keeps them as written (numbers remember
    their digits, see WrittenFloat)."""

    derivative: _Expression | None = None
    gradient: Annotated[dict[str, _Expression], Field(min_length=1)] | None = None
    jacobian: _Expression | None = None
    values: Annotated[list[ValueClaimModel], Field(min_length=1)] | None = None
    differentiable: bool | None = None
    descent: Annotated[list[DescentModel], BeforeValidator(_one_or_list), Field(min_length=1)] | None = None


class CaseModel(_Strict):
    name: Annotated[str, AfterValidator(_check_case_name)]
    description: str | None = None
    variables: Annotated[dict[_Name, VariableModel | None], Field(min_length=1)]
    constants: dict[_Name, _Array] = {}
    let: dict[_Name, _Expression] = {}
    expr: _Expression
    torch: str | None = None
    imports: dict[_Name, Annotated[str, AfterValidator(_to_import_target)]] = {}
    check: Annotated[tuple[Check, ...] | None, PlainValidator(_to_checks)] = None
    modes: Annotated[tuple[str, ...], PlainValidator(_choice_list(MODES, "modes"))] = DEFAULT_MODES
    points: list[dict[str, _FloatArray]] = []
    samples: Annotated[int | str, PlainValidator(_to_samples)] = DEFAULT_SAMPLES
    seed: Annotated[int, PlainValidator(_to_seed)] = 0
    dtypes: Annotated[tuple[str, ...], PlainValidator(_choice_list(DTYPES, "dtypes"))] = DEFAULT_DTYPES
    tolerance: Annotated[dict[Annotated[str, AfterValidator(_check_tolerance_key)], ToleranceModel] | None,
                         BeforeValidator(_wrap_tolerance_for_every_dtype)] = None
    expect: ExpectModel | None = None
    xfail: str | None = None
    timeout: Annotated[float, PlainValidator(_to_timeout)] = DEFAULT_TIMEOUT


_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "list_type": "a list",
    "tuple_type": "a list",
    "finite_number": "a finite number",
    "too_short": "non-empty",
}
_HINTS = {
    "name": "put it in quotes",
    "description": "put it in quotes",
    "xfail": "give the reason as text, e.g. `xfail: \"torch's kernel is unstable here\"`",
    "torch": "put the expression in quotes",
    "variables": "for example `variables: {x: {}, w: {shape: [3], domain: [-1, 1]}}`",
    "constants": "for example `constants: {y: [1.0, 2.0]}`",
    "let": "for example `let: {z: x**2}`",
    "imports": "for example `imports: {fused: \"mypkg.ops:fused\"}`",
    "points": "for example `points: [{x: 0.5}, {x: 1.0}]`",
    "tolerance": "write `{rtol: 1e-5, atol: 1e-8}`, or per dtype `{float32: {rtol: .., atol: ..}}`",
    "expect": "see the `expect` section of the case-file docs",
}
_MISSING_HINTS = {
    "name": "add `name: <unique-name>`",
    "variables": "add `variables: {x: {}}`",
    "expr": "add `expr: <expression>`",
    "rtol": "give both rtol and atol",
    "atol": "give both rtol and atol",
}


def _translate(error: dict, raw: _RawCase) -> CaseFileError:
    """One pydantic error, in our words, at its place in the file."""
    loc, ctx, kind = error["loc"], error.get("ctx") or {}, error["type"]
    path = [part for part in loc if part != "[key]"]
    if path[:1] == ["tolerance"] and path[1:2] == ["*"]:
        del path[1]
    if path[:3] == ["expect", "descent", 0] and isinstance(raw.data.get("expect", {}).get("descent"), dict):
        del path[2]
    path = tuple(path) + tuple(ctx.get("sub", ()))
    at_key = "[key]" in loc or ctx.get("at_key") or kind in ("extra_forbidden", "unknown_key")

    if kind in ("extra_forbidden", "unknown_key"):
        owner = _owner_label(path[:-1], raw.label)
        valid = ctx.get("valid") or _known_keys(path[:-1])
        return _unknown_key_error(path[-1], owner, valid, raw.spot.locate(path, True), raw.name)
    if kind == "missing":
        message = f"{_owner_label(path[:-1], raw.label)} is missing the required key `{path[-1]}`"
        hint = _MISSING_HINTS.get(path[-1])
    elif kind == "diffcheck":
        message = ctx["message"].replace("{key}", f"`{_human(path)}`").replace(
            "{owner}", f"`{_human(path[:-1])}`")
        hint = ctx.get("hint")
    else:
        message = f"`{_human(path)}` must be {_expected(kind, ctx, error)}, got {_describe(error['input'])}"
        hint = _HINTS.get(path[0]) if path else None
    return CaseFileError(message, raw.spot.locate(path, at_key), hint, case=raw.name)


def _expected(kind: str, ctx: dict, error: dict) -> str:
    if kind == "greater_than_equal":
        return f">= {ctx['ge']}"
    if kind == "greater_than":
        return f"> {ctx['gt']}"
    return _EXPECTED.get(kind) or f"valid ({error['msg'].lower()})"


def _known_keys(owner: tuple) -> tuple[str, ...]:
    if not owner:
        return tuple(CaseModel.model_fields)
    if owner[0] == "variables" and len(owner) == 2:
        return tuple(VariableModel.model_fields)
    if owner[0] == "tolerance":
        return tuple(ToleranceModel.model_fields)
    if owner == ("expect",):
        return tuple(ExpectModel.model_fields)
    if owner[:2] == ("expect", "values") and len(owner) == 3:
        return tuple(ValueClaimModel.model_fields)
    if owner[:2] == ("expect", "descent") and len(owner) <= 3:
        return tuple(DescentModel.model_fields)
    return ()


def _owner_label(owner: tuple, case_label: str) -> str:
    if not owner:
        return case_label
    if owner[0] == "variables" and len(owner) == 2:
        return f"variable '{owner[1]}' of {case_label}"
    return f"`{_human(owner)}` of {case_label}"


def _human(path: Sequence[str | int]) -> str:
    """A key path as a reader would write it: ``points[2].x``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (bool)"
    kind = "mapping" if isinstance(value, dict) else type(value).__name__
    return f"{_shorten(repr(value))} ({kind})"


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean '{close[0]}'?" if close else None


# --------------------------------------------------------------------------------------
# Checks that span several keys, and building the Case
# --------------------------------------------------------------------------------------

def _check_consistency(model: CaseModel, raw: _RawCase) -> list[CaseFileError]:
    return [*_name_clashes(model, raw), *_point_problems(model, raw), *_samples_problems(model, raw),
            *_derivative_problems(model, raw), *_claim_problems(raw)]


def _error(raw: _RawCase, message: str, path: Sequence[str | int], hint: str | None = None,
           at_key: bool = False) -> CaseFileError:
    return CaseFileError(message, raw.spot.locate(path, at_key), hint, case=raw.name)


def _name_clashes(model: CaseModel, raw: _RawCase) -> list[CaseFileError]:
    errors, owners = [], {}
    for section in ("variables", "constants", "let", "imports"):
        for name in getattr(model, section):
            if name in owners:
                errors.append(_error(raw, f"name '{name}' is used both as {_SECTION_NOUNS[owners[name]]} "
                                          f"and as {_SECTION_NOUNS[section]}", (section, name),
                                     hint="rename one of them", at_key=True))
            else:
                owners[name] = section
    return errors


def _point_problems(model: CaseModel, raw: _RawCase) -> list[CaseFileError]:
    variables = _variable_shapes(model)
    return [error for index, point in enumerate(model.points)
            for error in _mapping_problems(raw, ("points", index), point, variables,
                                           every_hint="every point gives every variable")]


def _variable_shapes(model: CaseModel) -> dict[str, tuple[int, ...]]:
    return {name: (spec.shape if spec else ()) for name, spec in model.variables.items()}


def _mapping_problems(raw: _RawCase, path: tuple, given: Mapping[str, Any], names: Mapping[str, tuple | None],
                      every: bool = True, what: str = "variable", also: Sequence[str] = (),
                      every_hint: str = "give every variable") -> list[CaseFileError]:
    """A mapping ``name: value`` at ``path`` checked against ``names`` (name → shape, or None
    for any shape): unknown names (did you mean), missing ones (when ``every``), shapes.
    ``also`` are further keys allowed there (`loss`, `after`)."""
    errors, where = [], _human(path)
    if every:
        for name in names:
            if name not in given:
                errors.append(_error(raw, f"`{where}` gives no value for {what} '{name}'", path,
                                     hint=f"{every_hint}: {', '.join(names)}"))
    for name, value in given.items():
        if name in also:
            continue
        if name not in names:
            known = [*names, *also]
            errors.append(_error(raw, f"`{where}` gives '{name}', which is not a {what} of {raw.label}",
                                 path + (name,), hint=_did_you_mean(name, known)
                                 or f"the {what}s are {', '.join(names) or 'none'}", at_key=True))
        elif names[name] is not None and _shape_or_none(value) not in (None, names[name]):
            errors.append(_error(raw, f"`{where}.{name}` has shape {list(_array_shape(value))} "
                                      f"but {what} '{name}' has shape {list(names[name])}",
                                 path + (name,), hint=_value_of_shape(names[name])))
    return errors


def _shape_or_none(value: Any) -> tuple[int, ...] | None:
    try:
        return _array_shape(value)
    except PydanticCustomError:  # not numbers: reported by the schema
        return None


def _claim_problems(raw: _RawCase) -> list[CaseFileError]:
    """The names inside `expect` claims: points give exactly the variables, gradients name
    variables, intermediates name `let` steps, descent states name variables (and `loss`).

    Read from the raw data, as far as it has the right structure, so that these are reported
    with the structural errors of the same file, all at once."""
    data = raw.data
    expect, variables = data.get("expect"), data.get("variables")
    if not isinstance(expect, dict) or not isinstance(variables, dict):
        return []
    shapes = {name: _declared_shape(spec) for name, spec in variables.items()}
    steps = dict.fromkeys(data.get("let") or {}) if isinstance(data.get("let"), dict) else {}

    def check(path, given, names, **how):
        return _mapping_problems(raw, path, given, names, **how) if isinstance(given, dict) else []

    errors = check(("expect", "gradient"), expect.get("gradient"), dict.fromkeys(shapes), every=False)
    values = expect.get("values")
    for index, entry in enumerate(values if isinstance(values, list) else ()):
        if isinstance(entry, dict):
            path = ("expect", "values", index)
            errors += check(path + ("at",), entry.get("at"), shapes)
            gradient = entry.get("gradient")
            if gradient is not None and not isinstance(gradient, dict) and len(shapes) != 1:
                errors.append(_error(raw, f"`{_human(path + ('gradient',))}` gives numbers without naming "
                                          "the variable, but the case has several", path + ("gradient",),
                                     hint=f"map each variable to its numbers: {{{next(iter(shapes), 'w')}: ...}}"))
            errors += check(path + ("gradient",), gradient, shapes, every=False)
            errors += check(path + ("intermediates",), entry.get("intermediates"), steps, every=False,
                            what="`let` step")
    descent = expect.get("descent")
    claims = [(("expect", "descent"), descent)] if isinstance(descent, dict) else \
        [(("expect", "descent", i), c) for i, c in enumerate(descent if isinstance(descent, list) else ())]
    for path, claim in claims:
        if isinstance(claim, dict):
            errors += check(path + ("start",), claim.get("start"), shapes, also=("loss",))
            claimed_steps = claim.get("steps")
            for number, step in enumerate(claimed_steps if isinstance(claimed_steps, list) else ()):
                errors += check(path + ("steps", number), step, shapes, every=False, also=("loss", "after"))
    return errors


def _declared_shape(spec: Any) -> tuple[int, ...] | None:
    """A variable's shape as written, or None where it is not valid (reported elsewhere)."""
    shape = spec.get("shape", []) if isinstance(spec, dict) else [] if spec is None else None
    if isinstance(shape, list) and all(_is_whole(n) and n > 0 for n in shape):
        return tuple(shape)
    return None


def _value_of_shape(shape: tuple[int, ...]) -> str:
    return "give a number" if not shape else f"give nested lists of shape {list(shape)}"


def _samples_problems(model: CaseModel, raw: _RawCase) -> list[CaseFileError]:
    if model.samples == 0 and not model.points:
        return [_error(raw, "`samples: 0` and no `points`: there is nothing to check", ("samples",),
                       hint="give `points:`, or a number of samples")]
    if model.samples != "all":
        return []
    specs = list(model.variables.values())
    if len(specs) != 1 or (specs[0] is not None and specs[0].shape != ()):
        return [_error(raw, "`samples: all` needs exactly one scalar variable", ("samples",),
                       hint="give a number of samples instead")]
    wide = [dtype for dtype in model.dtypes if dtype not in _SIXTEEN_BIT]
    if wide:
        return [_error(raw, f"`samples: all` is only possible for 16-bit dtypes, but `dtypes` "
                            f"includes {', '.join(wide)}", ("samples",),
                       hint="set `dtypes: [float16]` or `[bfloat16]`, or give a number of samples")]
    return []


def _derivative_problems(model: CaseModel, raw: _RawCase) -> list[CaseFileError]:
    errors = []
    specs = list(model.variables.values())
    one_scalar = len(specs) == 1 and (specs[0] is None or specs[0].shape == ())
    for index, check in enumerate(model.check or ()):
        if check.kind == "derivative" and not one_scalar:
            errors.append(_error(raw, f"`{{derivative: {check.order}}}` needs exactly one scalar "
                                      f"variable, but {raw.label} has "
                                      f"{', '.join(model.variables)}", ("check", index),
                                 hint="use `gradient`, `jacobian` or `hessian` for several variables"))
    return errors


def _build_case(model: CaseModel, raw: _RawCase, file: str) -> Case:
    expect = raw.data.get("expect")
    return Case(
        name=model.name,
        file=file,
        location=raw.spot.value,
        expr=model.expr,
        variables=tuple(Variable(name, spec.shape, spec.domain) if spec else Variable(name)
                        for name, spec in model.variables.items()),
        description=model.description,
        constants=dict(model.constants),
        let=tuple(model.let.items()),
        torch=model.torch,
        imports=dict(model.imports),
        checks=model.check,
        modes=model.modes,
        points=tuple(model.points),
        samples=model.samples,
        seed=model.seed,
        dtypes=model.dtypes,
        tolerance={dtype: Tolerance(t.rtol, t.atol) for dtype, t in (model.tolerance or {}).items()},
        expect=_keep_written_numbers(expect, raw.spot.children.get("expect")) if expect is not None else None,
        xfail=model.xfail,
        timeout=model.timeout,
        positions=_positions(raw.spot),
    )


def _keep_written_numbers(value: Any, spot: Spot | None) -> Any:
    if isinstance(value, float) and spot is not None and spot.text is not None:
        return WrittenFloat(value, spot.text)
    if isinstance(value, dict):
        return {key: _keep_written_numbers(item, _child(spot, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_keep_written_numbers(item, _child(spot, index)) for index, item in enumerate(value)]
    return value


def _child(spot: Spot | None, part: str | int) -> Spot | None:
    return spot.children.get(part) if spot is not None else None


def _positions(spot: Spot) -> dict[str, Location]:
    """Where every value of a case is, by dotted key path (``let.z``, ``points.2``)."""
    positions: dict[str, Location] = {}

    def visit(node: Spot, path: tuple) -> None:
        for part, child in node.children.items():
            sub = path + (part,)
            # Single numbers inside data arrays are never pointed at; skipping them keeps a
            # large constant matrix from filling the map.
            if (sub[0] == "constants" and len(sub) > 2) or (sub[0] == "points" and len(sub) > 3):
                continue
            positions[".".join(map(str, sub))] = child.value
            visit(child, sub)

    visit(spot, ())
    return positions


def _validate(raw: _RawCase, file: str) -> tuple[Case | None, list[CaseFileError]]:
    problems = [CaseFileError(p.message, p.location, p.hint, case=raw.name) for p in raw.problems]
    if not raw.data and problems:
        return None, problems
    try:
        model = CaseModel.model_validate(raw.data)
    except ValidationError as exc:
        # A value the YAML reader already complained about is not reported a second time.
        known = {problem.location for problem in problems}
        translated = [_translate(error, raw) for error in exc.errors()] + _claim_problems(raw)
        return None, problems + [error for error in translated if error.location not in known]
    problems += _check_consistency(model, raw)
    if problems:
        return None, problems
    return _build_case(model, raw, file), []


# --------------------------------------------------------------------------------------
# The public API
# --------------------------------------------------------------------------------------

def discover(paths: Sequence[str | Path]) -> tuple[list[Path], list[CaseFileError]]:
    """The case files named by ``paths``.

    A file is taken as given, whatever its suffix; a folder is searched recursively for
    ``*.yaml`` and ``*.yml`` (skipping hidden folders such as ``.git`` or ``.venv``). The
    result is sorted and holds each file once. A path that does not exist is an error.
    """
    found: dict[str, Path] = {}
    errors: list[CaseFileError] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            candidates = _case_files_under(path)
        elif path.exists():
            candidates = [path]
        else:
            errors.append(CaseFileError(f"no such file or folder: {given}", Location(str(given)),
                                        hint="check the path"))
            continue
        for candidate in candidates:
            found.setdefault(os.path.realpath(candidate), candidate)
    return sorted(found.values(), key=str), errors


def _case_files_under(folder: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        files.extend(Path(root) / name for name in names
                     if name.lower().endswith(CASE_FILE_SUFFIXES) and not name.startswith("."))
    return files


def load_file(path: str | Path, name: str | None = None) -> tuple[list[Case], list[CaseFileError]]:
    """The valid cases of one case file, and every problem found in it. ``name`` is how
    cases and messages name the file (default: ``path`` as given).

    Never raises for bad input. A YAML syntax error loses the whole file; otherwise each
    invalid case is reported and the file's other cases are still returned.
    """
    file = str(path) if name is None else name
    try:
        data = _read_regular(path)
    except _NotRegular as exc:
        return [], [CaseFileError(f"not a regular file ({exc}): only regular files are read as case files",
                                  Location(file), hint="pass the case file itself, not a pipe or a device")]
    except OSError as exc:
        return [], [CaseFileError(f"could not read case file: {exc.strerror or exc}", Location(file),
                                  hint="check that the file exists and is readable")]
    if len(data) > MAX_BYTES:
        return [], [_too_large(file)]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], [_not_utf8(data, exc, file)]
    return load_text(text, file)


class _NotRegular(OSError):
    """A path that is a FIFO, a device, a socket: reading it could block or never end."""


def _read_regular(path: str | Path) -> bytes:
    """At most MAX_BYTES + 1 bytes of a regular file. Opened without blocking, so that a FIFO
    named ``*.yaml`` is refused instead of waiting for a writer forever."""
    import stat
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                    else "a socket" if stat.S_ISSOCK(mode) else "not a file")
            raise _NotRegular(kind)
        chunks, size = [], 0
        while size <= MAX_BYTES:  # bounded: the file may be growing
            chunk = os.read(fd, MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _too_large(file: str) -> CaseFileError:
    return CaseFileError(f"case file is larger than {MAX_BYTES // (1 << 20)} MiB", Location(file),
                         hint="split it into several files")


def _not_utf8(data: bytes, exc: UnicodeDecodeError, file: str) -> CaseFileError:
    before = data[: exc.start]
    line_start = before.rfind(b"\n") + 1
    column = len(before[line_start:].decode("utf-8", "replace")) + 1
    return CaseFileError("case file is not UTF-8 text", Location(file, before.count(b"\n") + 1, column),
                         hint="save the file as UTF-8")


def load_text(text: str, file: str = "<string>") -> tuple[list[Case], list[CaseFileError]]:
    """The valid cases in ``text`` (the contents of a case file named ``file``), and every
    problem found in it. Never raises for bad input."""
    try:
        cases, errors = _load_text(text, file)
    except CaseFileError as err:
        return [], [err]
    except (RecursionError, MemoryError):
        return [], [CaseFileError("case file is too deeply nested or too large to read",
                                  Location(file), hint="simplify the file")]
    except Exception as exc:  # a bug must not take down the run: report it as this file's error
        return [], [CaseFileError(f"could not read case file: {type(exc).__name__}: {exc}", Location(file))]
    return cases, errors


def _load_text(text: str, file: str) -> tuple[list[Case], list[CaseFileError]]:
    if len(text) > MAX_BYTES:
        return [], [_too_large(file)]
    raws, errors = _split_cases(_read_document(text, file), file)
    cases = []
    for raw in raws:
        case, problems = _validate(raw, file)
        errors.extend(problems)
        if case is not None:
            cases.append(case)
    cases, duplicates = _drop_duplicate_names(cases, {})
    return cases, _sorted_unique(errors + duplicates)


def _sorted_unique(errors: list[CaseFileError]) -> list[CaseFileError]:
    """Errors in file order, each once (a bad default would otherwise repeat per case)."""
    unique: dict[tuple, CaseFileError] = {}
    for error in errors:
        unique.setdefault((str(error.location), error.message), error)
    return sorted(unique.values(), key=lambda e: (e.location.line, e.location.column) if e.location else (0, 0))


def _drop_duplicate_names(cases: list[Case], seen: dict[str, Case]) -> tuple[list[Case], list[CaseFileError]]:
    """``cases`` without those whose name is already in ``seen`` (which is updated)."""
    kept, errors = [], []
    for case in cases:
        first = seen.get(case.name)
        if first is None:
            seen[case.name] = case
            kept.append(case)
            continue
        errors.append(CaseFileError(
            f"duplicate case name '{case.name}': defined at {first.file}:{first.location.line} "
            f"and again at {case.file}:{case.location.line}", case.location,
            hint="case names must be unique in a run; rename one of them, the first one is kept",
            case=case.name))
    return kept, errors


def load_mapping(data: Any, file: str = "<python>", location: Location | None = None
                 ) -> tuple[list[Case], list[CaseFileError]]:
    """The valid cases in ``data``, a case file's contents as plain Python values (what the
    YAML of a case file reads as: one case, or ``defaults`` and ``cases``), and every problem
    found. The same validation as :func:`load_text`; every message is placed at
    ``location`` (default: ``file``), since Python values have no lines of their own. The
    Python API (:func:`diffcheck.check_function`) builds its case here."""
    where = location or Location(file)
    try:
        value, spot = _spot_tree(data, where)
        cases, errors = [], []
        raws, errors = _split_cases(_Document(value, spot, []), file)
        for raw in raws:
            case, problems = _validate(raw, file)
            errors.extend(problems)
            if case is not None:
                cases.append(case)
        cases, duplicates = _drop_duplicate_names(cases, {})
        return cases, _sorted_unique(errors + duplicates)
    except CaseFileError as err:
        return [], [err.at(where)]


def _spot_tree(value: Any, where: Location, key: Location | None = None, depth: int = 0) -> tuple[Any, Spot]:
    """``value`` as the YAML reader gives values (tuples become lists, mapping keys text),
    with a :class:`Spot` tree whose every place is ``where``."""
    if depth > MAX_DEPTH:
        raise CaseFileError(f"the value is nested more than {MAX_DEPTH} levels deep", where)
    spot = Spot(where, key)
    if isinstance(value, dict):
        out = {}
        for name, item in value.items():
            out[str(name)], spot.children[str(name)] = _spot_tree(item, where, where, depth + 1)
        return out, spot
    if isinstance(value, (list, tuple)):
        out_list = []
        for index, item in enumerate(value):
            item, spot.children[index] = _spot_tree(item, where, None, depth + 1)
            out_list.append(item)
        return out_list, spot
    if isinstance(value, float):
        spot.text = repr(value)
    return value, spot


def load_paths(paths: Sequence[str | Path], load: Callable[[Path], tuple[list[Case], list[CaseFileError]]]
               | None = None) -> tuple[list[Case], list[CaseFileError]]:
    """Every valid case in the files and folders ``paths`` (see :func:`discover`), and every
    problem found. Case names are unique across the run: a later case with a name already
    seen is dropped and reported with both places. ``load`` reads one file (default
    :func:`load_file`; the runner passes one that runs under a time and memory limit)."""
    files, errors = discover(paths)
    seen: dict[str, Case] = {}
    cases: list[Case] = []
    for file in files:
        found, problems = (load or load_file)(file)
        kept, duplicates = _drop_duplicate_names(found, seen)
        cases.extend(kept)
        errors.extend(problems + duplicates)
    return cases, errors
