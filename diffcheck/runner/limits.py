"""The limits every case runs under, and how many worker processes a run uses.

One module for the policy that ``diffcheck run`` (any ``-j``), the pytest plugin and the
Python API share:

* **time**: a case's ``timeout`` (``time_limit``: SIGALRM inside the process that checks it,
  which stops Python code; the worker pool kills a process still busy ``GRACE`` seconds past
  it, which stops C code too).
* **memory**: a case may grow its process's address space by ``DIFFCHECK_CASE_MEMORY``
  bytes (default 4 GiB; suffixes K, M, G, T; 0 = no cap), and all the workers of a run
  together by ``DIFFCHECK_RUN_MEMORY`` (default three quarters of the machine's memory):
  each of N workers may grow by 1/N of the run budget (:func:`worker_memory`) and each case
  by the case cap within that, so N workers never hold N × the case cap.
* **workers**: ``-j auto`` (:func:`auto_jobs`), and whether this platform can fork them
  (:func:`can_fork`).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import threading
import time
from contextlib import contextmanager

from ..errors import CaseTimeout

GRACE = 2.0                      # seconds past a case's timeout before its process is killed
DEFAULT_MEMORY = 4 << 30
MAX_AUTO_JOBS = 8
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _bytes(variable: str) -> int | None:
    """A size from the environment (``512M``, ``2G``, ``0``); None when unset."""
    text = os.environ.get(variable, "").strip().upper().removesuffix("B")
    if not text:
        return None
    factor = _UNITS.get(text[-1], 1)
    return int(float(text[:-1] if text[-1] in _UNITS else text) * factor)


def case_memory() -> int | None:
    """Bytes one case may add to its process's address space (DIFFCHECK_CASE_MEMORY; 0 = no limit)."""
    value = _bytes("DIFFCHECK_CASE_MEMORY")
    return DEFAULT_MEMORY if value is None else (value or None)


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def run_memory() -> int | None:
    """Bytes all the workers of a run may add together (DIFFCHECK_RUN_MEMORY; default three
    quarters of the physical memory; 0 = no run-wide limit)."""
    value = _bytes("DIFFCHECK_RUN_MEMORY")
    if value is not None:
        return value or None
    total = physical_memory()
    return total * 3 // 4 if total else None


def worker_memory(jobs: int) -> int | None:
    """What one of ``jobs`` workers may add to its address space over its life: its share of
    the run budget (None: no run-wide budget). A part of a case it checks may add at most
    the case cap, and never past the share."""
    budget = run_memory()
    return budget // max(1, jobs) if budget else None


def address_space() -> int | None:
    """This process's address space in bytes (VmSize), None where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return None


@contextmanager
def memory_limit(extra: int | None, ceiling: int | None = None):
    """While the block runs, this process's address space may grow by ``extra`` bytes beyond
    its size at the start, and never past ``ceiling`` (RLIMIT_AS, POSIX); the previous limit
    comes back after. An allocation past it fails as a MemoryError (or torch's "can't
    allocate memory"), which the case reports."""
    try:
        import resource
        previous = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        previous = None
    size = address_space()
    if previous is None or not extra or size is None:
        yield
        return
    limit = size + extra if ceiling is None else min(size + extra, ceiling)
    soft, hard = previous
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, previous)


@contextmanager
def time_limit(seconds: float, limit: float | None = None):
    """Raise CaseTimeout in this thread after ``seconds`` (main thread on POSIX only); the
    message names ``limit`` (default ``seconds``): a part of a case gets what is left of it.

    An alarm the caller has set (pytest-timeout's signal method, say) still goes off when it
    is due: if it is due first, its own handler runs then, and the case's limit after it;
    if not, it is set again after the block for the time it has left."""
    usable = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not usable or seconds <= 0:
        yield
        return
    started = time.monotonic()
    previous = signal.getsignal(signal.SIGALRM)
    outer, _ = signal.getitimer(signal.ITIMER_REAL)  # seconds until the caller's alarm; 0: none
    pending = [bool(outer) and outer < seconds]       # the caller's alarm is due first

    def expire(signum, frame):
        if pending[0]:  # the caller's alarm: its handler, then ours for the time we have left
            pending[0] = False
            signal.setitimer(signal.ITIMER_REAL, max(seconds - (time.monotonic() - started), 1e-3))
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:  # what the signal would have done: end the process
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGALRM)
            return
        raise CaseTimeout(f"the case ran longer than its time limit of {limit or seconds:g} s")

    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, outer if pending[0] else min(seconds, 1e8))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer and (pending[0] or outer >= seconds):  # the caller's alarm has not gone off: again
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 1e-3))


def can_fork() -> bool:
    """Whether worker processes can be forked here (Linux, macOS); elsewhere (Windows) every
    case runs in the calling process, with no hard limit (see the README)."""
    return "fork" in multiprocessing.get_all_start_methods()


def auto_jobs(device: str = "cpu") -> int:
    """``-j auto``: one worker per CPU this process may run on (at most MAX_AUTO_JOBS); one
    worker when there is a single CPU, or when the device is not the CPU (a forked worker
    cannot use a GPU its parent has touched), or when the platform cannot fork (a spawned
    worker imports torch again: two seconds each, more than most suites gain)."""
    if not can_fork():
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return 1 if device != "cpu" else max(1, min(cpus, MAX_AUTO_JOBS))


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """In a worker: be killed when the parent process ``parent`` dies, however it dies
    (SIGKILL included): prctl(PR_SET_PDEATHSIG) on Linux. Where that is missing, the
    worker's loop checks :func:`parent_alive` while it waits."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def parent_alive(parent: int) -> bool:
    return os.getppid() == parent
