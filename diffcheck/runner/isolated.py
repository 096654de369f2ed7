"""Reading case files in a child process under a time and memory limit.

A hostile YAML file (a billion aliases, a megabyte of nesting) can take minutes and
gigabytes to parse, in C code that no alarm interrupts. ``diffcheck run`` and ``list``
therefore read case files in one forked child: each file has ``LOAD_SECONDS`` of CPU time
(RLIMIT_CPU: a busy machine does not make a good file fail; a file that blocks is stopped
after ``LOAD_WALL`` seconds of wall time) and may grow the child by ``LOAD_MEMORY`` bytes. A file past either is a case-file error naming the
limit, the child is replaced, and the other files are read. Where the platform cannot fork,
files are read in this process (no hard limit).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

from ..errors import CaseFileError, Location
from ..loader import load_file, load_paths
from . import limits

LOAD_SECONDS = 10.0   # CPU seconds per file: the largest legitimate file (1 MiB of numbers) takes ~4.5
LOAD_WALL = 120.0
LOAD_MEMORY = 2 << 30


def _reader(conn: Connection, parent: int) -> None:
    limits.die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    base = limits.address_space()
    with limits.memory_limit(LOAD_MEMORY, base + LOAD_MEMORY if base else None):
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if message is None:
                return
            path, args, kwargs = message
            try:
                with _cpu_limit(LOAD_SECONDS):
                    result = load_file(path, *args, **kwargs)
            except MemoryError:
                result = ([], [_limit_error(path, "memory")])
            conn.send(result)


@contextmanager
def _cpu_limit(seconds: float):
    """This process is killed (SIGXCPU) once it has used ``seconds`` more CPU time."""
    try:
        import resource
        usage = resource.getrusage(resource.RUSAGE_SELF)
        previous = resource.getrlimit(resource.RLIMIT_CPU)
        limit = int(usage.ru_utime + usage.ru_stime + seconds) + 1
        if previous[1] != resource.RLIM_INFINITY:
            limit = min(limit, previous[1])
        resource.setrlimit(resource.RLIMIT_CPU, (limit, previous[1]))
    except (ImportError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_CPU, previous)


def _limit_error(path, which: str) -> CaseFileError:
    what = (f"took more than {LOAD_SECONDS:g} s of CPU time to read" if which == "time"
            else f"took longer than {LOAD_WALL:g} s to read" if which == "wall"
            else f"needs more than {LOAD_MEMORY >> 20} MiB to read" if which == "memory"
            else f"crashed the process reading it ({which})")
    return CaseFileError(f"case file {what}: stopped", Location(str(path)),
                         hint="a case file is a few kilobytes of YAML; split it, and avoid deep nesting "
                              "and repeated aliases")


class FileReader:
    """Reads case files one at a time in a child (:func:`load_file` under the limits)."""

    def __init__(self) -> None:
        self._context = mp.get_context("fork")
        self._process = None
        self._conn = None

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        self._process = self._context.Process(target=_reader, args=(child, os.getpid()), daemon=True)
        self._process.start()
        child.close()
        self._conn = parent

    def _stop(self) -> None:
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join()
            self._conn.close()
        self._process = self._conn = None

    def __call__(self, path: Path, *args, **kwargs):
        """:func:`load_file` (``path`` and any other arguments) in the child."""
        if self._process is None:
            self._start()
        try:
            self._conn.send((str(path), args, kwargs))
            if self._conn.poll(LOAD_WALL):
                return self._conn.recv()
            problem = "wall"
        except (EOFError, OSError):
            self._process.join(1)
            code = self._process.exitcode
            problem = ("time" if code == -signal.SIGXCPU else "memory" if code in (None, -signal.SIGKILL) else
                       f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}")
        self._stop()
        return [], [_limit_error(path, problem)]

    def close(self) -> None:
        if self._process is not None:
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._process.join(2)
        self._stop()


def load_paths_limited(paths, **options):
    """:func:`diffcheck.loader.load_paths` (``options`` are its own), each file read under the
    limits (in this process where the platform cannot fork)."""
    if not limits.can_fork():
        return load_paths(paths, **options)
    reader = FileReader()
    try:
        return load_paths(paths, load=reader, **options)
    finally:
        reader.close()
