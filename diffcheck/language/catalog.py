"""docs/library.md, generated from the function table: ``python -m diffcheck.language.catalog``.

Every function of :data:`~diffcheck.language.library.LIBRARY` with both meanings (the SymPy
definition, printed from the row itself where it is elementwise, and the torch callables it
calls), its options as torch spells them, the dtypes torch supports for it on the CPU
(measured here: forward and backward on a small tensor in each dtype), its special points, and
a coverage table against torch's own namespaces (``torch.special``, the activations and losses
of ``torch.nn.functional``, ``torch.linalg``): in, or out with the reason. Rows added by any
module of the library appear with no edit here. ``--check`` exits 1 when the file is stale
(``tests/test_catalog.py`` runs it).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import sympy as sp
import torch
import torch.nn.functional as F

from .library import LIBRARY, Func, arr

DOC = Path(__file__).resolve().parents[2] / "docs" / "library.md"
DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
          "bfloat16": torch.bfloat16}
FAMILIES = ("elementary", "binary", "special", "activation", "reduction", "reductions", "scans", "loss",
            "losses", "linear algebra", "layers", "shape", "")

MEASURED_WITH = "Measured with torch"

#: the activations of torch.nn.functional (its documentation's "Non-linear activation functions",
#: in-place variants and normalisation layers aside)
ACTIVATIONS = ("threshold", "relu", "hardtanh", "hardswish", "relu6", "elu", "selu", "celu", "leaky_relu",
               "prelu", "rrelu", "glu", "gelu", "logsigmoid", "hardshrink", "tanhshrink", "softsign",
               "softplus", "softmin", "softmax", "softshrink", "gumbel_softmax", "log_softmax", "tanh",
               "sigmoid", "hardsigmoid", "silu", "mish")
#: the loss functions of torch.nn.functional, and the two distances listed with them
LOSSES = ("binary_cross_entropy", "binary_cross_entropy_with_logits", "poisson_nll_loss",
          "cosine_embedding_loss", "cross_entropy", "ctc_loss", "gaussian_nll_loss", "hinge_embedding_loss",
          "kl_div", "l1_loss", "mse_loss", "margin_ranking_loss", "multilabel_margin_loss",
          "multilabel_soft_margin_loss", "multi_margin_loss", "nll_loss", "huber_loss", "smooth_l1_loss",
          "soft_margin_loss", "triplet_margin_loss", "triplet_margin_with_distance_loss",
          "cosine_similarity", "pairwise_distance")

#: why a torch function is out of the library (measured facts where torch decides it)
REASONS = {
    "torch.nn.functional.gumbel_softmax": "random (samples Gumbel noise): no exact derivative to compare with",
    "torch.nn.functional.ctc_loss": "a dynamic program over alignments: no closed form at small sizes",
    "torch.special.round": "piecewise constant: its derivative is 0 wherever it exists",
    "torch.special.zeta": "torch has no derivative for it (\"the derivative for 'zeta' is not implemented\")",
    "torch.nn.functional.triplet_margin_with_distance_loss": "takes a Python callable as its distance",
    "torch.linalg.multi_dot": "takes a list of tensors (the case language has none): write matmul(matmul(A, B), C)",
    "torch.linalg.inv_ex": "returns (inverse, info): the inverse is `inv`",
    "torch.linalg.solve_ex": "returns (result, info): the result is `solve`",
    "torch.linalg.cholesky_ex": "returns (L, info): see cholesky",
    "torch.linalg.eig": "complex eigenvalues and eigenvectors: the library is real",
    "torch.linalg.eigvals": "complex eigenvalues: the library is real",
    "torch.linalg.svd": "U and V are unique only up to the signs of their columns: only sign-invariant "
                        "functions of them have a derivative (svdvals is in)",
    "torch.linalg.qr": "Q and R are unique only up to signs (torch fixes them by its Householder convention)",
    "torch.linalg.lu": "partial pivoting makes P piecewise constant in A: no closed form to differentiate",
    "torch.linalg.lu_factor": "pivots (integers) and packed factors: see lu",
    "torch.linalg.lu_factor_ex": "pivots (integers) and packed factors: see lu",
    "torch.linalg.lu_solve": "takes lu_factor's pivots: use solve",
    "torch.linalg.ldl_factor": "pivots (integers) and packed factors; torch has no derivative for it",
    "torch.linalg.ldl_factor_ex": "pivots (integers) and packed factors; torch has no derivative for it",
    "torch.linalg.ldl_solve": "takes ldl_factor's pivots; torch has no derivative for it",
    "torch.linalg.matrix_rank": "integer valued: its derivative is 0 wherever it exists",
    "torch.linalg.cholesky": "not in the library yet: torch reads the lower triangle but returns a symmetrized "
                             "gradient (it treats the input as symmetric), a convention the exact derivative must state",
    "torch.linalg.eigh": "not in the library yet: eigenvectors are unique only up to sign, and the gradient is "
                         "symmetrized as for cholesky",
    "torch.linalg.eigvalsh": "not in the library yet: the gradient is symmetrized as for cholesky",
}


def _torch_path(fn) -> str:
    mod = getattr(fn, "__module__", "") or ""
    return f"{mod}.{getattr(fn, '__name__', '?')}"


def _probe_args(f: Func, dtype: torch.dtype):
    """Small arguments for ``f``'s torch meaning in ``dtype`` (None: no generic probe)."""
    x = torch.tensor([[0.3, 0.6], [0.2, 0.45]], dtype=dtype, requires_grad=True)
    lo, _ = f.nargs
    if f.number_args:
        if f.number_args != (0,) or lo != 2:
            return None
        return [1, x]
    if f.name == "where":
        return [x > 0.35, x, x * 2]
    if f.name == "cross_entropy":
        return [x, torch.softmax(x.detach(), -1)]
    if lo == 1:
        return [x]
    if lo == 2 and f.family in ("binary", "special", "loss", "losses", "activation"):
        return [x, (x * 0 + 0.7).detach().requires_grad_(True)]
    if lo == 2:
        v = torch.tensor([0.3, 0.6], dtype=dtype, requires_grad=True)
        return [v, (v * 0 + 0.7).detach().requires_grad_(True)]
    return None


def measured_dtypes(f: Func) -> tuple[tuple[str, ...], bool]:
    """(dtypes whose forward and backward run on the CPU, measured?) — the row's declared dtypes
    when no generic probe fits (its control then checks them)."""
    options = {o.name: (1 if o.kind == "int" else 0.4) for o in f.opts if o.default is None and o.kind in ("int", "number")}
    if f.name == "clamp":
        options = {"min": 0.35}
    if f.name == "threshold":
        options = {"threshold": 0.35, "value": 0.0}
    works = []
    for name, dtype in DTYPES.items():
        args = _probe_args(f, dtype)
        if args is None:
            return tuple(f.dtypes or DTYPES), False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = f.torch(*args, **options)
                inputs = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
                torch.autograd.grad(out.sum(), inputs)
            works.append(name)
        except (RuntimeError, NotImplementedError, TypeError, ValueError, IndexError):
            # IndexError: the generic 2×2 probe does not fit the row's shapes (cosine_similarity's dim)
            if name == "float64":
                return tuple(f.dtypes or DTYPES), False
    return tuple(works), True


def math_text(f: Func) -> str:
    """The math meaning printed from the row (elementwise rows), else its description."""
    if f.dim or f.family not in ("elementary", "binary", "special", "activation"):
        return f.doc or "(see the row)"
    x, y = sp.Symbol("x", real=True), sp.Symbol("y", real=True)
    try:
        if f.number_args == (0,):
            value = f.math(arr(sp.Symbol("n", integer=True, nonnegative=True)), arr(x))
        elif f.nargs[0] == 2:
            value = f.math(arr(x), arr(y))
        else:
            value = f.math(arr(x))
        expr = value[()] if isinstance(value, np.ndarray) else value
    except Exception:  # noqa: BLE001 — any refusal (a required option) falls back to the words
        return f.doc or "(see the row)"
    text = sp.sstr(expr)
    return text if len(text) <= 160 else f.doc


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


#: torch's documented aliases ("alias for torch.logsumexp()"): covered when their target is
ALIASES = {"torch.special.logsumexp": "torch.logsumexp", "torch.special.softmax": "torch.softmax",
           "torch.special.log_softmax": "torch.log_softmax"}


def _covered() -> dict[str, str]:
    """torch path → library function, for every torch callable a row names (and its aliases)."""
    out = _covered_rows()
    for alias, target in ALIASES.items():
        if target in out:
            out.setdefault(alias, out[target])
    return out


def _covered_rows() -> dict[str, str]:
    out = {}
    for f in LIBRARY.values():
        own = _torch_path(f.torch)  # a row without torch_names that calls a torch function directly
        for path in f.torch_names or ((own,) if own.startswith("torch.") else ()):
            out.setdefault(path, f.name)
            if path.startswith("torch.nn.functional."):
                out.setdefault("F." + path.rsplit(".", 1)[1], f.name)
    return out


def _differentiable(fn) -> bool | None:
    """Does torch differentiate ``fn`` (one float64 input)? None when no one-argument probe fits."""
    x = torch.tensor([0.3, 0.6], dtype=torch.float64, requires_grad=True)
    out = None
    for more in ((), (2,)):  # one tensor, or a tensor and a whole number (a polynomial's degree)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = fn(x, *more)
            break
        except (RuntimeError, TypeError, ValueError, NotImplementedError, IndexError):
            continue
    if not isinstance(out, torch.Tensor):
        return None
    return out.grad_fn is not None


def coverage_rows(namespace: str, names: list[str]) -> list[tuple[str, str, str]]:
    covered = _covered()
    rows = []
    for name in names:
        path = f"{namespace}.{name}"
        if path in covered:
            rows.append((path, "in", f"`{covered[path]}`"))
            continue
        if path in REASONS:
            rows.append((path, "out", REASONS[path]))
            continue
        if namespace == "torch.special":
            works = _differentiable(getattr(torch.special, name))
            if works is False:
                rows.append((path, "out", "torch has no derivative for it (measured: its output has no grad_fn)"))
                continue
        rows.append((path, "out", "not in the library yet"))
    return rows


def _public(module) -> list[str]:
    return sorted(n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))
                  and not isinstance(getattr(module, n), type) and n not in ("torch", "Tensor"))


def render() -> str:
    lines = ["# The function library", "",
             "Generated from the function table by `python -m diffcheck.language.catalog` (do not edit;",
             "`tests/test_catalog.py` fails when it is stale). Each function has two meanings side by side:",
             "the exact definition (SymPy, printed from the row for elementwise functions) and the torch",
             "callables it calls (torch's own kernels). Options are spelled as torch spells them and may",
             "follow the tensor arguments positionally. *dtypes* are the dtypes whose forward and backward",
             "run on the CPU, measured on a small tensor (declared by the row where no generic probe fits);",
             "*special points* are the kinks, poles, removable singularities and thresholds its control in",
             "`cases/library/` checks. The exact readings of the SymPy functions (extended precision, mpmath,",
             "or a declared gap computed by mpmath) are the op table, `diffcheck/symbolic/ops.py`.", "",
             f"{MEASURED_WITH} {torch.__version__.split('+')[0]} on the CPU.", ""]
    by_family: dict[str, list[Func]] = {}
    for f in LIBRARY.values():
        by_family.setdefault(f.family or "other", []).append(f)
    order = [fam for fam in FAMILIES if fam in by_family] + sorted(set(by_family) - set(FAMILIES))
    for fam in order:
        lines += [f"## {fam[:1].upper() + fam[1:]}", "",
                  "| function | math meaning | torch | dtypes | special points |", "|---|---|---|---|---|"]
        for f in sorted(by_family[fam], key=lambda g: g.name):
            dtypes, measured = measured_dtypes(f)
            own = _torch_path(f.torch)
            torch_text = ", ".join(f"`{p}`" for p in f.torch_names or ((own,) if own.startswith("torch.") else ())) \
                or "torch's kernels (see the row)"
            lines.append(f"| `{_cell(f.signature())}` | `{_cell(math_text(f))}` | {torch_text} | "
                         f"{' '.join(dtypes) if dtypes else '—'}{'' if measured else ' (declared)'} | "
                         f"{_cell(f.special) or '—'} |")
        lines.append("")
    lines += ["## Coverage of torch's namespaces", ""]
    total_in = total = 0
    sections = [("torch.special", "torch.special", _public(torch.special)),
                ("activations of torch.nn.functional", "torch.nn.functional", list(ACTIVATIONS)),
                ("losses of torch.nn.functional", "torch.nn.functional", list(LOSSES)),
                ("torch.linalg", "torch.linalg", _public(torch.linalg))]
    for title, namespace, names in sections:
        rows = coverage_rows(namespace, names)
        n_in = sum(1 for r in rows if r[1] == "in")
        total_in, total = total_in + n_in, total + len(rows)
        lines += [f"### {title}: {n_in} of {len(rows)} in", "", "| torch | | library function or reason |",
                  "|---|---|---|"]
        lines += [f"| `{p}` | {status} | {_cell(what)} |" for p, status, what in rows]
        lines.append("")
    lines.insert(lines.index("## Coverage of torch's namespaces") + 1,
                 f"\n{total_in} of {total} torch functions in these namespaces are in the library.")
    return "\n".join(lines).rstrip() + "\n"


def measured_with(text: str) -> str | None:
    """The torch version a generated docs/library.md was measured with."""
    for line in text.splitlines():
        if line.startswith(MEASURED_WITH):
            return line[len(MEASURED_WITH):].split()[0]
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffcheck.language.catalog", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/library.md is stale")
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python -m diffcheck.language.catalog", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
