"""How far torch's LU-based derivatives are from the exact ones, against u·cond(A)·M.

The measurement behind diffcheck.compare.FACTORIZATION: torch.det's gradient and Hessian,
by ``.backward()`` (double backward, as a training loop would) and by torch.func (jacrev),
at random matrices with prescribed condition numbers (A = Q₁·diag(s)·Q₂, s geometric from 1
to 1/cond), against the exact values in 50-digit mpmath. Prints, per dtype, size and
condition number, the largest error ÷ (u·cond(A)·M), M the largest |exact entry| of the point.

    python tools/measure_factorization.py [--samples 40] [--seed 0]
"""

from __future__ import annotations

import argparse

import mpmath as mp
import numpy as np
import torch
from torch.func import jacrev


def exact(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gradient, Hessian) of det at ``a``: det·A⁻ᵀ and det·(A⁻¹ⱼᵢA⁻¹ₗₖ − A⁻¹ⱼₖA⁻¹ₗᵢ)."""
    mp.mp.dps = 50
    n = a.shape[0]
    m = mp.matrix([[mp.mpf(float(a[i, j])) for j in range(n)] for i in range(n)])
    d, inv = mp.det(m), m ** -1
    grad = np.array([[float(d * inv[j, i]) for j in range(n)] for i in range(n)])
    hess = np.array([[[[float(d * (inv[j, i] * inv[l, k] - inv[j, k] * inv[l, i])) for l in range(n)]
                       for k in range(n)] for j in range(n)] for i in range(n)])
    return grad, hess


def by_backward(a: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    a = a.clone().requires_grad_()
    g, = torch.autograd.grad(torch.det(a), a, create_graph=True)
    h = torch.stack([torch.autograd.grad(g.flatten()[i], a, retain_graph=True)[0] for i in range(g.numel())])
    return g.detach().double().numpy(), h.detach().double().numpy()


def by_func(a: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    return jacrev(torch.det)(a).double().numpy(), jacrev(jacrev(torch.det))(a).double().numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    def orthogonal(n):
        q, _ = np.linalg.qr(rng.normal(size=(n, n)))
        return q
    overall = 0.0
    for dtype, u in ((torch.float64, 2.0 ** -53), (torch.float32, 2.0 ** -24)):
        for n in (2, 3, 4):
            for log_cond in (1, 2, 3, 4, 6):
                if dtype == torch.float32 and log_cond > 4:
                    continue  # u·cond near 1: singular in float32
                worst = dict.fromkeys(("backward gradient", "backward Hessian", "func gradient", "func Hessian"), 0.0)
                for _ in range(args.samples):
                    s = np.geomspace(1, 10.0 ** -log_cond, n) * rng.uniform(0.5, 2)
                    a = torch.tensor(orthogonal(n) @ np.diag(s) @ orthogonal(n)).to(dtype)
                    a64 = a.double().numpy()  # the matrix torch sees, exactly
                    cond = np.linalg.cond(a64)
                    grad, hess = exact(a64)
                    for how, fn in (("backward", by_backward), ("func", by_func)):
                        g, h = fn(a)
                        worst[f"{how} gradient"] = max(worst[f"{how} gradient"], np.abs(g - grad).max()
                                                       / (u * cond * np.abs(grad).max()))
                        worst[f"{how} Hessian"] = max(worst[f"{how} Hessian"], np.abs(h.ravel() - hess.ravel()).max()
                                                      / (u * cond * np.abs(hess).max()))
                overall = max(overall, *worst.values())
                print(f"{str(dtype)[6:]:8} {n}x{n} cond 1e{log_cond}: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in worst.items()), flush=True)
    print(f"largest error ÷ u·cond(A)·M: {overall:.2f}")


if __name__ == "__main__":
    main()
