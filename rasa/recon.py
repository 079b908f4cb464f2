"""Minimum reconstruction error of a set of weight updates: LoRA (exact) and RaSA (coordinate descent).

Paper §3 and Appendix A. Given the updates ``M_1 … M_L`` of one
linear-module type (one per layer, all of shape ``b × a``):

* **LoRA** (Eqs. 7–9): ``e_lora(r) = Σ_i Σ_{j>r} σ_j(M_i)²`` by the Eckart–Young–Mirsky theorem.
* **RaSA** (Eqs. 10–11, 17): ``e_rasa(r, k) = min Σ_i ‖M_i − B̃_iÃ_i − B_S D_i A_S‖²_F`` with a private
  rank-``t = r−k`` part per layer and a shared pool ``B_S ∈ R^{b×K}``, ``A_S ∈ R^{K×a}``, ``K = L·k``,
  scaled per layer by a diagonal ``D_i``. It is minimised by block-coordinate descent: the private
  factors by a truncated SVD of the residual (Eq. 19), ``B_S``, ``A_S`` and ``D_i`` by their
  closed-form least-squares updates (Eqs. 24–26).

How the RaSA solver stays fast at paper scale (32 × 4096 × 14336 per module type, 80 layers at 70B)
----------------------------------------------------------------------------------------------------
Only the ``M_i`` are large; every unknown is low rank. The solver never forms a residual, a
target ``T_i = M_i − B̃_iÃ_i`` or a dense reconstruction. Per iteration it touches the ``M_i`` only
through skinny products (batched over the layers):

* ``M_i A_Sᵀ`` (width K) for the ``B_S`` update and ``B_Sᵀ M_i`` (height K) for the ``A_S`` update;
  the ``D_i`` update and every error evaluation reuse those two products.
* The private step applies the residual ``R_i = M_i − B_S D_i A_S`` as an operator
  (``R Z = M Z − B_S(D_i(A_S Z))``) inside a warm-started subspace iteration of width
  ``s = t + oversample``: the basis starts from the previous private column space plus the next
  ``oversample`` Ritz vectors of the previous step (at first: of the start's SVD), one product
  ``QᵀR`` gives both the Rayleigh–Ritz truncated SVD and the next power step, and the iteration
  stops when the captured energy stops moving (``inner_tol``). Because the first basis contains
  the old private subspace, the Rayleigh–Ritz solution is never worse than the old private
  factors (monotone by construction, and guarded anyway).
* The objective is evaluated exactly from small quantities,
  ``‖M−P−S‖² = ‖M‖² − 2⟨M,P⟩ − 2⟨M,S⟩ + ‖P‖² + 2⟨P,S⟩ + ‖S‖²``, where every inner product is a
  trace of ``K×K``, ``t×K`` or ``t×t`` matrices built from the skinny products above (``‖M_i‖²`` is
  precomputed once). All these small quantities are kept in float64 even when the ``M_i`` are held
  in float32.

A per-iteration cost of about ``(2·K + (1 + 2·n_power)·s)`` multiply-adds per entry of the ``M_i``
(``n_power`` ≤ ``power_iters``, fewer once the warm start has converged), i.e. ``2 + 1 + 2·n_power``
passes over the stacked updates; the start costs one Gram eigen-decomposition per layer
(:func:`spectra`, shareable between runs). See ``benchmarks/recon.py`` for measured times.

Monotonicity: every block update is accepted only if it does not increase the objective (the
least-squares updates are exact minimisers, so a rejection only happens at round-off level or when
a pseudo-inverse truncates); the recorded history is therefore non-increasing by construction.

Initialisations
---------------
* ``"theorem"``: the Theorem 3.1 construction (Eqs. 12–16): private part = each layer's top ``r−k``
  singular triplets; pool block ``i`` = layer ``i``'s triplets ``r−k+1 … r`` with ``D_i`` holding
  their singular values on its own block and zeros elsewhere. Its error equals LoRA's, so
  ``e_rasa ≤ e_lora`` from iteration 0 on.
* ``"paper"``: the paper does not document its start. We use the adapter's own
  initialisation, mirrored: ``A_S`` random Gaussian (rows of norm ≈ 1), ``B_S = 0``, ``D_i = I``, so
  the shared part starts at zero and the private part is the first Eq.-19 step (top ``r−k`` SVD of
  ``M_i``). Iteration 0 is then LoRA's error at rank ``r−k`` (above LoRA's at rank ``r``) and the
  curve descends towards and below LoRA's line, as in Figure 2.

One iteration updates, in this order: ``B_S`` (Eq. 24), ``A_S`` (Eq. 25), every ``D_i`` (Eq. 26),
then the private factors (Eq. 19). The history holds the error after the initialisation
(entry 0) and after every iteration (entries 1 … iters).

Limits (measured, see ``tests/test_recon.py``): block-coordinate descent is a local method. On
planted instances (``M_i`` = private rank ``r−k`` + a pool of rank ``L·k``, RaSA's minimum is 0) it
reaches ~0 but can crawl along the long plateaus ("swamps") alternating least squares is known for,
especially when the planted ``D_i`` are nearly collinear or ``k > 1``; the reported error is then an
upper bound on the true minimum. Results are bit-identical for a fixed machine and thread count;
across thread counts they agree to ~1e-9 relative (BLAS summation order).

Degenerate shapes: ranks are clipped to ``min(b, a)``. If ``r ≥ min(b, a)`` LoRA reconstructs every
``M_i`` exactly (error 0) and so does the Theorem-3.1 start of RaSA; ``k > r`` is rejected.
"""

from __future__ import annotations

import math

import torch

__all__ = ["RasaSolver", "lora_error", "lora_error_from_spectra", "rasa_error", "reconstruct", "spectra",
           "stack_mats"]

F64 = torch.float64


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

def stack_mats(mats, dtype=F64, device=None) -> torch.Tensor:
    """``(L, b, a)`` tensor of the updates in ``dtype`` on ``device``, copied in one layer at a time
    (no second full-size copy on the device). A 3-D tensor already of that dtype/device is used as is."""
    if isinstance(mats, torch.Tensor):
        if mats.dim() != 3:
            raise ValueError("mats must be a list of 2-D tensors or a 3-D tensor (L, b, a)")
        device = mats.device if device is None else torch.device(device)
        return mats.to(device=device, dtype=dtype)
    mats = list(mats)
    if not mats:
        raise ValueError("mats is empty")
    shape = tuple(mats[0].shape)
    if len(shape) != 2 or any(tuple(m.shape) != shape for m in mats):
        raise ValueError(f"all matrices must be 2-D and of one shape, got {[tuple(m.shape) for m in mats]}")
    device = mats[0].device if device is None else torch.device(device)
    out = torch.empty((len(mats),) + shape, dtype=dtype, device=device)
    for i, m in enumerate(mats):
        out[i].copy_(m)
    return out


def _top_svd(m: torch.Tensor, n: int, return_lam: bool = False):
    """Top-``n`` singular triplets of one matrix, in float64, through the eigen-decomposition of its
    Gram matrix on the smaller side (``min(b,a)³`` instead of a full SVD of a wide matrix).
    Returns ``U (b×n)``, ``s (n,)``, ``V (a×n)`` and the tail energy ``Σ_{j>n} σ_j²``."""
    m = m.to(F64)
    b, a = m.shape
    if b <= a:
        lam, vecs = torch.linalg.eigh(m @ m.T)
    else:
        lam, vecs = torch.linalg.eigh(m.T @ m)
    lam = lam.flip(0).clamp_min(0.0)
    vecs = vecs.flip(1)
    n = min(n, lam.numel())
    tail = lam[n:].sum()
    s = lam[:n].sqrt()
    inv = torch.where(s > s.max().clamp_min(1e-300) * 1e-12, 1.0 / s, torch.zeros_like(s)) if n else s
    if b <= a:
        u = vecs[:, :n]
        v = (m.T @ u) * inv
    else:
        v = vecs[:, :n]
        u = (m @ v) * inv
    # zero singular values: drop those directions (they carry no energy)
    keep = (inv > 0).to(F64)
    if return_lam:
        return u * keep, s * keep, v * keep, lam
    return u * keep, s * keep, v * keep, tail


def _psd_pinv_apply(g: torch.Tensor, h: torch.Tensor, left: bool, rcond: float | None = None):
    """Minimum-norm least-squares solve with a symmetric PSD matrix ``g``: ``g⁺ h`` (left) or
    ``h g⁺`` (right), by eigen-decomposition with a relative cut-off (never an explicit inverse)."""
    n = g.shape[-1]
    if n == 0:
        return torch.zeros_like(h)
    g = 0.5 * (g + g.transpose(-1, -2))
    w, v = torch.linalg.eigh(g)
    if rcond is None:
        rcond = n * torch.finfo(g.dtype).eps * 10.0
    cut = w.amax(dim=-1, keepdim=True).clamp_min(0.0) * rcond
    winv = torch.where(w > cut, 1.0 / w, torch.zeros_like(w))
    if left:
        return v @ (winv.unsqueeze(-1) * (v.transpose(-1, -2) @ h))
    return ((h @ v) * winv.unsqueeze(-2)) @ v.transpose(-1, -2)


def _ranks(r: int, k: int, b: int, a: int, L: int):
    if r < 0 or k < 0:
        raise ValueError("r and k must be non-negative")
    if k > r:
        raise ValueError(f"k={k} > r={r}: RaSA takes k of the r ranks of every layer")
    n = min(b, a)
    t = min(r - k, n)
    return t, L * k, n


def spectra(mats, n: int, *, dtype=F64, device=None) -> dict:
    """Each layer's top-``n`` singular triplets and all its squared singular values (float64), to be
    shared by :func:`lora_error_from_spectra` and by several :func:`rasa_error` starts."""
    M = stack_mats(mats, dtype=dtype, device=device)
    L, b, a = M.shape
    nn = min(n, b, a)
    u = torch.zeros(L, b, nn, dtype=F64, device=M.device)
    v = torch.zeros(L, a, nn, dtype=F64, device=M.device)
    s = torch.zeros(L, nn, dtype=F64, device=M.device)
    lam = torch.zeros(L, min(b, a), dtype=F64, device=M.device)
    for i in range(L):
        u[i], s[i], v[i], lam[i] = _top_svd(M[i], nn, return_lam=True)
    return {"u": u, "s": s, "v": v, "lam": lam}


def lora_error_from_spectra(spec: dict, r: int) -> float:
    """LoRA's minimum error from :func:`spectra` (tail sum of the squared singular values)."""
    return float(spec["lam"][:, r:].sum())


# ----------------------------------------------------------------------------------------------
# LoRA
# ----------------------------------------------------------------------------------------------

def lora_error(mats, r: int, *, dtype=F64, device=None) -> float:
    """LoRA's minimum reconstruction error ``Σ_i Σ_{j>r} σ_j(M_i)²`` (Eqs. 8–9), exact (float64
    eigenvalues of each Gram matrix; ``0`` when ``r ≥ min(b, a)``)."""
    if isinstance(mats, torch.Tensor) and mats.dim() == 2:
        mats = [mats]
    total = 0.0
    for m in mats:
        m = m.to(device=device if device is not None else m.device, dtype=dtype)
        n = min(m.shape)
        if r >= n:
            continue
        m = m.to(F64)
        g = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
        lam = torch.linalg.eigvalsh(g).clamp_min(0.0)  # ascending
        total += float(lam[: n - r].sum())
    return total


# ----------------------------------------------------------------------------------------------
# RaSA: fast solver
# ----------------------------------------------------------------------------------------------

class _State:
    """Factors (float64) of one RaSA solution."""

    def __init__(self, up, sp, vp, B, A, d):
        self.up, self.sp, self.vp = up, sp, vp  # (L,b,t) orthonormal cols, (L,t), (L,a,t)
        self.B, self.A, self.d = B, A, d        # (b,K), (K,a), (L,K)
        self.ritz = None                        # (L,b,s) warm start of the private step


def _small_terms(st: _State):
    """‖P‖², ⟨P,S⟩, ‖S‖² per layer (all from small matrices)."""
    pp = (st.sp ** 2).sum(-1)
    if st.B.shape[1] == 0:
        z = torch.zeros_like(pp)
        return pp, z, z
    gram = (st.B.T @ st.B) * (st.A @ st.A.T)                       # (K,K)
    ss = torch.einsum("lk,kj,lj->l", st.d, gram, st.d)
    if st.up.shape[-1] == 0:
        return pp, torch.zeros_like(pp), ss
    ub = st.up.transpose(1, 2) @ st.B                              # (L,t,K)
    av = st.A @ st.vp                                              # (L,K,t)
    ps = torch.einsum("lt,ltk,lk,lkt->l", st.sp, ub, st.d, av)
    return pp, ps, ss


def _err(nM, mp, ms, st: _State):
    pp, ps, ss = _small_terms(st)
    return nM - 2.0 * mp - 2.0 * ms + pp + 2.0 * ps + ss


def _ms_from_MA(MA, st: _State):
    """⟨M_i, S_i⟩ per layer from ``MA = M A_Sᵀ`` (L,b,K), float64."""
    return torch.einsum("bk,lbk,lk->l", st.B, MA, st.d)


def _ms_from_BM(BM, st: _State):
    """⟨M_i, S_i⟩ per layer from ``BM = B_Sᵀ M`` (L,K,a), float64."""
    return torch.einsum("lka,ka,lk->l", BM, st.A, st.d)


class RasaSolver:
    """RaSA's block-coordinate descent on the updates of one module type (see the module docstring).

    ``RasaSolver(mats, r, k, ...)`` stacks the ``M_i`` and builds the start; :meth:`run` iterates.
    Besides the factors (``self.st``) it keeps, per layer, the error ``E``, ``mp = ⟨M,P⟩`` and
    ``ms = ⟨M,S⟩``; every step updates them from small matrices. ``products`` counts the columns of
    the skinny products with the ``M_i`` made by the iterations (the benchmark's cost measure).
    Parameters as in :func:`rasa_error`."""

    def __init__(self, mats, r: int, k: int, *, init: str = "theorem", dtype=F64, device=None,
                 seed: int = 0, oversample: int = 10, power_iters: int = 8,
                 inner_tol: float = 1e-12, spectra: dict | None = None):
        if init not in ("theorem", "paper"):
            raise ValueError(f"init must be 'theorem' or 'paper', got {init!r}")
        self.M = stack_mats(mats, dtype=dtype, device=device)
        self.L, self.b, self.a = self.M.shape
        self.dev, self.dtype, self.r, self.k = self.M.device, dtype, r, k
        self.t, self.K, self.n = _ranks(r, k, self.b, self.a, self.L)
        self.power_iters, self.inner_tol, self.spectra = power_iters, inner_tol, spectra
        self.nM = torch.stack([self.M[i].to(F64).pow(2).sum() for i in range(self.L)])
        self.sw = min(self.t + oversample, self.b, self.a)  # width of the private step's subspace
        self.products = 0
        self.st = self._theorem_start() if init == "theorem" else self._paper_start(seed)
        self.mp = self._mp()
        if self.K:
            self.ms = _ms_from_MA((self.M @ self._big(self.st.A.T)).to(F64), self.st)
        else:
            self.ms = self._zeros(self.L)
        self.E = _err(self.nM, self.mp, self.ms, self.st)

    # ---- helpers ---------------------------------------------------------------------------
    def _big(self, x):
        """``x`` as an operand of a product with ``M`` (in ``M``'s dtype)."""
        return x.to(self.dtype)

    def _zeros(self, *shape):
        return torch.zeros(*shape, dtype=F64, device=self.dev)

    def _layer_svd(self, i: int, n_: int):
        """Top-``n_`` singular triplets of layer ``i``, from ``spectra`` when it holds enough."""
        sp = self.spectra
        if sp is not None and sp["u"].shape[-1] >= min(n_, self.n):
            m_ = min(n_, self.n)
            return (sp["u"][i, :, :m_].to(self.dev, F64), sp["s"][i, :m_].to(self.dev, F64),
                    sp["v"][i, :, :m_].to(self.dev, F64))
        return _top_svd(self.M[i], n_)[:3]

    def _mp(self):
        """⟨M_i, P_i⟩ per layer (one product of width t)."""
        st = self.st
        if self.t == 0:
            return self._zeros(self.L)
        mv = (self.M @ self._big(st.vp)).to(F64)                   # (L,b,t)
        return torch.einsum("lbt,lbt,lt->l", st.up, mv, st.sp)

    # ---- starts ----------------------------------------------------------------------------
    def _empty_state(self, A, d) -> _State:
        L, b, a, t = self.L, self.b, self.a, self.t
        st = _State(self._zeros(L, b, t), self._zeros(L, t), self._zeros(L, a, t),
                    self._zeros(b, self.K), A, d)
        st.ritz = self._zeros(L, b, self.sw)
        return st

    def _theorem_start(self) -> _State:
        """Theorem 3.1: private = top ``r−k`` triplets; pool block ``i`` = layer ``i``'s next ``k``."""
        t, k, K = self.t, self.k, self.K
        st = self._empty_state(self._zeros(K, self.a), self._zeros(self.L, K))
        need = min(self.r, self.n)
        for i in range(self.L):
            u, s, v = self._layer_svd(i, max(need, self.sw))
            st.ritz[i, :, : u.shape[1]] = u[:, :self.sw]
            u, s, v = u[:, :need], s[:need], v[:, :need]
            st.up[i], st.sp[i], st.vp[i] = u[:, :t], s[:t], v[:, :t]
            m = u.shape[1] - t  # available components r-k+1 .. r (fewer if r > rank bound)
            if K and m > 0:
                sl = slice(i * k, i * k + m)
                st.B[:, sl] = u[:, t:t + m]
                st.A[sl, :] = v[:, t:t + m].T
                st.d[i, sl] = s[t:t + m]
        return st

    def _paper_start(self, seed: int) -> _State:
        """Random ``A_S``, ``B_S = 0``, ``D_i = I``; private = top ``r−k`` triplets."""
        gen = torch.Generator().manual_seed(int(seed))
        A = torch.randn(self.K, self.a, generator=gen, dtype=F64) / math.sqrt(max(self.a, 1))
        st = self._empty_state(A.to(self.dev), torch.ones(self.L, self.K, dtype=F64, device=self.dev))
        t = self.t
        for i in range(self.L):
            u, s, v = self._layer_svd(i, max(t, self.sw))
            st.ritz[i, :, : u.shape[1]] = u[:, :self.sw]
            u, s, v = u[:, :t], s[:t], v[:, :t]
            st.up[i, :, : u.shape[1]], st.sp[i, : s.numel()], st.vp[i, :, : v.shape[1]] = u, s, v
        return st

    # ---- shared step: B_S, A_S, D_i (Eqs. 24-26) -------------------------------------------
    def shared_step(self) -> None:
        if self.K == 0:
            return
        dd = self.st.d.T @ self.st.d                                # Σ_i d_i d_iᵀ (K,K)
        self._update_B(dd)
        BM, BT = self._update_A(dd)
        self._update_d(BM, BT)
        self._rescale()

    def _accept_pool(self, cand: _State, msn) -> None:
        """Take ``cand``'s ``B_S`` and ``A_S`` unless the total error grows."""
        En = _err(self.nM, self.mp, msn, cand)
        if En.sum() <= self.E.sum():
            self.st.B, self.st.A, self.E, self.ms = cand.B, cand.A, En, msn

    def _update_B(self, dd) -> None:
        """Eq. 24: ``B (Σ D_i A Aᵀ D_i) = Σ_i T_i Aᵀ D_i``."""
        st = self.st
        MA = (self.M @ self._big(st.A.T)).to(F64)                  # (L,b,K)
        self.products += self.K
        TA = MA
        if self.t:
            TA = MA - st.up @ (st.sp.unsqueeze(-1) * (st.vp.transpose(1, 2) @ st.A.T))
        H = torch.einsum("lbk,lk->bk", TA, st.d)
        G = (st.A @ st.A.T) * dd
        cand = _State(st.up, st.sp, st.vp, _psd_pinv_apply(G, H, left=False), st.A, st.d)
        self._accept_pool(cand, _ms_from_MA(MA, cand))

    def _update_A(self, dd):
        """Eq. 25: ``(Σ D_i Bᵀ B D_i) A = Σ_i D_i Bᵀ T_i``; returns ``Bᵀ M`` and ``Bᵀ T``."""
        st = self.st
        BM = (self._big(st.B.T) @ self.M).to(F64)                  # (L,K,a)
        self.products += self.K
        BT = BM
        if self.t:
            BT = BM - ((st.B.T @ st.up) * st.sp.unsqueeze(1)) @ st.vp.transpose(1, 2)
        H = torch.einsum("lk,lka->ka", st.d, BT)
        G = (st.B.T @ st.B) * dd
        cand = _State(st.up, st.sp, st.vp, st.B, _psd_pinv_apply(G, H, left=True), st.d)
        self._accept_pool(cand, _ms_from_BM(BM, cand))
        return BM, BT

    def _update_d(self, BM, BT) -> None:
        """Eq. 26: ``((BᵀB) ∘ (AAᵀ)) d_i = diag(Bᵀ T_i Aᵀ)``, guarded per layer."""
        st = self.st
        X = torch.einsum("lka,ka->lk", BT, st.A)
        Hd = (st.B.T @ st.B) * (st.A @ st.A.T)
        dn = _psd_pinv_apply(Hd, X.T, left=True).T                 # (L,K)
        cand = _State(st.up, st.sp, st.vp, st.B, st.A, dn)
        msn = _ms_from_BM(BM, cand)
        En = _err(self.nM, self.mp, msn, cand)
        ok = En <= self.E
        st.d = torch.where(ok.unsqueeze(-1), dn, st.d)
        self.E = torch.where(ok, En, self.E)
        self.ms = torch.where(ok, msn, self.ms)

    def _rescale(self) -> None:
        """Exact re-scaling (objective unchanged): unit columns of B_S and rows of A_S."""
        st = self.st
        bn = st.B.norm(dim=0)
        an = st.A.norm(dim=1)
        okc = (bn > 0) & (an > 0)
        bs = torch.where(okc, bn, torch.ones_like(bn))
        as_ = torch.where(okc, an, torch.ones_like(an))
        st.B = st.B / bs
        st.A = st.A / as_.unsqueeze(-1)
        st.d = st.d * (bs * as_)

    # ---- private step (Eq. 19) -------------------------------------------------------------
    def private_step(self) -> None:
        if self.t == 0:
            return
        st = self.st
        # warm start: the old private subspace plus the next Ritz vectors of the previous private
        # step (the residual moves little between iterations)
        Q0 = torch.cat([st.up, st.ritz[:, :, self.t:self.sw]], dim=2) if self.sw > self.t else st.up
        Q, _ = torch.linalg.qr(Q0)
        nR = self.nM - 2.0 * self.ms + _small_terms(st)[2]         # ‖R‖² per layer
        best_e, best = self._subspace_iteration(Q, nR)
        self._accept_private(best_e, best, nR)

    def _residual_right(self, Z):
        """``R Z`` for ``Z`` (L,a,w)."""
        st = self.st
        self.products += Z.shape[-1]
        out = (self.M @ self._big(Z)).to(F64)
        if self.K:
            out = out - st.B @ (st.d.unsqueeze(-1) * (st.A @ Z))
        return out

    def _residual_left(self, Q):
        """``Qᵀ R`` for ``Q`` (L,b,w), shape (L,w,a)."""
        st = self.st
        self.products += Q.shape[-1]
        out = (self._big(Q.transpose(1, 2)) @ self.M).to(F64)
        if self.K:
            out = out - ((Q.transpose(1, 2) @ st.B) * st.d.unsqueeze(1)) @ st.A
        return out

    def _subspace_iteration(self, Q, nR):
        """Rayleigh–Ritz truncated SVDs of the residuals in the basis ``Q``, with power steps until
        the captured energy stops moving; returns the best captured energy per layer and the
        factors reaching it, and keeps the last Ritz basis as the next warm start."""
        t = self.t
        best_e = torch.full((self.L,), -1.0, dtype=F64, device=self.dev)
        best = [None] * self.L
        prev = None
        for p in range(self.power_iters + 1):
            C = self._residual_left(Q)                              # (L,s,a)
            lam, W = torch.linalg.eigh(C @ C.transpose(1, 2))       # ascending, (L,s)
            Wall = W.flip(-1)
            lam = lam.flip(-1).clamp_min(0.0)[:, :t]
            e = lam.sum(-1)
            best_e = self._keep_better(Q, C, Wall[:, :, :t], lam, e, best_e, best)
            if prev is not None:
                resid = (nR - e).clamp_min(0.0)
                if bool(((e - prev) <= self.inner_tol * resid + 1e-300).all()):
                    break
            prev = e
            if p == self.power_iters:
                break
            Q, _ = torch.linalg.qr(self._residual_right(C.transpose(1, 2)))  # power step
        self.st.ritz = Q @ Wall                                     # Ritz basis, best first
        return best_e, best

    @staticmethod
    def _keep_better(Q, C, W, lam, e, best_e, best):
        """Store in ``best`` the triplets of the layers whose energy ``e`` beats ``best_e``."""
        better = e > best_e
        if not better.any():
            return best_e
        sv = lam.sqrt()
        inv = torch.where(sv > sv.amax(-1, keepdim=True).clamp_min(1e-300) * 1e-12,
                          1.0 / sv, torch.zeros_like(sv))
        U = Q @ W                                                   # (L,b,t)
        V = (C.transpose(1, 2) @ W) * inv.unsqueeze(1)              # (L,a,t)
        keep = (inv > 0).to(F64)
        for i in torch.nonzero(better).flatten().tolist():
            best[i] = (U[i] * keep[i], sv[i] * keep[i], V[i] * keep[i])
        return torch.where(better, e, best_e)

    def _accept_private(self, best_e, best, nR) -> None:
        """Guard per layer: new error = ‖R‖² − e, old = E."""
        En = nR - best_e
        ok = En <= self.E
        if not ok.any():
            return
        st = self.st
        up, sp, vp = st.up.clone(), st.sp.clone(), st.vp.clone()
        for i in torch.nonzero(ok).flatten().tolist():
            up[i], sp[i], vp[i] = best[i]
        st.up, st.sp, st.vp = up, sp, vp
        # ⟨M,P⟩ = ⟨R,P⟩ + ⟨S,P⟩ = e + ⟨S,P⟩  (only for the layers that changed)
        _, ps_new, _ = _small_terms(st)
        self.mp = torch.where(ok, best_e + ps_new, self.mp)
        self.E = torch.where(ok, En, self.E)

    # ---- driver ----------------------------------------------------------------------------
    def run(self, iters: int, tol: float | None = None, callback=None) -> list[float]:
        """Iterate (``B_S``, ``A_S``, ``D_i``, then the private factors); returns the history."""
        history = [max(float(self.E.sum()), 0.0)]  # round-off can leave −1e-13 where the error is 0
        if callback is not None:
            callback(0, history[0])
        for it in range(iters):
            self.shared_step()
            self.private_step()
            # guarded steps: only round-off can make the min bite
            history.append(max(min(float(self.E.sum()), history[-1]), 0.0))
            if callback is not None:
                callback(it + 1, history[-1])
            if tol is not None and history[-2] - history[-1] <= tol * max(abs(history[-2]), 1e-300):
                break
        return history

    def state(self) -> dict:
        st = self.st
        return {"up": st.up, "sp": st.sp, "vp": st.vp, "B": st.B, "A": st.A, "d": st.d,
                "big_product_width": self.products}


def rasa_error(mats, r: int, k: int, iters: int = 50, *, init: str = "theorem", dtype=F64,
               device=None, tol: float | None = None, seed: int = 0, oversample: int = 10,
               power_iters: int = 8, inner_tol: float = 1e-12, return_state: bool = False,
               callback=None, spectra: dict | None = None):
    """RaSA's minimum reconstruction error by block-coordinate descent (paper Appendix A), with
    :class:`RasaSolver`.

    Parameters
    ----------
    mats : list of 2-D tensors of one shape (the ``L`` updates of one module type), or an
        ``(L, b, a)`` tensor.
    r, k : LoRA rank and number of shared ranks per layer (``0 ≤ k ≤ r``); pool size ``K = L·k``.
    iters : maximum number of coordinate-descent iterations.
    init : ``"theorem"`` (Theorem 3.1 construction, error = LoRA's at iteration 0) or ``"paper"``
        (random ``A_S``, zero ``B_S``, ``D_i = I``; see the module docstring).
    dtype : dtype in which the ``M_i`` are held and multiplied (float64 default; float32 halves
        memory and time on GPUs). Small matrices and all error bookkeeping are float64 regardless.
    device : where to run (default: the device of ``mats``).
    tol : stop early when an iteration lowers the error by less than ``tol`` × error
        (``None``: always run ``iters`` iterations).
    seed : seeds the random ``A_S`` of the paper start.
    oversample, power_iters, inner_tol : the private step's subspace width ``r−k+oversample``, its
        maximum number of power steps, and the relative change of captured energy at which it stops.
    callback : optional ``callback(iteration, error)`` called after the start (0) and every iteration.
    spectra : optional output of :func:`spectra` for the same ``mats`` (reused by many ``(r, k)``
        runs: the start needs each layer's top ``max(r, r−k+oversample)`` singular triplets).

    Returns
    -------
    ``(final_error, history)`` with ``history[0]`` the error of the initialisation and
    ``history[j]`` the error after iteration ``j`` (non-increasing). With ``return_state=True`` a
    third element holds the factors (dict of float64 tensors).
    """
    solver = RasaSolver(mats, r, k, init=init, dtype=dtype, device=device, seed=seed,
                        oversample=oversample, power_iters=power_iters, inner_tol=inner_tol,
                        spectra=spectra)
    history = solver.run(iters, tol, callback)
    if return_state:
        return history[-1], history, solver.state()
    return history[-1], history


def reconstruct(state: dict, i: int) -> torch.Tensor:
    """Dense ``B̃_iÃ_i + B_S D_i A_S`` of layer ``i`` from ``rasa_error(..., return_state=True)``
    (for checks on small matrices)."""
    p = (state["up"][i] * state["sp"][i]) @ state["vp"][i].T
    if state["B"].shape[1]:
        p = p + (state["B"] * state["d"][i]) @ state["A"]
    return p
