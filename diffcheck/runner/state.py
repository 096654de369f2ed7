"""torch's process-wide state, taken before a case and compared after it.

A case's torch code runs in the process that checks it. If it turns on autocast, changes the
default dtype or the float32 matmul precision, reseeds the default generator or replaces a
function in ``torch``, every later case in that process would be checked under it. So each
case is checked between two snapshots (:func:`snapshot`, :func:`changes`): a case that
changed anything is an ``error`` naming what changed, and the next case starts clean: a
worker process that saw a change is replaced by a fresh one, and in ``--in-process`` mode the
state is put back (:func:`restore`).

A snapshot costs about 0.1 ms: flags, the default generator's state (5 kB), and the
attributes of ``torch``, ``torch.nn.functional`` and ``torch.Tensor`` by identity (a
submodule that torch imports lazily, such as ``torch._dynamo``, is not a change).
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, Callable

import torch


def _autocast(device: str) -> tuple:
    return torch.is_autocast_enabled(device), torch.get_autocast_dtype(device)


def _tf32() -> tuple:
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


#: name → (read, write back); write back None: only a fresh process puts it back
_FLAGS: dict[str, tuple[Callable[[], Any], Callable[[Any], Any] | None]] = {
    "grad mode": (torch.is_grad_enabled, torch.set_grad_enabled),
    "inference mode": (torch.is_inference_mode_enabled, None),
    "anomaly detection": (lambda: (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()),
                          lambda v: torch.set_anomaly_enabled(*v)),
    "autocast (cpu)": (lambda: _autocast("cpu"),
                       lambda v: (torch.set_autocast_enabled("cpu", v[0]), torch.set_autocast_dtype("cpu", v[1]))),
    "autocast cache": (torch.is_autocast_cache_enabled, torch.set_autocast_cache_enabled),
    "default dtype": (torch.get_default_dtype, torch.set_default_dtype),
    "float32 matmul precision": (torch.get_float32_matmul_precision, torch.set_float32_matmul_precision),
    "TF32 flags": (_tf32, lambda v: (setattr(torch.backends.cuda.matmul, "allow_tf32", v[0]),
                                     setattr(torch.backends.cudnn, "allow_tf32", v[1]))),
    "deterministic algorithms": (lambda: (torch.are_deterministic_algorithms_enabled(),
                                          torch.is_deterministic_algorithms_warn_only_enabled()),
                                 lambda v: torch.use_deterministic_algorithms(v[0], warn_only=v[1])),
    "cudnn flags": (lambda: (torch.backends.cudnn.enabled, torch.backends.cudnn.benchmark,
                             torch.backends.cudnn.deterministic),
                    lambda v: (setattr(torch.backends.cudnn, "enabled", v[0]),
                               setattr(torch.backends.cudnn, "benchmark", v[1]),
                               setattr(torch.backends.cudnn, "deterministic", v[2]))),
    "number of threads": (torch.get_num_threads, torch.set_num_threads),
    "warn-always": (torch.is_warn_always_enabled, torch.set_warn_always),
    "default generator": (lambda: torch.default_generator.get_state(), torch.default_generator.set_state),
}

_NAMESPACES = {"torch": torch, "torch.nn.functional": torch.nn.functional, "torch.Tensor": torch.Tensor,
               "torch.Tensor (base)": torch._C.TensorBase}


@dataclass
class Snapshot:
    flags: dict[str, Any]
    namespaces: dict[str, dict[str, Any]]


def snapshot() -> Snapshot:
    flags = {}
    for name, (read, _) in _FLAGS.items():
        try:
            flags[name] = read()
        except Exception:  # a flag this torch does not have
            pass
    return Snapshot(flags, {name: dict(vars(ns)) for name, ns in _NAMESPACES.items()})


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    return a == b


def changes(before: Snapshot, after: Snapshot | None = None) -> list[str]:
    """What differs between ``before`` and ``after`` (default: now), one phrase each."""
    after = after or snapshot()
    out = []
    for name, value in before.flags.items():
        if name in after.flags and not _same(value, after.flags[name]):
            shown = "changed" if name == "default generator" else f"{value!r} → {after.flags[name]!r}"
            out.append(f"{name} ({shown})")
    for name, old in before.namespaces.items():
        new = after.namespaces[name]
        altered = sorted(k for k, v in old.items() if new.get(k, _MISSING) is not v and k not in _BOOKKEEPING
                         and not _lazy_rebind(name, k, v, new.get(k, _MISSING)))
        added = sorted(k for k, v in new.items() if k not in old and k not in _BOOKKEEPING
                       and not isinstance(v, types.ModuleType))
        if altered or added:
            listed = ", ".join((altered + added)[:5]) + (", …" if len(altered) + len(added) > 5 else "")
            out.append(f"attributes of {name} ({listed})")
    return out


_MISSING = object()
#: Python's own bookkeeping in a module's namespace: the warnings machinery records there
#: which warnings a module has shown (F.glu's deprecation note added it to F); no effect on results
_BOOKKEEPING = frozenset({"__warningregistry__"})
#: what torch itself rebinds when it imports a submodule lazily: torch._dynamo wraps
#: torch.manual_seed in torch._disable_dynamo the first time forward mode imports it
_LAZY_REBINDS = {("torch", "manual_seed")}


def _lazy_rebind(namespace: str, key: str, old: Any, new: Any) -> bool:
    return (namespace, key) in _LAZY_REBINDS and getattr(new, "__wrapped__", None) is old


def restore(before: Snapshot) -> None:
    """Put back what can be put back in this process (flags and namespace attributes)."""
    for name, value in before.flags.items():
        write = _FLAGS[name][1]
        if write is not None:
            try:
                write(value)
            except Exception:
                pass
    for name, old in before.namespaces.items():
        namespace = _NAMESPACES[name]
        current = dict(vars(namespace))
        for key, value in old.items():
            if current.get(key, _MISSING) is not value:
                try:
                    setattr(namespace, key, value)
                except (AttributeError, TypeError):
                    pass
        for key, value in current.items():
            if key not in old and not isinstance(value, types.ModuleType):
                try:
                    delattr(namespace, key)
                except (AttributeError, TypeError):
                    pass


def describe(found: list[str]) -> str:
    return ("the case changed torch's global state: " + "; ".join(found)
            + " (a case must leave it as it found it; the next case starts from a clean state)")
