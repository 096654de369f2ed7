"""Baselines: what changed between two runs of the same suite (before and after a torch
upgrade, on main and on a pull request).

Results are matched by (file, case, check, mode, dtype) and, when a case has several
results with that key (two ``expect.values`` entries), by their order. A result
**regresses** when

* its status gets worse (:data:`diffcheck.results.SEVERITY`: pass/kink/singular/skipped <
  xfail < xpass < fail/unstable/not_differentiable < error),
* it appears or disappears (a case or a check that only one run has),
* or its error ÷ allowed grows by more than ``factor`` (default :data:`DEFAULT_FACTOR`) and
  is then at least :data:`RATIO_FLOOR` of the allowed (growth far below the tolerance is
  rounding noise, not a regression).

A case-file error that only the new run has is a regression too. ``diffcheck compare`` exits
1 when anything regressed and 0 otherwise (:attr:`BaselineDiff.exit_code`); ``diffcheck run
--baseline`` folds the regressions into the run's own exit code
(:attr:`diffcheck.results.RunReport.exit_code`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .results import EXIT_FAILED, EXIT_OK, SEVERITY, Result, RunReport, Status
from .report import format_number, plain_text, result_label

#: a ratio that grows by more than this factor is a regression (``--ratio-factor``)
DEFAULT_FACTOR = 2.0
#: ... when it is then at least this fraction of the allowed error
RATIO_FLOOR = 0.1

WORSE, BETTER, APPEARED, DISAPPEARED, RATIO_GREW, RATIO_SHRANK, NEW_ERROR, FIXED_ERROR = (
    "worse", "better", "appeared", "disappeared", "ratio grew", "ratio shrank", "new case-file error",
    "case-file error gone")
REGRESSING = frozenset({WORSE, APPEARED, DISAPPEARED, RATIO_GREW, NEW_ERROR})

Key = tuple[str, str, str, str, str, int]


@dataclass(frozen=True)
class Change:
    """One result (or case-file error) that differs between the two runs."""

    kind: str
    file: str
    case: str
    label: str
    old_status: str | None = None
    new_status: str | None = None
    old_ratio: float | None = None
    new_ratio: float | None = None

    @property
    def regression(self) -> bool:
        return self.kind in REGRESSING

    def to_dict(self) -> dict:
        return {"kind": self.kind, "file": self.file, "case": self.case, "result": self.label,
                "old_status": self.old_status, "new_status": self.new_status,
                "old_ratio": self.old_ratio, "new_ratio": self.new_ratio, "regression": self.regression}


@dataclass
class BaselineDiff:
    """Every change from ``old`` to ``new``, and the versions of both runs."""

    old_versions: dict[str, str]
    new_versions: dict[str, str]
    changes: list[Change] = field(default_factory=list)
    compared: int = 0          # results present in both runs
    factor: float = DEFAULT_FACTOR

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.regression]

    @property
    def exit_code(self) -> int:
        """1 when anything regressed, 0 otherwise (``diffcheck compare``)."""
        return EXIT_FAILED if self.regressions else EXIT_OK

    def headline(self) -> str:
        n = len(self.regressions)
        return (f"against the baseline: {n} regression{'' if n == 1 else 's'}, "
                f"{len(self.changes) - n} other change{'' if len(self.changes) - n == 1 else 's'}, "
                f"{self.compared} results compared")


def _common_folder(results: list[Result]) -> str:
    """The folder every result's file is in (``/work/pr/cases/``), so that two checkouts of
    one suite match: a run of ``cases/`` and a run of ``/abs/path/cases`` name the same files."""
    folders = {r.file.replace("\\", "/").rsplit("/", 1)[0] + "/" if "/" in r.file else "" for r in results}
    if not folders:
        return ""
    common = os.path.commonpath([f or "." for f in folders]) if all(folders) else ""
    return common.rstrip("/") + "/" if common and common != "." else ""


def _keys(results: list[Result]) -> dict[Key, Result]:
    out: dict[Key, Result] = {}
    seen: dict[tuple, int] = {}
    folder = _common_folder(results)
    for r in results:
        file = r.file.replace("\\", "/")
        k = (file[len(folder):] if folder and file.startswith(folder) else file,) + r.key[1:]
        n = seen.get(k, 0)
        seen[k] = n + 1
        out[k + (n,)] = r
    return out


def _label(r: Result, n: int) -> str:
    label = result_label(r)
    return f"{label} #{n + 1}" if n else label


def diff_runs(old: RunReport, new: RunReport, factor: float = DEFAULT_FACTOR) -> BaselineDiff:
    """The changes from ``old`` to ``new`` (see the module's docstring for what regresses)."""
    diff = BaselineDiff(dict(old.versions), dict(new.versions), factor=factor)
    a, b = _keys(old.results), _keys(new.results)
    for key, r in a.items():
        if key not in b:
            diff.changes.append(Change(DISAPPEARED, r.file, r.case, _label(r, key[-1]), old_status=str(r.status),
                                       old_ratio=r.ratio))
    for key, n in b.items():
        o = a.get(key)
        if o is None:
            diff.changes.append(Change(APPEARED, n.file, n.case, _label(n, key[-1]), new_status=str(n.status),
                                       new_ratio=n.ratio))
            continue
        diff.compared += 1
        change = dict(file=n.file, case=n.case, label=_label(n, key[-1]), old_status=str(o.status),
                      new_status=str(n.status), old_ratio=o.ratio, new_ratio=n.ratio)
        before, after = SEVERITY.get(Status(o.status), 3), SEVERITY.get(Status(n.status), 3)
        if after > before:
            diff.changes.append(Change(WORSE, **change))
        elif after < before:
            diff.changes.append(Change(BETTER, **change))
        elif o.ratio is not None and n.ratio is not None and o.compared and n.compared:
            if n.ratio > factor * o.ratio and n.ratio >= RATIO_FLOOR:
                diff.changes.append(Change(RATIO_GREW, **change))
            elif o.ratio > factor * n.ratio and o.ratio >= RATIO_FLOOR:
                diff.changes.append(Change(RATIO_SHRANK, **change))
    old_errors = {str(e) for e in old.errors}
    new_errors = {str(e) for e in new.errors}
    for e in new.errors:
        if str(e) not in old_errors:
            diff.changes.append(Change(NEW_ERROR, e.location.file if e.location else "", e.case or "", str(e)))
    for e in old.errors:
        if str(e) not in new_errors:
            diff.changes.append(Change(FIXED_ERROR, e.location.file if e.location else "", e.case or "", str(e)))
    return diff


def read_run(path: str | Path) -> RunReport:
    """A run from its JSON file; ValueError with the reason when it cannot be read."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"{path}: cannot read it ({err.strerror or err})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not JSON ({err})") from None
    try:
        return RunReport.from_dict(data)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a diffcheck JSON report ({err})") from None


def _versions(v: dict[str, str]) -> str:
    order = ("diffcheck", "torch", "sympy", "python")
    keys = [k for k in order if k in v] + sorted(k for k in v if k not in order)
    return " · ".join(f"{k} {v[k]}" for k in keys) or "versions not recorded"


#: rows of the changes table shown (regressions first); the headline counts them all
MAX_ROWS = 50


def render_diff(diff: BaselineDiff, console: Console, max_rows: int = MAX_ROWS) -> None:
    """The versions of both runs, a table of what changed (regressions first), and a headline."""
    console.print(Text(f"old: {plain_text(_versions(diff.old_versions), one_line=True)}"), highlight=False)
    console.print(Text(f"new: {plain_text(_versions(diff.new_versions), one_line=True)}"), highlight=False)
    changes = sorted(diff.changes, key=lambda c: not c.regression)
    hidden = max(0, len(changes) - max_rows)
    changes = changes[:max_rows]
    if changes:
        table = Table(show_edge=False, header_style="bold", pad_edge=False, box=None)
        table.add_column("change", no_wrap=True)
        table.add_column("case", overflow="fold")
        table.add_column("result", overflow="fold")
        table.add_column("status", overflow="fold")
        table.add_column("err÷allowed", justify="right", overflow="fold")
        for c in changes:
            style = "bold red" if c.regression else "green"
            status = f"{c.old_status or '—'} → {c.new_status or '—'}"
            ratio = f"{format_number(c.old_ratio, 3)} → {format_number(c.new_ratio, 3)}"
            table.add_row(Text(c.kind, style=style), Text(plain_text(c.case, one_line=True)),
                          Text(plain_text(c.label, one_line=True)), status, ratio)
        console.print(table)
    if hidden:
        console.print(Text(f"… and {hidden} more changes (the JSON of both runs has them all)"), highlight=False)
    style = "bold red" if diff.regressions else "bold green"
    console.print(Text(diff.headline(), style=style), highlight=False)
