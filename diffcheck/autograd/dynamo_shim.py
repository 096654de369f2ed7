"""A shim over a private layout of torch: forward mode without importing ``torch._dynamo``.

torch wraps its Python references (``torch._refs.mul``, ...) in
``torch._compile._disable_dynamo``, which imports ``torch._dynamo`` (about 1 s) on a
reference's first call only to wrap it in ``torch._dynamo.disable``, a wrapper that does
nothing while dynamo is not imported. Forward-mode AD of ``x * 3`` calls such a reference.
:func:`dynamo_deferred` gives each reference a stand-in for the duration of a block.

It depends on torch's internals, so it is kept here, alone, and guarded: it does nothing where
the layout differs (:func:`dynamo_references` finds nothing), nothing once dynamo is imported,
and nothing at all with ``DIFFCHECK_NO_DYNAMO_SHIM=1`` in the environment. A test fails loudly
when the pinned torch no longer has the layout (tests/test_dynamo_deferred.py).
"""

from __future__ import annotations

import gc
import os
import sys
import types
from contextlib import contextmanager
from typing import Callable

#: set to 1 to turn the shim off (forward mode then imports torch._dynamo as torch does)
OFF_SWITCH = "DIFFCHECK_NO_DYNAMO_SHIM"


#: the attribute on which torch's wrapper caches its ``torch._dynamo.disable`` wrapper
CACHE = "__dynamo_disable"

_REFERENCES: list[tuple[Callable, Callable]] | None = None


def dynamo_references() -> list[tuple[Callable, Callable]]:
    """torch's Python references wrapped by ``torch._compile._disable_dynamo``, as (function,
    torch's wrapper of it) pairs: found once per process (a walk of the collector's objects,
    30 ms), so that a parent finds them before it forks its workers. Empty where torch's
    internals are not the ones :func:`dynamo_deferred` expects: a wrapper whose closure holds
    the function as ``fn`` and caches its ``disable`` wrapper on the function as CACHE."""
    global _REFERENCES
    if _REFERENCES is not None:
        return _REFERENCES
    _REFERENCES = []
    if os.environ.get(OFF_SWITCH, "") not in ("", "0"):
        return _REFERENCES
    try:
        from torch import _compile
        code = _compile._disable_dynamo(lambda: None).__code__
    except Exception:
        return _REFERENCES
    if "fn" not in code.co_freevars or CACHE not in code.co_consts + code.co_names:
        return _REFERENCES
    slot = code.co_freevars.index("fn")
    for obj in gc.get_objects():
        if type(obj) is types.FunctionType and obj.__code__ is code and obj.__closure__:
            _REFERENCES.append((obj.__closure__[slot].cell_contents, obj))
    return _REFERENCES


@contextmanager
def dynamo_deferred():
    """While the block runs, torch's Python references run without importing
    ``torch._dynamo`` as long as nothing else has imported it.

    torch wraps its Python references (``torch._refs.mul``, …) in
    ``torch._compile._disable_dynamo``, which imports ``torch._dynamo`` on a reference's
    first call so as to wrap it in ``torch._dynamo.disable``. Forward-mode AD of ``x * 3``
    calls one: the constant has no tangent, the zero tangent is a ZeroTensor, and its shape
    comes from ``mul``'s meta kernel, ``torch._refs.mul``. That import costs about 1 s, often
    more than the rest of a run. ``disable`` only matters while dynamo's frame hook is
    installed, which needs ``torch._dynamo`` imported; so each reference gets a stand-in for
    its cached ``disable`` wrapper that calls the reference as it is while ``torch._dynamo``
    is not in ``sys.modules``, and from the first call after it is, steps aside and hands the
    call to torch's own wrapper, which builds its ``disable`` wrapper and keeps it (what torch
    would have done, done by torch). Same ops, same kernels, same results. After the block
    the stand-ins that are left are removed: the process is as it was."""
    if "torch._dynamo" in sys.modules:
        yield
        return
    changed = []
    for fn, wrapper in dynamo_references():
        if getattr(fn, CACHE, None) is None:
            setattr(fn, CACHE, _without_dynamo(fn, wrapper))
            changed.append(fn)
    try:
        yield
    finally:
        for fn in changed:
            if getattr(getattr(fn, CACHE, None), "diffcheck_deferred", False):
                delattr(fn, CACHE)


def _without_dynamo(fn: Callable, wrapper: Callable) -> Callable:
    def call(*args, **kwargs):
        if "torch._dynamo" in sys.modules:  # dynamo is here now: torch's own wrapper, from now on
            if getattr(fn, CACHE, None) is call:
                delattr(fn, CACHE)
            return wrapper(*args, **kwargs)
        return fn(*args, **kwargs)
    call.diffcheck_deferred = True
    return call
