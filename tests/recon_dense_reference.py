"""The RaSA block-coordinate descent written the obvious way, as a reference for
:func:`rasa.recon.rasa_error` (used by tests/test_recon.py and benchmarks/recon.py only).

Full SVDs (of ``M_i`` for the start and of every residual ``M_i − B_S D_i A_S`` each iteration),
explicit targets ``T_i = M_i − B̃_iÃ_i``, explicit normal equations and the error from the dense
residual. Same start, same update order and same guards as the fast solver; slow by design.
"""

from __future__ import annotations

import math

import torch

from rasa.recon import F64, _psd_pinv_apply, _ranks, stack_mats


def rasa_error_dense(mats, r: int, k: int, iters: int = 50, *, init: str = "theorem", dtype=F64,
                     device=None, seed: int = 0, callback=None):
    """:func:`rasa.recon.rasa_error`'s ``(final_error, history)``, computed densely (see above)."""
    M = stack_mats(mats, dtype=dtype, device=device)
    L, b, a = M.shape
    dev = M.device
    t, K, n = _ranks(r, k, b, a, L)
    gen_cpu = torch.Generator().manual_seed(int(seed))

    def full_svd(x):
        u, s, vh = torch.linalg.svd(x, full_matrices=False)
        return u, s, vh

    P = torch.zeros(L, b, a, dtype=dtype, device=dev)
    if init == "theorem":
        B = torch.zeros(b, K, dtype=dtype, device=dev)
        A = torch.zeros(K, a, dtype=dtype, device=dev)
        d = torch.zeros(L, K, dtype=dtype, device=dev)
        for i in range(L):
            u, s, vh = full_svd(M[i])
            P[i] = (u[:, :t] * s[:t]) @ vh[:t]
            m = min(r, n) - t
            if K and m > 0:
                sl = slice(i * k, i * k + m)
                B[:, sl] = u[:, t:t + m]
                A[sl] = vh[t:t + m]
                d[i, sl] = s[t:t + m]
    else:
        A = (torch.randn(K, a, generator=gen_cpu, dtype=F64) / math.sqrt(max(a, 1))).to(dev, dtype)
        B = torch.zeros(b, K, dtype=dtype, device=dev)
        d = torch.ones(L, K, dtype=dtype, device=dev)
        for i in range(L):
            u, s, vh = full_svd(M[i])
            P[i] = (u[:, :t] * s[:t]) @ vh[:t]

    def shared(B, A, d):
        return torch.stack([(B * d[i]) @ A for i in range(L)])

    def err(P, B, A, d):
        return ((M - P - shared(B, A, d)) ** 2).sum(dim=(1, 2)).to(F64)

    E = err(P, B, A, d)
    history = [float(E.sum())]
    if callback is not None:
        callback(0, history[0])
    for it in range(iters):
        if K:
            T = M - P
            # B_S (Eq. 24)
            H = sum(T[i] @ A.T @ torch.diag(d[i]) for i in range(L))
            G = sum(torch.diag(d[i]) @ A @ A.T @ torch.diag(d[i]) for i in range(L))
            Bn = _psd_pinv_apply(G, H, left=False)
            En = err(P, Bn, A, d)
            if En.sum() <= E.sum():
                B, E = Bn, En
            # A_S (Eq. 25)
            H = sum(torch.diag(d[i]) @ B.T @ T[i] for i in range(L))
            G = sum(torch.diag(d[i]) @ B.T @ B @ torch.diag(d[i]) for i in range(L))
            An = _psd_pinv_apply(G, H, left=True)
            En = err(P, B, An, d)
            if En.sum() <= E.sum():
                A, E = An, En
            # D_i (Eq. 26)
            Hd = (B.T @ B) * (A @ A.T)
            dn = torch.stack([_psd_pinv_apply(Hd, torch.diag(B.T @ T[i] @ A.T).unsqueeze(-1),
                                              left=True).squeeze(-1) for i in range(L)])
            En = err(P, B, A, dn)
            ok = En <= E
            d = torch.where(ok.unsqueeze(-1), dn, d)
            E = torch.where(ok, En, E)
            bn, an = B.norm(dim=0), A.norm(dim=1)
            okc = (bn > 0) & (an > 0)
            bs = torch.where(okc, bn, torch.ones_like(bn))
            as_ = torch.where(okc, an, torch.ones_like(an))
            B, A, d = B / bs, A / as_.unsqueeze(-1), d * (bs * as_)
        if t:
            S = shared(B, A, d)
            Pn = torch.empty_like(P)
            for i in range(L):
                u, s, vh = full_svd(M[i] - S[i])
                Pn[i] = (u[:, :t] * s[:t]) @ vh[:t]
            En = err(Pn, B, A, d)
            ok = En <= E
            P = torch.where(ok.view(L, 1, 1), Pn, P)
            E = torch.where(ok, En, E)
        history.append(min(float(E.sum()), history[-1]))
        if callback is not None:
            callback(it + 1, history[-1])
    return history[-1], history
