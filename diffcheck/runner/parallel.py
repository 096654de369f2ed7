"""``diffcheck run -j N``: cases checked in N worker processes, each under a time and a
memory limit.

Each worker is a child process that checks one part of a case at a time — one dtype, or the
case's claims (:func:`diffcheck.check.case_parts`) — and sends back the same ``(report,
case-file error, internal error)`` triple that :func:`diffcheck.runner.run_part` returns
in-process; the parent merges each case's parts (:func:`diffcheck.runner.merge_parts`), so a
run is identical to ``-j 1`` (same results, same order), and a single big case keeps more than
one core busy. The limits:

* time — the case's own ``timeout`` holds for its parts together, as it holds for the whole
  case under ``-j 1``: each part gets what the case's other parts have left of it (their
  times summed; a part that would start with nothing left is an error at once; parts of one
  case that run at the same time each start with what was left then). Inside the worker it
  stops the part the way ``-j 1`` stops a case (an error result naming the limit). A case
  stuck where Python cannot interrupt it (inside a C kernel) is killed by the parent
  ``GRACE`` seconds later, reported as an error, and its worker replaced; the other cases
  finish.
* memory — per part: the worker's address space may grow by ``DIFFCHECK_CASE_MEMORY``
  bytes (default 4 GiB; suffixes K, M, G) beyond what it had at start (torch alone reserves
  hundreds of MB of it). An allocation past that fails inside the case: a MemoryError
  becomes an error result, a worker that dies of it is reported and replaced.

Workers are forked where the platform can (Linux): they start instantly, sharing the
parent's imported modules; elsewhere they are spawned. Each uses one torch thread, so N
workers use N cores.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
from contextlib import contextmanager
import signal
import time
import traceback
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Callable, Sequence

from ..case import Case
from ..results import CASE_CHECK, ERROR, CaseReport, Result

GRACE = 2.0                      # seconds past a case's timeout before its worker is killed
DEFAULT_MEMORY = 4 << 30
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

Outcome = tuple  # (CaseReport | None, CaseFileError | None, str | None), as runner.run_case gives


def case_memory() -> int | None:
    """Bytes a case may add to its worker's address space (DIFFCHECK_CASE_MEMORY; 0 = no limit)."""
    text = os.environ.get("DIFFCHECK_CASE_MEMORY", "").strip().upper().removesuffix("B")
    if not text:
        return DEFAULT_MEMORY
    factor = _UNITS.get(text[-1], 1)
    number = float(text[:-1] if text[-1] in _UNITS else text)
    return int(number * factor) or None


@contextmanager
def memory_limit(extra: int | None):
    """While the block runs, this process's address space may grow by ``extra`` bytes beyond
    its size at the start (RLIMIT_AS, POSIX); the previous limit comes back after. An
    allocation past it fails as a MemoryError (or torch's "can't allocate memory"), which the
    case reports. Used for every case, in workers and in one process (-j 1) alike."""
    try:
        import resource
        previous = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        previous = None
    if previous is None or not extra:
        yield
        return
    try:
        _limit_memory(extra)
    except (OSError, ValueError, StopIteration):  # no /proc, or a limit we may not set
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, previous)


def _limit_memory(extra: int | None) -> None:
    try:
        import resource
    except ImportError:  # not POSIX
        return
    if not extra:
        return
    with open("/proc/self/status") as f:
        size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = size + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


Unit = tuple  # (Case, part: a dtype or check.CLAIMS, formulas: bool), as runner.run_part takes them


def _worker(conn: Connection, units: Sequence[Unit], options, cache_on: bool, cache_dir: str | None,
            memory: int | None) -> None:
    """A worker's life: receive unit indices, send back (index, outcome)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C
    from ..symbolic import cache
    from . import run_part
    try:
        import torch
        torch.set_num_threads(1)
    except Exception:
        pass
    try:
        _limit_memory(memory)
    except (OSError, ValueError, StopIteration):
        pass
    with cache.use(cache_on, cache_dir):
        while True:
            try:
                message = conn.recv()
            except EOFError:
                return
            if message is None:
                return
            index, seconds = message
            case, part, formulas = units[index]
            outcome = run_part(case, part, options, formulas, seconds)
            try:
                conn.send((index, outcome))
            except Exception:  # an outcome that does not pickle: report it, not lose it
                conn.send((index, (None, None, f"case {case.name!r}: the result could not be sent "
                                               f"back from its worker:\n{traceback.format_exc(limit=4)}")))


@dataclass
class _Slot:
    process: mp.process.BaseProcess
    conn: Connection
    index: int | None = None
    deadline: float = 0.0
    started: float = 0.0


def _context():
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else "spawn")


def run_parallel(units: Sequence[Unit], options, jobs: int,
                 on_outcome: Callable[[int, Outcome], bool] | None = None,
                 stop_at: Callable[[int], int] | None = None) -> list[Outcome]:
    """Check ``units`` in ``jobs`` workers (the biggest first); outcomes in input order.
    ``on_outcome(i, outcome)`` is called as each unit finishes; when it returns False, units
    from ``stop_at(i)`` on (default: after unit i) in input order are no longer started (those
    before still run, as -x does in-process)."""
    from ..symbolic import cache
    active = cache.active()
    cache_on, cache_dir = active is not None, str(active.directory) if active else None
    memory = case_memory()
    ctx = _context()
    outcomes: list[Outcome | None] = [None] * len(units)
    # the biggest first, so that no worker is left alone with one at the end
    pending = deque(sorted(range(len(units)), key=lambda i: -_weight(*units[i][:2])))
    slots: list[_Slot] = []
    stop_after = len(units)  # -x: units after the first failing case (in input order) are not needed
    spent: dict[int, float] = {}  # id(case) → seconds its finished parts took: the limit is the case's

    def start() -> _Slot:
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_worker, args=(child, units, options, cache_on, cache_dir, memory),
                              daemon=True)
        process.start()
        child.close()
        return _Slot(process, parent)

    def finish(slot: _Slot, outcome: Outcome) -> None:
        nonlocal stop_after
        index, slot.index = slot.index, None
        key = id(units[index][0])
        spent[key] = spent.get(key, 0.0) + time.monotonic() - slot.started
        outcomes[index] = outcome
        if on_outcome is not None and on_outcome(index, outcome) is False:
            stop_after = min(stop_after, stop_at(index) if stop_at is not None else index + 1)

    def next_case() -> int | None:
        while pending:
            index = pending.popleft()
            if index < stop_after:
                return index
        return None

    def replace(slot: _Slot) -> None:
        slot.process.kill()
        slot.process.join()
        slot.conn.close()
        fresh = start()
        slot.process, slot.conn = fresh.process, fresh.conn

    try:
        if ctx.get_start_method() == "fork":
            # the parent's objects (torch's, SymPy's: most of its memory) go to a generation
            # the collector never walks, so that no worker's collection writes to their pages
            # and copies them: the workers keep sharing them with the parent
            gc.freeze()
        slots = [start() for _ in range(max(1, min(jobs, len(units))))]
        while True:
            for slot in slots:
                while slot.index is None:
                    index = next_case()
                    if index is None:
                        break
                    case, now = units[index][0], time.monotonic()
                    left = case.timeout - spent.get(id(case), 0.0) - sum(
                        now - s.started for s in slots if s.index is not None and units[s.index][0] is case)
                    slot.index, slot.started = index, now
                    if left <= 0:  # the case's other parts have used up its time
                        finish(slot, _error(case, f"the case ran longer than its time limit of "
                                                  f"{case.timeout:g} s"))
                        continue
                    slot.deadline = now + left + GRACE
                    slot.conn.send((index, left))
            busy = [s for s in slots if s.index is not None]
            if not busy:
                break
            timeout = max(0.0, min(s.deadline for s in busy) - time.monotonic())
            ready = wait([s.conn for s in busy], timeout=timeout)
            for slot in busy:
                if slot.conn in ready:
                    try:
                        index, outcome = slot.conn.recv()
                    except (EOFError, OSError):  # the worker died: out of memory, a crash, a signal
                        case = units[slot.index][0]
                        slot.process.join(1)
                        finish(slot, _died(case, slot.process.exitcode))
                        replace(slot)
                        continue
                    finish(slot, outcome)
                elif time.monotonic() >= slot.deadline:
                    case = units[slot.index][0]
                    finish(slot, _error(case, f"the case ran longer than its time limit of {case.timeout:g} s "
                                              "and was stopped (its worker process was killed)"))
                    replace(slot)
    finally:
        gc.unfreeze()  # a long-lived caller (pytest, a notebook) gets its collector back whole
        for slot in slots:
            try:
                slot.conn.send(None)
            except OSError:
                pass
        for slot in slots:
            slot.process.join(2)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            slot.conn.close()
    return outcomes


def _weight(case: Case, part: str | None = None) -> float:
    """A rough size of a part of a case (a dtype, or its claims), to start the big ones
    first: points × inputs."""
    points = len(case.points) + (65536 if case.samples == "all" else int(case.samples))
    inputs = sum(max(1, int(_product(v.shape))) for v in case.variables)
    return points * (1 + inputs)


def _product(shape) -> int:
    out = 1
    for n in shape:
        out *= n
    return out


def _error(case: Case, message: str) -> Outcome:
    report = CaseReport(name=case.name, file=case.file, description=case.description, expr=case.expr)
    report.results.append(Result(case=case.name, file=case.file, check=CASE_CHECK, mode=None, dtype=None,
                                 status=ERROR, message=message))
    return report, None, None


def _died(case: Case, exitcode: int | None) -> Outcome:
    if exitcode is not None and exitcode < 0:
        try:
            how = f"was killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
    else:
        how = f"exited with code {exitcode}"
    hint = " (out of memory? the limit is DIFFCHECK_CASE_MEMORY)" if exitcode in (-9, 137, None) else ""
    return _error(case, f"the worker process checking this case {how}{hint}")
