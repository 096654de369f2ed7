"""The torch side: values and derivatives from autograd, batched over all points.

Modes, as the contract names them:

* ``reverse``  — reverse-mode AD through ``torch.autograd.grad``, as the contract names it:
  the function is vmapped over the points, and one call with ``is_grads_batched=True`` pulls
  every row of the Jacobian back at once (what ``torch.func.jacrev`` does, without the
  one-second import of ``torch._dynamo`` that ``torch.func``'s reverse transforms trigger);
* ``forward``  — forward-mode AD (``torch.func.jacfwd``), vmapped over the points;
* ``backward`` — the code the user runs, as a training loop runs it: no vmap, no torch.func.
  Point by point, the function is called on leaf tensors that require grad, and
  ``.backward(retain_graph=True)`` of each output entry fills ``.grad``. Second and higher
  derivatives take ``torch.autograd.grad(..., create_graph=True)`` first (a gradient
  penalty's idiom), then ``.backward()`` of each entry of that gradient. A torch bug that
  shows in a plain ``.backward()`` and not under vmap is therefore seen here.

When an op or a custom ``torch.autograd.Function`` cannot run under vmap (no batching
rule, ``.item()``, a backward or jvp that branches on tensor values), ``reverse`` and
``forward`` fall back to the same transforms point by point, without vmap, and say so in
``Torchside.notes``. Forward mode needs a Function with ``setup_context`` and ``jvp``:
without them torch has no forward mode for it, and :class:`Unsupported` says why. Nested
forward mode through any Function fails inside torch (``flat_bdims must not be None``,
torch 2.x): the Hessian in forward mode is then taken forward-over-reverse, with a note. Every function here returns (P, n) float64 arrays laid out like the
matching :class:`~diffcheck.symbolic.Target`.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.func import jacfwd, vmap

from .dynamo_shim import dynamo_deferred, dynamo_references  # noqa: F401 (re-exported)
from ..points import PointSet, torch_dtype
from ..symbolic import CompiledCase, Target


#: derivative entries × points computed at once (see Torchside.derivative)
CHUNK_CELLS = 1 << 20


class CannotDifferentiate(Exception):
    """torch raised because it has no derivative for an op, or the output has no gradient path."""


class TorchRaised(Exception):
    """torch raised something else while computing (message kept for the report)."""


class Unsupported(Exception):
    """torch has no such mode for this code at all: forward mode through a custom
    ``autograd.Function`` without ``jvp`` or ``setup_context``. Not a fault of the code."""


#: torch's messages for a custom Function that has no forward mode, and what each means
_UNSUPPORTED_MARKERS = (
    ("must override the setup_context staticmethod",
     "the custom autograd.Function has no `setup_context` (an old-style Function): torch.func's "
     "forward mode cannot run it"),
    ("must implement the jvp function",
     "the custom autograd.Function has no `jvp` staticmethod: torch has no forward mode for it"),
)

#: torch's own failure when forward mode is nested through any custom Function
_NESTED_FORWARD_MARKERS = ("flat_bdims must not be None",)

TORCH_NESTED_FORWARD = ("torch cannot nest forward-mode AD through a custom autograd.Function "
                        "(a known torch limitation, not a fault of this code)")
TORCH_NESTED_FORWARD_NOTE = ("the function calls a custom autograd.Function, and torch's nested forward mode "
                             "through one is broken (it raises `flat_bdims must not be None` or silently "
                             "returns zero higher derivatives: pytorch/pytorch#197867), a known torch "
                             "limitation, not a fault of this code")


def unsupported_reason(err: BaseException) -> str | None:
    text = str(err)
    for marker, reason in _UNSUPPORTED_MARKERS:
        if marker in text:
            return reason
    return None


def nested_forward_broken(err: BaseException) -> bool:
    return any(m in str(err) for m in _NESTED_FORWARD_MARKERS)


_NOT_DIFF_MARKERS = ("not implemented", "does not require grad", "does not have a grad_fn",
                     "not differentiable", "no gradient", "derivative for", "differentiated",
                     "forward AD with")


@contextmanager
def one_thread():
    """torch's intra-op threads set to one while a loop runs tiny ops point by point, then
    restored. Each op on a few numbers gains nothing from threads, and on a busy machine an
    op's parallel region can cost 75 ms instead of 20 µs (float16 ``mv``, measured with two
    threads on two shared cores). Same kernels, same results."""
    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class MissingKernel(Exception):
    """This torch has no kernel for an op in the dtype under test (torch 2.4 has no float16
    backward for mse_loss): nothing can be checked in that dtype, and it is not a fault of the
    code under test or of its derivative."""


#: torch's message for an op it has no kernel for in a dtype: `"mse_cpu" not implemented for 'BFloat16'`
_MISSING_KERNEL = re.compile(r'"(\w+)" not implemented for \'(Half|BFloat16|ComplexHalf)\''
                             r'|([\w.]+): Low precision dtypes not supported\. Got (Half|BFloat16)')
_DTYPE_OF_KERNEL = {"Half": "float16", "BFloat16": "bfloat16", "ComplexHalf": "complex32"}


def classify_error(err: Exception) -> Exception:
    text = f"{type(err).__name__}: {err}".strip()
    first = text.splitlines()[0][:500]
    missing = _MISSING_KERNEL.search(text)
    if missing:
        kernel, dtype = missing.group(1) or missing.group(3), missing.group(2) or missing.group(4)
        return MissingKernel(f"torch {torch.__version__} has no {_DTYPE_OF_KERNEL[dtype]} kernel for "
                             f"{kernel} ({first}); not checked in {_DTYPE_OF_KERNEL[dtype]}")
    if any(m in text for m in _NOT_DIFF_MARKERS):
        return CannotDifferentiate(first)
    where = _user_frame(err)
    return TorchRaised(f"{first} (raised in {where})" if where else first)


_NOT_USER = tuple(str(Path(m.__file__).resolve().parent) + os.sep for m in (torch, sys.modules[__name__.split(".")[0]]))
_STDLIB = str(Path(os.__file__).resolve().parent) + os.sep


def _user_frame(err: BaseException) -> str | None:
    """``file:line in function`` of the innermost frame of ``err`` in the user's own code (an
    imported Function's backward, say), not in torch, diffcheck or the standard library."""
    found = None
    for frame, line in traceback.walk_tb(err.__traceback__):
        path = str(Path(frame.f_code.co_filename).resolve())
        if (frame.f_code.co_filename.startswith("<") or path.startswith(_NOT_USER)
                or (path.startswith(_STDLIB) and "site-packages" not in path)):
            continue
        try:
            shown = os.path.relpath(path)
        except ValueError:  # another drive
            shown = path
        found = f"{shown if not shown.startswith('..') else path}:{line} in {frame.f_code.co_name}"
    return found


@dataclass
class Torchside:
    """Batched access to one compiled case in one dtype on one device."""

    compiled: CompiledCase
    dtype: str
    points: PointSet
    device: str = "cpu"
    notes: list[str] = field(default_factory=list)
    #: points where torch raised while the others computed (a singular matrix for inv): point →
    #: torch's message. Their rows are NaN; the comparison classes them (:mod:`diffcheck.compare`)
    raised: dict[int, str] = field(default_factory=dict)

    def __post_init__(self):
        self.tdtype = torch_dtype(self.dtype)
        c = self.compiled
        self.inputs = [torch.as_tensor(self.points.values[v.name], dtype=self.tdtype, device=self.device)
                       for v in c.case.variables]
        self.constants = {n: torch.as_tensor(v, dtype=self.tdtype, device=self.device)
                          for n, v in c.const_values.items()}
        self.shapes = [v.shape for v in c.case.variables]

    # -- the function of the variables at one point ---------------------------------------
    def f(self, *xs):
        out = self.compiled.forward(xs, self.constants, self.tdtype)
        if isinstance(out, (int, float)):
            out = torch.as_tensor(out, dtype=self.tdtype, device=self.device)
        if not isinstance(out, torch.Tensor):
            raise TorchRaised(f"the torch implementation returns a {type(out).__name__}, not a tensor")
        return out

    def _batched(self, transform: Callable, label: str, reraise: bool = False) -> Any:
        """vmap ``transform`` over the points; loop over them if vmap cannot. With ``reraise``,
        the loop's own exception propagates as torch raised it (the caller classifies it)."""
        try:
            return vmap(transform)(*self.inputs)
        except Exception as err:  # vmap has no batching rule, or the function calls .item(), …
            if isinstance(classify_error(err), (CannotDifferentiate, MissingKernel)):
                raise classify_error(err) from None
            note = (f"{label}: vmap failed ({type(err).__name__}: {str(err).splitlines()[0][:160]}); "
                    "looped over the points instead")
        results = []
        with one_thread():
            for i in range(self.points.count):
                try:
                    results.append(transform(*(x[i] for x in self.inputs)))
                except Exception as err:
                    if reraise and not isinstance(classify_error(err), CannotDifferentiate):
                        raise
                    raise classify_error(err) from None
        self.notes.append(note)  # only once the loop worked: a failure explains itself
        return _stack(results)

    # -- values and derivatives -----------------------------------------------------------
    def value(self, target: Target) -> np.ndarray:
        self.raised = {}
        try:
            return self._value()
        except TorchRaised as err:
            return self._each_point(err, "value", lambda part: part._value())

    def _value(self) -> np.ndarray:
        out = self._batched(self.f, "value")
        expected = (self.points.count,) + self.compiled.out_shape
        if tuple(out.shape) != expected:
            raise TorchRaised(f"the torch implementation returns shape {list(out.shape[1:])}, "
                              f"the expression has shape {list(self.compiled.out_shape)}")
        return _np(out).reshape(self.points.count, -1)

    def _each_point(self, first: TorchRaised, label: str, compute: Callable[["Torchside"], np.ndarray]) -> np.ndarray:
        """torch raised for the batch (``first``): each point computed alone, so that an op that
        raises on some inputs (``inv`` of a singular matrix, ``cholesky`` of an indefinite one)
        costs those points only. A point where torch raises gets a NaN row and its message in
        :attr:`raised`; the comparison decides what it is (singular where the exact value is
        undefined too, else an error at that point). Only :class:`TorchRaised` is per point:
        no derivative, no kernel or no mode at all stays the whole result's outcome. Raises
        ``first`` when every point raises (a fault of the code, not of a point; the pipeline
        then asks :attr:`raised` whether the exact value is undefined at all of them)."""
        p = self.points.count
        rows: list[np.ndarray | None] = []
        raised: dict[int, str] = {}
        with one_thread():
            for i in range(p):
                part = self._part(i, i + 1)
                try:
                    rows.append(compute(part))
                    self.notes.extend(n for n in part.notes if n not in self.notes)
                except TorchRaised as err:
                    raised[i] = str(err)
                    rows.append(None)
        self.raised = raised
        done = [r for r in rows if r is not None]
        if not done or any(r.shape[1] != done[0].shape[1] for r in done):
            raise first
        out = np.full((p, done[0].shape[1]), np.nan)
        for i, r in enumerate(rows):
            if r is not None:
                out[i] = r[0]
        if raised:
            self.notes.append(f"{label}: torch raised at {len(raised)} of {p} points "
                              f"(`{next(iter(raised.values()))[:160]}`); each point was computed alone")
        return out

    def derivative(self, target: Target, mode: str,
                   consume: Callable[[int, np.ndarray], bool] | None = None) -> np.ndarray | bool:
        """torch's derivative values for ``target``, (P, entries) like the target.

        A big derivative is computed a block of points at a time (64 points of a softmax
        Jacobian of 128 entries) into one array, float32 for float32: torch's temporaries (the
        batched basis, the rows it pulls back, forward mode's tangents) then stay the size of
        a block, not of the whole result (131 MB in float64 at 1000 points).

        With ``consume``, each block goes to ``consume(first_row, block)`` instead, and the
        whole result is never held: the return value is True when every block was consumed,
        False as soon as ``consume`` declines one (the caller then asks again without it).
        A derivative small enough for one block is returned as an array either way."""
        p, entries = self.points.count, len(target.exprs)
        self.raised = {}
        block = self._block(target)
        if not self.in_blocks(target):
            return self._checked(self, target, mode)
        out = None
        if consume is None:  # float32's values are exact in float32: half the memory of float64
            out = np.empty((p, entries), dtype=np.float32 if self.tdtype == torch.float32 else np.float64)
        for start in range(0, p, block):
            part = self._part(start, min(p, start + block))
            try:
                got = self._checked(part, target, mode)
            finally:
                self.notes.extend(n for n in part.notes if n not in self.notes)
                self.raised.update((start + i, m) for i, m in part.raised.items())
            if out is not None:
                out[start:start + part.points.count] = got
            elif not consume(start, got):
                return False
        return out if out is not None else True

    def _block(self, target: Target) -> int:
        return max(1, CHUNK_CELLS // max(len(target.exprs), 1))

    def in_blocks(self, target: Target) -> bool:
        """Whether :meth:`derivative` computes ``target`` a block of points at a time."""
        return self.points.count > self._block(target) and target.label != "intermediates"

    def alone(self, i: int) -> "Torchside":
        """The same compiled case and dtype at point i only (a batch of one)."""
        return self._part(i, i + 1)

    def _part(self, start: int, stop: int) -> "Torchside":
        """The same compiled case and dtype at points start:stop."""
        part = object.__new__(Torchside)
        part.__dict__.update(self.__dict__)
        part.points = PointSet({k: v[start:stop] for k, v in self.points.values.items()}, stop - start, 0)
        # a copy, not a view: forward mode over a view of the whole batch makes torch build
        # tangents the size of the whole batch (125 MB and 10× the time for 64 of 1000
        # points of a 128-softmax, measured with torch 2.13)
        part.inputs = [x[start:stop].clone() for x in self.inputs]
        part.notes = []
        return part

    def _checked(self, side: "Torchside", target: Target, mode: str) -> np.ndarray:
        try:
            got = side._laid_out(target, mode)
        except TorchRaised as err:  # at some points only? (inv of a singular matrix)
            got = side._each_point(err, f"{target.label}/{mode}", lambda part: part._laid_out(target, mode))
        if got.shape != (side.points.count, len(target.exprs)):
            raise TorchRaised(f"torch's {target.label} has {got.size // max(side.points.count, 1)} entries per "
                              f"point; the exact one has {len(target.exprs)} (does the torch implementation "
                              f"return the shape of the expression, {list(self.compiled.out_shape)}?)")
        return got

    def _laid_out(self, target: Target, mode: str) -> np.ndarray:
        try:
            return self._derivative(target, mode)
        except (ValueError, IndexError) as err:  # torch's derivative has another layout
            raise TorchRaised(f"torch's {target.label} does not have the expected shape: {err}") from None

    def _derivative(self, target: Target, mode: str) -> np.ndarray:
        kind = target.label
        if kind == "intermediates":
            return self._intermediates(target)
        if mode == "backward":
            return self._pointwise(target, use_backward=True)
        if mode == "reverse":
            kept = len(self.notes)
            try:
                return self._reverse(target)
            except CannotDifferentiate:
                raise
            except Exception as err:  # e.g. a Function whose backward branches on values under vmap
                del self.notes[kept:]  # the batched attempt's notes: superseded by this one
                self._note_pointwise(f"{kind}/reverse", err)
                return self._pointwise(target, use_backward=False)
        return self._forward(target)

    def _note_pointwise(self, label: str, err: BaseException) -> None:
        text = str(err).splitlines()[0][:160] if str(err) else ""
        if not isinstance(err, (TorchRaised, CannotDifferentiate)):
            text = f"{type(err).__name__}: {text}"
        self.notes.append(f"{label}: cannot run batched under vmap ({text}); checked point by point instead")

    def _forward(self, target: Target) -> np.ndarray:
        """Forward mode (torch.func.jacfwd), batched; point by point where vmap cannot run.
        Raises :class:`Unsupported` where torch has no forward mode for the code."""
        kind = target.label
        if (kind == "hessian" or kind.startswith("derivative")) and self.calls_custom_function():
            # torch's nested forward mode through a custom Function raises `flat_bdims must
            # not be None` or silently returns zero higher derivatives (pytorch#197867,
            # torch 2.13): forward-over-forward cannot be trusted, whatever the Function
            self.notes.append(f"{kind}/forward: {TORCH_NESTED_FORWARD_NOTE}; the {kind} is taken "
                              "forward-over-reverse (jacfwd of jacrev), as torch.func.hessian does")
            return self._forward_over_reverse_explained(target)
        try:
            return self._forward_batched(target)
        except CannotDifferentiate:
            raise
        except Exception as err:
            first = err
        reason = unsupported_reason(first)
        if reason:
            raise Unsupported(reason) from None
        if kind in ("gradient", "jacobian") and not nested_forward_broken(first):
            # jacfwd vmaps over the basis even at one point: a jvp that branches on tensor
            # values needs one torch.func.jvp per input element
            self._note_pointwise(f"{kind}/forward", first)
            try:
                return self._forward_pointwise()
            except Exception as err:
                reason = unsupported_reason(err)
                if reason:
                    raise Unsupported(reason) from None
                raise classify_error(err) from None
        if nested_forward_broken(first) and (kind == "hessian" or kind.startswith("derivative")):
            # forward-over-reverse, as torch.func.hessian does it
            self.notes.append(f"{kind}/forward: {TORCH_NESTED_FORWARD}: forward-over-forward raised "
                              f"`{str(first).splitlines()[0][:80]}`; the {kind} is taken forward-over-reverse "
                              "(jacfwd of jacrev) instead")
            return self._forward_over_reverse_explained(target)
        if nested_forward_broken(first):
            raise Unsupported(f"{TORCH_NESTED_FORWARD}: {str(first).splitlines()[0][:120]}") from None
        raise classify_error(first) if not isinstance(first, (TorchRaised, CannotDifferentiate)) else first

    def calls_custom_function(self) -> bool:
        """Whether the function's graph at the first point holds a custom autograd.Function
        (a read-only walk of ``grad_fn``; computed once)."""
        found = getattr(self, "_custom_function", None)
        if found is None:
            found = False
            try:
                leaves = [x[0].detach().clone().requires_grad_(True) for x in self.inputs]
                out = self.f(*leaves)
                stack, seen = [out.grad_fn], set()
                while stack:
                    node = stack.pop()
                    if node is None or id(node) in seen:
                        continue
                    seen.add(id(node))
                    if isinstance(node, torch.autograd.function.BackwardCFunction):
                        found = True
                        break
                    stack.extend(n for n, _ in node.next_functions)
            except Exception:
                found = False
            self._custom_function = found
        return found

    def _forward_batched(self, target: Target) -> np.ndarray:
        kind = target.label
        argnums = tuple(range(len(self.inputs)))
        if kind in ("gradient", "jacobian"):
            out = self._batched(jacfwd(self.f, argnums=argnums), f"{kind}/forward", reraise=True)
            return self._flatten_jacobian(out)
        if kind == "hessian":
            hess = jacfwd(jacfwd(self.f, argnums=argnums), argnums=argnums)
            return self._flatten_hessian(self._batched(hess, f"hessian/forward", reraise=True))
        if kind.startswith("derivative"):
            n = int(kind[len("derivative"):])
            fn = self.f
            for _ in range(n):
                fn = jacfwd(fn)
            return _np(self._batched(fn, f"{kind}/forward", reraise=True)).reshape(self.points.count, 1)
        raise ValueError(kind)

    def _forward_over_reverse_explained(self, target: Target) -> np.ndarray:
        """:meth:`_forward_over_reverse`, with torch's failures said as what they are: no
        forward mode for this Function, torch's nested forward-mode limitation, or an error."""
        try:
            return self._forward_over_reverse(target)
        except CannotDifferentiate:
            raise
        except Exception as err:
            reason = unsupported_reason(err)
            if nested_forward_broken(err):
                reason = TORCH_NESTED_FORWARD
            if reason:
                raise Unsupported(reason) from None
            raise classify_error(err) from None

    def _forward_over_reverse(self, target: Target) -> np.ndarray:
        from torch.func import jacrev
        kind = target.label
        argnums = tuple(range(len(self.inputs)))
        if kind == "hessian":
            hess = jacfwd(jacrev(self.f, argnums=argnums), argnums=argnums)
            return self._flatten_hessian(self._batched(hess, "hessian/forward", reraise=True))
        fn = self.f
        for _ in range(int(kind[len("derivative"):]) - 1):
            fn = jacrev(fn)
        return _np(self._batched(jacfwd(fn), f"{kind}/forward", reraise=True)).reshape(self.points.count, 1)

    def _forward_pointwise(self) -> np.ndarray:
        """The Jacobian by one ``torch.func.jvp`` per point and input element (no vmap)."""
        from torch.func import jvp
        with one_thread():
            return self._forward_points(self.points.count, jvp)

    def _forward_points(self, p: int, jvp) -> np.ndarray:
        rows = []
        for i in range(p):
            primals = tuple(x[i] for x in self.inputs)
            cols = []
            for v, x in enumerate(primals):
                for k in range(x.numel()):
                    tangents = tuple(torch.zeros_like(y) for y in primals)
                    tangents[v].view(-1)[k] = 1
                    cols.append(jvp(self.f, primals, tangents)[1].reshape(-1))
            rows.append(torch.stack(cols, dim=1))  # (m, N)
        return _np(torch.stack(rows)).reshape(p, -1)

    def _pointwise(self, target: Target, use_backward: bool) -> np.ndarray:
        """Derivatives point by point with plain autograd: no vmap, no torch.func.

        Each point's variables are fresh leaves; the function is called once per point.
        Orders above one take ``torch.autograd.grad(..., create_graph=True)``; the last
        order pulls back each output entry, with ``.backward(retain_graph=True)`` and
        ``.grad`` (``use_backward``, what a training loop does) or ``torch.autograd.grad``.
        Returns (P, m·N) rows like the batched paths."""
        kind, p = target.label, self.points.count
        order = 2 if kind == "hessian" else int(kind[len("derivative"):]) if kind.startswith("derivative") else 1
        sizes = [int(np.prod(s, dtype=int)) for s in self.shapes]
        total = sum(sizes)
        try:
            with one_thread():
                rows = [self._point_rows(i, order, total, use_backward) for i in range(p)]
        except (CannotDifferentiate, TorchRaised):
            raise
        except Exception as err:
            raise classify_error(err) from None
        return _np(torch.stack(rows)).reshape(p, -1)

    def _point_rows(self, i: int, order: int, total: int, use_backward: bool) -> torch.Tensor:
        """(m, N): every output entry's derivative row at point i, by plain autograd."""
        leaves = [x[i].detach().clone().requires_grad_(True) for x in self.inputs]
        out = self.f(*leaves).reshape(-1)
        for _ in range(order - 1):
            if not out.requires_grad:
                out = torch.zeros(total, dtype=self.tdtype, device=self.device)
                break
            grads = torch.autograd.grad(out.sum(), leaves, create_graph=True, allow_unused=True)
            out = torch.cat([(g if g is not None else torch.zeros_like(leaf)).reshape(-1)
                             for g, leaf in zip(grads, leaves)])
        row = []
        for k in range(out.numel()):
            entry = out[k]
            if not entry.requires_grad:
                row.append(torch.zeros(total, dtype=self.tdtype, device=self.device))
                continue
            if use_backward:
                for leaf in leaves:
                    leaf.grad = None
                entry.backward(retain_graph=True)
                grads = [leaf.grad for leaf in leaves]
            else:
                grads = torch.autograd.grad(entry, leaves, retain_graph=True, allow_unused=True)
            row.append(torch.cat([(g if g is not None else torch.zeros_like(leaf)).detach().reshape(-1)
                                  for g, leaf in zip(grads, leaves)]))
        return torch.stack(row) if row else torch.zeros((0, total), dtype=self.tdtype)

    def _outputs(self, leaves, label: str) -> torch.Tensor:
        """f at every point, (P, m), with a graph back to ``leaves``."""
        p = self.points.count
        try:
            out = vmap(self.f)(*leaves)
        except Exception as err:
            if isinstance(classify_error(err), CannotDifferentiate):
                raise
            self.notes.append(f"{label}: vmap failed ({type(err).__name__}: {str(err).splitlines()[0][:160]}); "
                              "looped over the points instead")
            out = torch.stack([self.f(*(x[i] for x in leaves)) for i in range(p)])
        return out.reshape(p, -1)

    def _reverse(self, target: Target) -> np.ndarray:
        """``torch.autograd.grad``: points are independent, so pulling back output entry i summed
        over the points gives every point's row i; all rows go in one batched call."""
        kind, p = target.label, self.points.count
        leaves = self._leaves()
        try:
            flat = self._outputs(leaves, f"{kind}/reverse")
            if kind == "hessian":  # the gradient with a graph, then its Jacobian
                flat = self._pullback(flat, leaves, f"{kind}/reverse", create_graph=True).reshape(p, -1)
            elif kind.startswith("derivative"):
                for _ in range(int(kind[len("derivative"):]) - 1):
                    flat = self._pullback(flat, leaves, f"{kind}/reverse", create_graph=True).reshape(p, -1)
            return _np(self._pullback(flat, leaves, f"{kind}/reverse")).reshape(p, -1)
        except (CannotDifferentiate, TorchRaised):
            raise
        except Exception as err:
            raise classify_error(err) from None

    def _pullback(self, flat: torch.Tensor, leaves, label: str, create_graph: bool = False) -> torch.Tensor:
        """(P, m) outputs → (P, m, N) derivatives with respect to all leaves (N entries in all)."""
        p, m = flat.shape
        sizes = [leaf[0].numel() if p else 0 for leaf in leaves]
        if not flat.requires_grad:  # the output does not depend on the inputs: zero, as jacrev says
            return torch.zeros((p, m, sum(sizes)), dtype=flat.dtype, device=flat.device)

        def join(grads, batch):
            parts = [(g if g is not None else torch.zeros(batch + (p, n), dtype=flat.dtype,
                                                          device=flat.device)).reshape(batch + (p, n))
                     for g, n in zip(grads, sizes)]
            return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)  # one variable: no copy

        if m == 1:
            grads = torch.autograd.grad(flat.sum(), leaves, allow_unused=True, create_graph=create_graph)
            return join(grads, ()).reshape(p, 1, -1)
        # built in float32 and cast: older torch (2.2) has no bfloat16 kernel for eye
        basis = torch.eye(m, device=flat.device).to(flat.dtype)[:, None, :].expand(m, p, m)
        try:
            grads = torch.autograd.grad(flat, leaves, basis, is_grads_batched=True, allow_unused=True,
                                        retain_graph=True, create_graph=create_graph)
            rows = join(grads, (m,))
        except Exception as err:
            if isinstance(classify_error(err), CannotDifferentiate):
                raise
            self.notes.append(f"{label}: batched backward failed ({type(err).__name__}); one backward per "
                              "output entry instead")
            rows = torch.stack([join(torch.autograd.grad(flat[:, i].sum(), leaves, allow_unused=True,
                                                         retain_graph=True, create_graph=create_graph), ())
                                for i in range(m)])
        return rows.permute(1, 0, 2)

    def _flatten_jacobian(self, parts) -> np.ndarray:
        p = self.points.count
        n_out = int(np.prod(self.compiled.out_shape, dtype=int))
        blocks = [_np(part).reshape(p, n_out, -1) for part in parts]
        if len(blocks) == 1:  # one variable: already in place (a copy of 131 MB saved at n = 128)
            return blocks[0].reshape(p, -1)
        return np.concatenate(blocks, axis=2).reshape(p, -1)

    def _flatten_hessian(self, rows) -> np.ndarray:
        p = self.points.count
        sizes = [int(np.prod(s, dtype=int)) for s in self.shapes]
        blocks = [[_np(rows[i][j]).reshape(p, sizes[i], sizes[j]) for j in range(len(sizes))]
                  for i in range(len(sizes))]
        return np.concatenate([np.concatenate(r, axis=2) for r in blocks], axis=1).reshape(p, -1)

    def factorization_condition(self, rows: np.ndarray, order: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """The matrices the torch code factorizes (:data:`FACTORIZING`: det, slogdet, inv, solve,
        …, found by a :class:`torch.overrides.TorchFunctionMode`, so in the user's own code too),
        at each point of ``rows``, seen from each input entry (the N entries of the variables,
        flattened and concatenated). Returns two (len(rows), N) arrays:

        * the largest 2-norm condition number of a matrix (of a batch element) that depends on
          that input entry: 0 where none does (a constant matrix depends on none), inf where it is
          singular. It depends on the entry when its vector-Jacobian product with a positive
          weighting of that batch element is nonzero there;
        * the size of what reaches that entry's derivative of order ``order`` (1 or 2) through
          the factorizing ops' outputs: |∂f/∂xⱼ| along that path, or for order 2 the largest
          |∂²f/∂xⱼ∂xₖ| along it (0 for higher orders: no grant). torch's own derivatives give it,
          so the tolerance never takes it above the exact values' size.

        Computed in float64 from the matrix in the dtype under test, point by point. Only the
        tolerance reads it (:data:`diffcheck.compare.FACTORIZATION`)."""
        sizes = [int(np.prod(s, dtype=int)) for s in self.shapes]
        cond, scale = np.zeros((len(rows), sum(sizes))), np.zeros((len(rows), sum(sizes)))
        weights = torch.Generator().manual_seed(0)

        def flat(grads, leaves) -> torch.Tensor:
            return torch.cat([torch.zeros_like(leaf).reshape(-1) if g is None else g.reshape(-1)
                              for g, leaf in zip(grads, leaves)])

        def positive(like: torch.Tensor) -> torch.Tensor:
            return 1.0 + torch.rand(like.shape, generator=weights, dtype=torch.float64).to(like.device, like.dtype)
        with one_thread():
            for k, i in enumerate(rows):
                leaves = [x[int(i)].detach().clone().requires_grad_(True) for x in self.inputs]
                watch = _FactorizedMatrices()
                try:
                    with torch.enable_grad(), watch:
                        out = self.f(*leaves)
                    # one output: itself; several: a positive weighting in [1/2, 1] (no cancellation across
                    # them, at most 2× below the size of one row of the Jacobian)
                    flat_out = out.reshape(-1)
                    total = (None if not out.requires_grad else flat_out.sum() if flat_out.numel() == 1
                             else (flat_out * positive(flat_out) / 2).sum())
                    for a, conditions, outputs in watch.matrices:
                        if not a.requires_grad:  # a constant matrix: its rounding reaches no derivative
                            continue
                        batch = conditions.numel()
                        for b in range(batch):  # each batch element's matrix feeds its own inputs
                            w = torch.zeros(batch, dtype=a.dtype, device=a.device)
                            w[b] = 1.0
                            w = (w.reshape(a.shape[:-2] + (1, 1)) if batch > 1 else w) * positive(a)
                            used = flat(torch.autograd.grad((a * w).sum(), leaves, allow_unused=True,
                                                            retain_graph=True), leaves).cpu().numpy() != 0
                            cond[k, used] = np.maximum(cond[k, used], float(conditions.reshape(-1)[b]))
                        if total is not None and order in (1, 2):
                            scale[k] = np.maximum(scale[k], _through(total, outputs, leaves, order, flat))
                except Exception:  # torch raised here: the comparison has classified the point already
                    pass
        return cond, scale

    def _leaves(self):
        return [x.detach().clone().requires_grad_(True) for x in self.inputs]

    def _intermediates(self, target: Target) -> np.ndarray:
        """``z.retain_grad()`` before ``backward()``, then ``z.grad``, point by point."""
        with one_thread():
            return self._intermediates_points(target)

    def _intermediates_points(self, target: Target) -> np.ndarray:
        p = self.points.count
        rows_out = []
        for i in range(p):
            leaves = [x[i].detach().clone().requires_grad_(True) for x in self.inputs]
            kept: dict[str, torch.Tensor] = {}

            def keep(name, value):
                if name == target.wrt and isinstance(value, torch.Tensor) and value.requires_grad:
                    value.retain_grad()
                    kept[name] = value
            try:
                out = self.compiled.forward(leaves, self.constants, self.tdtype, on_let=keep).reshape(-1)
                z = kept.get(target.wrt)
                if z is None:
                    raise CannotDifferentiate(f"let step {target.wrt!r} does not require grad")
                row = []
                for k in range(out.numel()):
                    z.grad = None
                    out[k].backward(retain_graph=True)
                    if z.grad is None:
                        raise CannotDifferentiate(f"the output has no gradient path through {target.wrt!r}")
                    row.append(z.grad.detach().reshape(-1).clone())
            except CannotDifferentiate:
                raise
            except Exception as err:
                raise classify_error(err) from None
            rows_out.append(torch.cat(row))
        return _np(torch.stack(rows_out)).reshape(p, -1)


#: torch functions (by ``__name__``, as a TorchFunctionMode sees them: ``torch.det``, ``Tensor.det``,
#: ``torch.linalg.det`` …) that factorize their first argument, a square matrix, by LU with partial
#: pivoting, and whose derivatives solve with that factorization (torch's FunctionsManual.cpp)
FACTORIZING = frozenset({"det", "linalg_det", "logdet", "slogdet", "linalg_slogdet", "inverse", "linalg_inv",
                         "linalg_inv_ex", "linalg_solve", "linalg_solve_ex", "linalg_lu_factor",
                         "linalg_lu_factor_ex"})


def _through(total: torch.Tensor, outputs: tuple, leaves: list, order: int, flat) -> np.ndarray:
    """(N,) the size of ``total``'s derivative of ``order`` (1 or 2) by each input entry along
    the path through ``outputs`` (a factorizing op's results) only: ∂total/∂D, pulled back
    from D to the inputs; for order 2, the largest entry of each row of its Jacobian."""
    outs = [o for o in outputs if isinstance(o, torch.Tensor) and o.requires_grad]
    if not outs:
        return np.zeros(sum(leaf.numel() for leaf in leaves))
    second = order == 2
    g_out = torch.autograd.grad(total, outs, retain_graph=True, create_graph=second, allow_unused=True)
    g_out = [torch.zeros_like(o) if g is None else g for g, o in zip(g_out, outs)]
    g = flat(torch.autograd.grad(outs, leaves, grad_outputs=g_out, retain_graph=True, create_graph=second,
                                 allow_unused=True), leaves)
    if not second:
        return g.detach().abs().to("cpu", torch.float64).numpy()
    rows = []
    for j in range(g.numel()):
        row = (flat(torch.autograd.grad(g[j], leaves, retain_graph=True, allow_unused=True), leaves)
               if g[j].requires_grad else torch.zeros_like(g))
        rows.append(float(row.detach().abs().max()))
    return np.array(rows)


#: torch functions whose derivatives divide by their input's factors (``prod`` and ``cumprod``
#: without zeros: ∂Πx/∂xᵢ = Πx/xᵢ): their rounding grows with max|x|/min|x| as an LU's does with
#: cond(A); the tolerance treats that ratio as the condition number
DIVIDING = frozenset({"prod", "cumprod"})


class _FactorizedMatrices(torch.overrides.TorchFunctionMode):
    """Records each call of a :data:`FACTORIZING` op: its matrix, the condition number of each
    batch element (a float64 tensor), and the op's outputs."""

    def __init__(self):
        super().__init__()
        self.matrices: list[tuple[torch.Tensor, torch.Tensor, tuple]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", None)
        inverse_power = name in ("matrix_power", "linalg_matrix_power") and (
            args[1] if len(args) > 1 else kwargs.get("n", 0)) < 0  # A⁻ⁿ: torch inverts A first
        result = func(*args, **kwargs)
        outputs = tuple(result) if isinstance(result, (tuple, list)) else (result,)
        if name in FACTORIZING or inverse_power:
            a = args[0] if args else kwargs.get("A", kwargs.get("input"))
            if isinstance(a, torch.Tensor) and a.dim() >= 2 and a.shape[-1] == a.shape[-2] and a.numel():
                try:  # the mode is off inside its own handler: this cond is not recorded
                    k = torch.linalg.cond(a.detach().to("cpu", torch.float64)).reshape(-1)
                except RuntimeError:  # a dtype cond cannot take: no grant for this matrix
                    return result
                self.matrices.append((a, torch.where(torch.isnan(k), torch.inf, k), outputs))
        elif name in DIVIDING:
            a = args[0] if args else kwargs.get("input")
            if isinstance(a, torch.Tensor) and a.is_floating_point() and a.numel() > 1:
                size = a.detach().to("cpu", torch.float64).abs().reshape(-1)
                nonzero = size[size > 0]
                if nonzero.numel():  # torch's backward divides by the nonzero factors
                    k = (nonzero.max() / nonzero.min()).reshape(1)
                    self.matrices.append((a, k, outputs))
        return result


def _stack(results):
    if isinstance(results[0], (tuple, list)):
        return type(results[0])(_stack([r[k] for r in results]) for k in range(len(results[0])))
    return torch.stack(results)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def prepare_workers() -> None:
    """What the torch side finds once, in the parent, before worker processes fork (they
    inherit it): the references of the dynamo shim (:mod:`.dynamo_shim`)."""
    dynamo_references()
