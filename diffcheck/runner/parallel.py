"""Cases checked in worker processes, each under a time and a memory limit that hold even in C
code: ``diffcheck run`` with any ``-j`` (``-j 1`` is a pool of one), and the pytest plugin.

A :class:`Pool` holds N forked workers. Each checks one part of a case at a time — one
dtype, or the case's claims (:func:`diffcheck.pipeline.case_parts`) — with
:func:`diffcheck.runner.execute.run_part`, and sends back its
:class:`~diffcheck.runner.execute.Outcome`; :func:`run_units` merges each case's parts
(:func:`~diffcheck.runner.execute.merge_parts`), so the results and their order are those of
``--in-process``. The faults a worker contains:

* time — the case's own ``timeout`` holds for its parts together: each part gets what the
  case's other parts have left of it. Inside the worker it stops Python code (SIGALRM); a
  worker still busy ``GRACE`` seconds later (stuck in a C kernel, a ctypes call) is killed,
  the case is an error naming the limit, and a fresh worker takes its place.
* memory — each worker's address space may grow by its share of the run's budget
  (:func:`~diffcheck.runner.limits.worker_memory`), and a part by at most the case cap; a
  worker that has grown so far that the next part would not get its whole cap is retired
  after its part (a fresh one takes its place).
* signals — a worker killed by a signal (a segfault in torch, an abort, the kernel's OOM
  killer) makes its part an error naming the signal, and is replaced.
* torch's global state — a case that changed it is an error (:mod:`.state`), and its worker
  is replaced, so the next case starts clean.
* the parent's death — workers die with it (PR_SET_PDEATHSIG on Linux, and a check of the
  parent's pid while idle), SIGKILL included.

Workers are forked (Linux, macOS): they start in milliseconds, sharing the parent's imported
torch and SymPy. Where the platform cannot fork they are spawned (each imports torch again).
Each uses one torch thread, so N workers use N cores.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import signal
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Callable, Sequence

from ..case import Case
from ..pipeline import CheckOptions
from . import limits
from .execute import Limits, Outcome, merge_parts, run_part

WHOLE = object()  # not a part: the whole case (what --in-process and the plugin ask for)


@dataclass
class Unit:
    """A part of a case to check: ``part`` a dtype, the claims, or None with ``whole``."""

    key: int              # the case's index in the run: parts of one case share it
    case: Case
    part: str | None
    formulas: bool = False
    whole: bool = False


def _worker(conn: Connection, parent: int, options: CheckOptions, memory: int | None) -> None:
    """A worker's life: receive (unit, seconds), send back (outcome, cache stats, retire)."""
    limits.die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent handles ^C
    import faulthandler
    faulthandler.disable()  # a crash is reported by the parent as the case's error, not as a dump
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        import torch
        torch.set_num_threads(1)
    except Exception:
        pass
    base = limits.address_space()
    ceiling = base + memory if base is not None and memory else None
    case_cap = limits.case_memory()
    extra = min(c for c in (case_cap, memory) if c) if (case_cap or memory) else None
    cache = options.cache
    # a worker that has grown so far that the next case would not get its whole cap retires
    retire_at = ceiling - extra if ceiling and extra else None
    while True:
        try:
            while not conn.poll(1.0):
                if not limits.parent_alive(parent):
                    os._exit(0)
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        unit, seconds = message
        before = cache.stats.snapshot() if cache is not None else None
        outcome = run_part(unit.case, unit.part, options, unit.formulas, Limits(seconds, extra, ceiling),
                           whole=unit.whole, key=unit.key)
        stats = cache.stats.since(before) if cache is not None else None
        size = limits.address_space()
        retire = outcome.tainted or bool(retire_at and size and size > retire_at)
        try:
            conn.send((outcome, stats, retire))
        except Exception:  # an outcome that does not pickle: report it, not lose it
            conn.send((Outcome(internal=f"case {unit.case.name!r}: the result could not be sent back from "
                                        f"its worker:\n{traceback.format_exc(limit=4)}"), stats, retire))
        if retire:
            return


@dataclass
class _Slot:
    process: mp.process.BaseProcess
    conn: Connection
    unit: Unit | None = None
    deadline: float = 0.0
    started: float = 0.0


@dataclass
class Finished:
    """A unit done (or stopped) in the pool."""

    unit: Unit
    outcome: Outcome
    seconds: float


def _context():
    return mp.get_context("fork" if limits.can_fork() else "spawn")


@dataclass
class Pool:
    """``jobs`` worker processes checking units of cases (see the module's docstring)."""

    jobs: int
    options: CheckOptions
    slots: list[_Slot] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._context = _context()
        self._memory = limits.worker_memory(self.jobs)
        self._parent = os.getpid()

    # -- processes ------------------------------------------------------------------------
    def _start(self) -> _Slot:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_worker, args=(child, self._parent, self.options, self._memory),
                                        daemon=True)
        forking = self._context.get_start_method() == "fork"
        if forking:
            # the parent's objects (torch's, SymPy's: most of its memory) go to a generation
            # the child's collector never walks, so that no collection in the child writes to
            # their pages and copies them; the parent gets its collector back at once
            gc.freeze()
        try:
            process.start()
        finally:
            if forking:
                gc.unfreeze()
        child.close()
        return _Slot(process, parent)

    def open(self, needed: int | None = None) -> None:
        """Start the workers (at most ``needed``)."""
        count = max(1, min(self.jobs, needed if needed is not None else self.jobs))
        while len(self.slots) < count:
            self.slots.append(self._start())

    def replace(self, slot: _Slot) -> None:
        """Kill the slot's worker (whatever it is doing) and start a fresh one in its place."""
        _stop(slot, kill=True)
        fresh = self._start()
        slot.process, slot.conn, slot.unit = fresh.process, fresh.conn, None

    def close(self, kill: bool = False) -> None:
        for slot in self.slots:
            _stop(slot, kill=kill)
        self.slots = []

    # -- work -----------------------------------------------------------------------------
    def idle(self) -> list[_Slot]:
        return [s for s in self.slots if s.unit is None]

    def busy(self) -> list[_Slot]:
        return [s for s in self.slots if s.unit is not None]

    def submit(self, slot: _Slot, unit: Unit, seconds: float) -> None:
        now = time.monotonic()
        slot.unit, slot.started, slot.deadline = unit, now, now + seconds + limits.GRACE
        try:
            slot.conn.send((unit, seconds))
        except (OSError, ValueError):  # the worker died while idle: a fresh one takes the unit
            self.replace(slot)
            slot.unit, slot.started, slot.deadline = unit, now, now + seconds + limits.GRACE
            slot.conn.send((unit, seconds))

    def collect(self) -> list[Finished]:
        """Wait for at least one busy worker to finish, die or overrun its deadline."""
        busy = self.busy()
        if not busy:
            return []
        timeout = max(0.0, min(s.deadline for s in busy) - time.monotonic())
        ready = wait([s.conn for s in busy], timeout=timeout)
        done = []
        for slot in busy:
            unit, took = slot.unit, time.monotonic() - slot.started
            if slot.conn in ready:
                try:
                    outcome, stats, retire = slot.conn.recv()
                except (EOFError, OSError):  # the worker died: a signal, out of memory, a crash
                    slot.process.join(1)
                    done.append(Finished(unit, Outcome.stopped(unit.case, _died(slot.process.exitcode)), took))
                    self.replace(slot)
                    continue
                if stats is not None and self.options.cache is not None:
                    self.options.cache.stats.add(stats)
                slot.unit = None
                done.append(Finished(unit, outcome, took))
                if retire:
                    self.replace(slot)
            elif time.monotonic() >= slot.deadline:
                message = (f"the case ran longer than its time limit of {unit.case.timeout:g} s "
                           "and was stopped (its worker process was killed)")
                done.append(Finished(unit, Outcome.stopped(unit.case, message), took))
                self.replace(slot)
        return done

    def run_one(self, unit: Unit, seconds: float | None = None) -> Outcome:
        """Check one unit in a worker and wait for it (the pytest plugin's way)."""
        self.open(1)
        (slot,) = self.slots[:1]
        self.submit(slot, unit, unit.case.timeout if seconds is None else seconds)
        while True:
            for finished in self.collect():
                return finished.outcome


def _stop(slot: _Slot, kill: bool) -> None:
    if not kill:
        try:
            slot.conn.send(None)
        except (OSError, ValueError):
            pass
        slot.process.join(2)
    if slot.process.is_alive():
        slot.process.kill()
    slot.process.join()
    slot.conn.close()


def run_units(pool: Pool, units: Sequence[Unit],
              on_outcome: Callable[[int, Outcome], bool] | None = None,
              stop_at: Callable[[int], int] | None = None) -> list[Outcome | None]:
    """Check ``units`` in the pool (the biggest first); outcomes in input order (None: not
    started). ``on_outcome(i, outcome)`` is called as each unit finishes; when it returns
    False, units from ``stop_at(i)`` on (default: after unit i) in input order are no longer
    started (those before still run, as -x does in-process). A case's ``timeout`` is shared
    by its parts: a part gets what the others have left of it."""
    outcomes: list[Outcome | None] = [None] * len(units)
    index_of = {id(u): i for i, u in enumerate(units)}
    pending = deque(sorted(range(len(units)), key=lambda i: -_weight(units[i].case)))
    stop_after = len(units)
    spent: dict[int, float] = {}  # case key → seconds its finished parts took

    def finish(index: int, outcome: Outcome, took: float) -> None:
        nonlocal stop_after
        spent[units[index].key] = spent.get(units[index].key, 0.0) + took
        outcomes[index] = outcome
        if on_outcome is not None and on_outcome(index, outcome) is False:
            stop_after = min(stop_after, stop_at(index) if stop_at is not None else index + 1)

    pool.open(len(units))
    while True:
        for slot in pool.idle():
            while slot.unit is None and pending:
                index = pending.popleft()
                if index >= stop_after:
                    continue
                unit, now = units[index], time.monotonic()
                left = unit.case.timeout - spent.get(unit.key, 0.0) - sum(
                    now - s.started for s in pool.busy() if s.unit.key == unit.key)
                if left <= 0:  # the case's other parts have used up its time
                    finish(index, Outcome.stopped(unit.case, f"the case ran longer than its time limit of "
                                                             f"{unit.case.timeout:g} s"), 0.0)
                    continue
                pool.submit(slot, unit, left)
        if not pool.busy():
            return outcomes
        for done in pool.collect():
            finish(index_of[id(done.unit)], done.outcome, done.seconds)


def _weight(case: Case) -> float:
    """A rough size of a part of a case, to start the big ones first: points × inputs."""
    points = len(case.points) + (65536 if case.samples == "all" else int(case.samples))
    inputs = sum(max(1, int(_product(v.shape))) for v in case.variables)
    return points * (1 + inputs)


def _product(shape) -> int:
    out = 1
    for n in shape:
        out *= n
    return out


def _died(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            how = f"was killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
    else:
        how = f"exited with code {exitcode}"
    hint = {-signal.SIGSEGV: " (a segmentation fault in native code: torch or a library it called)",
            -signal.SIGABRT: " (an abort in native code)",
            -signal.SIGKILL: " (out of memory? the limits are DIFFCHECK_CASE_MEMORY and DIFFCHECK_RUN_MEMORY)",
            None: " (out of memory? the limits are DIFFCHECK_CASE_MEMORY and DIFFCHECK_RUN_MEMORY)"}
    return f"the worker process checking this case {how}{hint.get(exitcode, '')}"
