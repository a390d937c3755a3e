"""The Newton–Raphson backends of :class:`~powergrid.solvers.fast.FastSolver`, on its compiled ``Ybus``.

- :class:`GridNewton`: lightsim2grid's Newton–Raphson (KLU, or SuperLU in a build without it) inside an ``LSGrid``
  built on ``Ybus``, which keeps the Jacobian's pattern and KLU's analysis from one solve to the next (the default
  where lightsim2grid installs). It raises ``ValueError`` for a net it cannot represent (several slacks, a ``Ybus``
  not of coupled pairs); ``FastSolver`` then runs the bare algorithm object :data:`LS_CLASS`, which redoes them at
  every call.
- :class:`NumpyNewton`: the same method in numpy/scipy (polar coordinates, a sparse Jacobian whose pattern is built
  once, SuperLU), ≈10× slower: the fallback where lightsim2grid is not importable.

Each ``solve(V0, Sbus, max_iter, tol)`` starts from the complex bus voltages ``V0`` (pu) at the bus powers ``Sbus``
(pu, generator convention) and iterates until the largest power mismatch is below ``tol`` (pu):
``(V, converged, iterations)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

try:  # the core's optional ``fast`` extra
    import lightsim2grid.algorithm as _ls_algorithm
    from lightsim2grid.lightsim2grid_cpp import AlgorithmType as _AlgorithmType
    from lightsim2grid.lightsim2grid_cpp import LSGrid as _LSGrid
    from lightsim2grid.lightsim2grid_cpp import klu_solver_available as _klu_available

    #: lightsim2grid's Newton–Raphson algorithm class (None when lightsim2grid is not importable)
    LS_CLASS: Any = _ls_algorithm.NRSing_KLU if _klu_available else _ls_algorithm.NRSing_SparseLU
    _LS_TYPE: Any = _AlgorithmType.NRSing_KLU if _klu_available else _AlgorithmType.NRSing_SparseLU
    LS_IMPORT_ERROR = ""  #: why lightsim2grid is not importable ("" when it is)
except Exception as exc:  # ImportError, or an ABI mismatch in the compiled module
    LS_CLASS = None
    LS_IMPORT_ERROR = f"{type(exc).__name__}: {exc}"


def backend_summary() -> str:
    """The Newton–Raphson backend ``FastSolver`` uses here, for ``powergrid --version`` and ``plugins``."""
    if LS_CLASS is None:
        return f"numpy/scipy Newton–Raphson (lightsim2grid unavailable: {LS_IMPORT_ERROR})"
    from importlib.metadata import version

    return f"lightsim2grid {version('lightsim2grid')} ({LS_CLASS.__name__})"


def lightsim2grid_available() -> bool:
    """Whether the lightsim2grid backend can be used in this environment."""
    return LS_CLASS is not None


class NumpyNewton:
    """Newton–Raphson in polar coordinates with a sparse Jacobian whose pattern is built once.

    The Jacobian ``[[dP/dVa, dP/dVm], [dQ/dVa, dQ/dVm]]`` over (pv+pq, pq) shares the
    sparsity of ``Ybus``; the CSC structure and the gather index from the four
    derivative arrays into its data are precomputed, so an iteration costs two
    sparse mat-vecs, a few vector ops and one SuperLU factorisation.
    """

    def __init__(self, Ybus: sp.csc_matrix, pv: np.ndarray, pq: np.ndarray) -> None:
        n = Ybus.shape[0]
        c = sp.coo_matrix(Ybus)
        diag = np.arange(n)
        # every diagonal entry explicit (coo -> csr sums duplicates and keeps explicit zeros)
        Y = sp.coo_matrix((np.r_[c.data, np.zeros(n)], (np.r_[c.row, diag], np.r_[c.col, diag])),
                          shape=(n, n)).tocsr()
        Y.sum_duplicates()
        Y.sort_indices()
        assert np.all(np.diff(Y.indptr) > 0)
        self.Y = Y
        rows = np.repeat(np.arange(n), np.diff(Y.indptr))
        cols = Y.indices
        self.rows, self.cols = rows, cols
        self.diag = np.flatnonzero(rows == cols)
        self.diag_bus = rows[self.diag]
        self.pv, self.pq = pv, pq
        self.pvpq = np.r_[pv, pq]
        npvpq, npq = len(self.pvpq), len(pq)
        self.npvpq = npvpq
        pos_pvpq = np.full(n, -1)
        pos_pvpq[self.pvpq] = np.arange(npvpq)
        pos_pq = np.full(n, -1)
        pos_pq[pq] = np.arange(npq)
        nnz = len(rows)
        r_pvpq, c_pvpq, r_pq, c_pq = pos_pvpq[rows], pos_pvpq[cols], pos_pq[rows], pos_pq[cols]
        blocks = [  # (mask, J row, J col, offset of the source array in the stacked derivatives)
            (r_pvpq >= 0) & (c_pvpq >= 0), r_pvpq, c_pvpq, 0,              # Re dS/dVa
            (r_pvpq >= 0) & (c_pq >= 0), r_pvpq, npvpq + c_pq, nnz,        # Re dS/dVm
            (r_pq >= 0) & (c_pvpq >= 0), npvpq + r_pq, c_pvpq, 2 * nnz,    # Im dS/dVa
            (r_pq >= 0) & (c_pq >= 0), npvpq + r_pq, npvpq + c_pq, 3 * nnz,  # Im dS/dVm
        ]
        jr, jc, src = [], [], []
        for b in range(4):
            mask, rr, cc, off = blocks[4 * b: 4 * b + 4]
            jr.append(rr[mask])
            jc.append(cc[mask])
            src.append(np.flatnonzero(mask) + off)
        jr_a, jc_a, src_a = np.concatenate(jr), np.concatenate(jc), np.concatenate(src)
        m = npvpq + npq
        order = sp.csc_matrix((np.arange(1, len(jr_a) + 1, dtype=float), (jr_a, jc_a)), shape=(m, m))
        order.sort_indices()
        self.gather = src_a[order.data.astype(np.int64) - 1]
        self.J_indices, self.J_indptr, self.m = order.indices.copy(), order.indptr.copy(), m

    def solve(self, V0: np.ndarray, Sbus: np.ndarray, max_iter: int, tol: float) -> tuple[np.ndarray, bool, int]:
        """Newton–Raphson from ``V0`` (pu, not modified) at the bus powers ``Sbus`` (pu) to a largest P or Q mismatch
        below ``tol`` (pu), at most ``max_iter`` iterations: ``(V, converged, iterations)``; a singular Jacobian raises
        ``RuntimeError``."""
        Y, pvpq, pq, npvpq = self.Y, self.pvpq, self.pq, self.npvpq
        V = V0.copy()
        Vm, Va = np.abs(V), np.angle(V)
        Ibus = Y @ V
        mis = V * np.conj(Ibus) - Sbus
        F = np.r_[mis[pvpq].real, mis[pq].imag]
        converged = bool(np.max(np.abs(F), initial=0.0) < tol)
        it = 0
        while not converged and it < max_iter:
            it += 1
            Vnorm = V / Vm
            yd = Y.data
            dVm = V[self.rows] * np.conj(yd * Vnorm[self.cols])
            dVa = -1j * V[self.rows] * np.conj(yd * V[self.cols])
            d = self.diag_bus
            dVm[self.diag] += np.conj(Ibus[d]) * Vnorm[d]
            dVa[self.diag] += 1j * V[d] * np.conj(Ibus[d])
            stacked = np.concatenate((dVa.real, dVm.real, dVa.imag, dVm.imag))
            J = sp.csc_matrix((stacked[self.gather], self.J_indices, self.J_indptr), shape=(self.m, self.m))
            dx = -splu(J).solve(F)  # RuntimeError when singular
            Va[pvpq] += dx[:npvpq]
            Vm[pq] += dx[npvpq:]
            V = Vm * np.exp(1j * Va)
            Vm, Va = np.abs(V), np.angle(V)
            Ibus = Y @ V
            mis = V * np.conj(Ibus) - Sbus
            F = np.r_[mis[pvpq].real, mis[pq].imag]
            if not np.all(np.isfinite(F)):
                return V, False, it
            converged = bool(np.max(np.abs(F), initial=0.0) < tol)
        return V, converged, it


class _Scope(NamedTuple):
    """Where :meth:`GridNewton._params` reads and writes for some lines, shifted pairs and buses: the lines (indices among
    them), their upper ``Ybus.data`` entries and −1 per line (complex: an array operand of the division); the shifted
    pairs and their upper and lower entries; the buses, their diagonal entries, the entries of their couplings (``at``,
    each bus's from ``starts``); the owning lines' shunts in ``_h.ravel()`` of the buses ``own`` among them (None: every
    bus has a line)."""

    lines: np.ndarray
    up: np.ndarray
    minus_one: np.ndarray
    trs: np.ndarray
    up_tr: np.ndarray
    lo_tr: np.ndarray
    buses: np.ndarray
    diag: np.ndarray
    at: np.ndarray
    starts: np.ndarray
    h_at: np.ndarray
    own: np.ndarray | None


class GridNewton:
    """lightsim2grid's Newton–Raphson run by an ``LSGrid`` built on this solver's own ``Ybus``, which keeps the KLU
    symbolic analysis and the Jacobian pattern from one solve to the next.

    A bare algorithm object (``NRSing_KLU.compute_pf``) cannot: nothing from Python clears its change flags
    (``AlgoControl``, which starts as "reset the solver"), so every call resets the linear solver, rebuilds the
    Jacobian pattern and redoes KLU's analysis (≈27 µs) and a full factorisation (≈25 µs) per call on ``ieee34_3mg``;
    an ``LSGrid`` clears them after each powerflow and only refactorises: ≈47 µs per solve against ≈72 µs for the
    bare ``NRSing_KLU`` on a recorded ``ieee34_3mg`` sequence (CPU time; same iterations, voltages within 1e-12 pu).

    The grid is ``Ybus`` itself. A coupled bus pair is a pi line of series admittance ``−Y_ij`` when ``Y_ij = Y_ji``,
    else (a phase shift: ``|Y_ij| = |Y_ji|``) a transformer of ratio 1 and shift ``θ = arg(Y_ij / Y_ji) / 2`` with
    series admittance ``−Y_ij·e^{−jθ}``. Each bus's diagonal remainder is the shunt of one end of a line touching it,
    or a shunt of its own. The bus powers are loads (two per bus, a float32 part and the float32 rest:
    ``update_loads_p`` takes float32 and skips changes under 1e-7, so the grid's base power is 1e8 and a bus power is
    exact to ≈1e-15 pu). Raises ``ValueError`` when ``Ybus`` is not of that form (the caller then uses the bare
    algorithm object).
    """

    SCALE = 1e8  #: the grid's sn_mva: bus powers are written in units of 1e-8 pu

    def __init__(self, Ybus: sp.csc_matrix, ref: np.ndarray, pv: np.ndarray, pq: np.ndarray, V0: np.ndarray) -> None:
        n = Ybus.shape[0]
        if len(ref) != 1 or len(ref) + len(pv) + len(pq) != n:
            raise ValueError("one slack bus and every bus slack, PV or PQ")
        col = np.repeat(np.arange(n), np.diff(Ybus.indptr))
        row = Ybus.indices
        key = col * n + row  # ascending: CSC with sorted indices
        up = np.flatnonzero(row < col)
        f, t = row[up], col[up]
        lo = np.minimum(np.searchsorted(key, f * n + t), len(key) - 1)  # the entry (t, f) of every (f, t)
        data = Ybus.data
        if not (np.array_equal(key[lo], f * n + t) and data[up].all() and 2 * len(up) + n == len(key)
                and np.allclose(np.abs(data[up]), np.abs(data[lo]), rtol=1e-12, atol=0)):
            raise ValueError("Ybus is not of coupled pairs with |Y_ij| = |Y_ji| ≠ 0")
        diag = np.flatnonzero(row == col)
        if len(diag) != n:
            raise ValueError("a bus without a diagonal entry")
        line = data[up] == data[lo]
        self.Ybus, self.n, self.diag = Ybus, n, diag
        self.up_line, self.up_tr, self.lo_tr = up[line], up[~line], lo[~line]
        fl, tl, ft, tt = f[line], t[line], f[~line], t[~line]
        m = len(fl)
        owner, side = np.full(n, -1), np.zeros(n, np.int64)  # the first line at each bus carries its remainder
        for end, at in ((tl, 1), (fl, 0)):
            bus, first = np.unique(end, return_index=True)
            owner[bus], side[bus] = first, at
        self.lonely = np.flatnonzero(owner < 0)  # buses without a line: a shunt of their own
        self._owner, self._side = owner, side
        ends = np.r_[f, t]
        by_bus = np.argsort(ends, kind="stable")  # the couplings at bus 0, then at bus 1, …
        self._at_bus, self._bus_start = up[by_bus % len(up)], np.searchsorted(ends[by_bus], np.arange(n))
        self._ends = (fl, tl, ft, tt)
        # the grid's parameters, set by _params: the lines' r, x, h_from, h_to and the shifted pairs' r, x (pu), θ
        # (rad); each bus's diagonal remainder and the couplings they sum (−(series admittance), at the upper entries)
        self._r, self._x, self._h = np.zeros(m), np.zeros(m), np.zeros((2, m), np.complex128)
        self._h_flat, self._h_rows = self._h.ravel(), (self._h[0], self._h[1])  # (views)
        self._r_tr, self._x_tr, self._theta = np.zeros(len(ft)), np.zeros(len(ft)), np.zeros(len(ft))
        self._remainder, self._coupling = np.zeros(n, np.complex128), data.copy()
        self._params(self._scope_of(np.arange(m), np.arange(len(ft)), np.arange(n), self._at_bus, self._bus_start))
        shunt = self._remainder[self.lonely]
        g = _LSGrid()
        g.set_sn_mva(self.SCALE)
        g.init_bus(n, 1, np.ones(n), m, len(ft))
        if m:
            g.init_powerlines_full(self._r, self._x, self._h[0], self._h[1], fl.astype(np.int32), tl.astype(np.int32))
        if len(ft):
            g.init_trafo(self._r_tr, self._x_tr, np.zeros(len(ft), np.complex128), np.ones(len(ft)),
                         np.rad2deg(self._theta), [True] * len(ft), ft.astype(np.int32), tt.astype(np.int32), True)
        if len(self.lonely):
            g.init_shunt(shunt.real * self.SCALE, -shunt.imag * self.SCALE, self.lonely.astype(np.int32))
        gens = np.r_[ref, pv]
        g.init_generators(np.zeros(len(gens)), np.abs(V0[gens]), np.full(len(gens), -1e30), np.full(len(gens), 1e30),
                          gens.astype(np.int32))
        g.add_gen_slackbus(0, 1.0)
        g.init_loads(np.zeros(2 * n), np.zeros(2 * n), np.r_[np.arange(n), np.arange(n)].astype(np.int32))
        g.deactivate_result_computation()
        g.change_algorithm(_LS_TYPE)
        self.grid, self.algo = g, g.get_algo()
        self._all = np.ones(2 * n, bool)
        self._pq = np.empty((2, 2 * n), np.float32)  # P then Q rows: the float32 parts, then the rests
        self._pq_views = (self._pq[:, :n], self._pq[:, n:], self._pq[0], self._pq[1])
        # the bus powers in the load convention and units of the grid (P, Q of a bus side by side: one contiguous
        # product with Sbus's floats; _scaled_t: as P and Q rows), the float32 parts back in float64 (the rests are
        # then float64 differences, not mixed-type ones) and the rests
        self._scaled, self._part64, self._rest = np.empty(2 * n), np.empty((2, n)), np.empty((2, n))
        self._scaled_t = self._scaled.reshape(n, 2).T
        self._minus_scale = np.full(2 * n, -self.SCALE)  # an array operand: a ufunc is slower with a Python float
        self._S: np.ndarray | None = None  # the bus powers written last
        self._touched: set[tuple[int, int]] = set()  # pairs of buses whose entries of Ybus changed since
        self._scopes: dict[tuple[int, int], _Scope] = {}  # _params's argument for such a pair

    def _scope_of(self, lines: np.ndarray, trs: np.ndarray, buses: np.ndarray, at: np.ndarray, starts: np.ndarray
                  ) -> _Scope:
        """:meth:`_params`'s argument for the lines ``lines`` and the shifted pairs ``trs`` (indices among them) and the
        diagonal remainders of the buses ``buses`` (``at``: the couplings they sum, ``starts``: where each bus's ones
        begin), every position in ``Ybus.data``, ``_h`` and ``_remainder`` resolved once."""
        owner = self._owner[buses]
        own = np.flatnonzero(owner >= 0)
        h_at = self._side[buses[own]] * len(self._r) + owner[own]  # in _h.ravel(): the shunt at the owning line's end
        return _Scope(lines, self.up_line[lines], np.full(len(lines), -1.0 + 0j), trs, self.up_tr[trs], self.lo_tr[trs],
                      buses, self.diag[buses], at, starts, h_at, None if len(own) == len(buses) else own)

    def _params(self, scope: _Scope) -> None:
        """From ``Ybus``, the parameters of the lines and the shifted pairs of ``scope`` and the diagonal remainders
        of its buses: the sums of their diagonals and of their couplings, written to the shunts at the owning lines'
        ends (a bus without a line keeps a shunt of its own)."""
        lines, up, minus_one, trs, up_tr, lo_tr, buses, diag, at, starts, h_at, own = scope
        data, coupling = self.Ybus.data, self._coupling
        if len(lines):
            y = data[up]
            coupling[up] = y
            z = np.divide(minus_one, y)
            self._r[lines], self._x[lines] = z.real, z.imag
        if len(trs):
            Yft = data[up_tr]
            theta = 0.5 * np.angle(Yft / data[lo_tr])
            y_tr = -Yft * np.exp(-1j * theta)
            coupling[up_tr] = -y_tr
            z_tr = 1.0 / y_tr
            self._r_tr[trs], self._x_tr[trs], self._theta[trs] = z_tr.real, z_tr.imag, theta
        remainder = data[diag] + np.add.reduceat(coupling[at], starts)
        self._remainder[buses] = remainder
        self._h_flat[h_at] = remainder if own is None else remainder[own]

    def touch(self, f: int, t: int) -> None:
        """Note that the entries of ``Ybus`` of the buses ``f``, ``t`` changed in place (a tap move): the next solve
        writes that pair's parameters and the remainders at both buses to the grid."""
        self._touched.add((min(f, t), max(f, t)))

    def _scope(self, pair: tuple[int, int]) -> _Scope:
        """:meth:`_params`'s argument for the pair of buses ``pair`` and its two buses."""
        fl, tl, ft, tt = self._ends
        f, t = pair
        stops = np.r_[self._bus_start[1:], len(self._at_bus)]
        at = [self._at_bus[self._bus_start[b]: stops[b]] for b in pair]
        scope = self._scopes[pair] = self._scope_of(np.flatnonzero((fl == f) & (tl == t)),
                                                    np.flatnonzero((ft == f) & (tt == t)), np.array(pair),
                                                    np.concatenate(at), np.array([0, len(at[0])]))
        return scope

    def _update(self) -> None:
        """Write the parameters of the pairs :meth:`touch` noted and the remainders at their buses to the grid
        (the same floats as computing them all)."""
        g, shifted, lonely = self.grid, len(self.up_tr), len(self.lonely)
        theta = self._theta.copy() if shifted else None
        shunt = self._remainder[self.lonely] if lonely else None
        for pair in self._touched:  # a bus shared by two pairs is summed again with the second: both fresh
            self._params(self._scopes.get(pair) or self._scope(pair))
        self._touched.clear()
        if len(self.up_line):
            g.update_powerlines_parameters(self._r, self._x, *self._h_rows)
        if shifted:
            g.update_trafos_parameters(self._r_tr, self._x_tr, np.zeros(shifted, np.complex128))
            for i in np.flatnonzero(theta != self._theta).tolist():
                g.change_shift_trafo(i, float(self._theta[i]))
        if lonely:
            new = self._remainder[self.lonely]
            for i in np.flatnonzero(new != shunt).tolist():
                g.change_p_shunt(i, float(new[i].real * self.SCALE))
                g.change_q_shunt(i, float(-new[i].imag * self.SCALE))

    def solve(self, V0: np.ndarray, Sbus: np.ndarray, max_iter: int, tol: float) -> tuple[np.ndarray, bool, int]:
        """Newton–Raphson from ``V0`` (pu, overwritten) at the bus powers ``Sbus`` (pu; the same object as last time
        is not written again) to a mismatch below ``tol`` (pu): ``(V, converged, iterations)``. Call
        :meth:`touch` after editing ``Ybus.data`` in place."""
        g, n = self.grid, self.n
        if self._touched:
            self._update()
        if Sbus is not self._S:
            scaled_t, part64, rest, (part, rest32, p, q) = self._scaled_t, self._part64, self._rest, self._pq_views
            np.multiply(Sbus.view(np.float64), self._minus_scale, out=self._scaled)  # load convention
            part[...] = scaled_t
            part64[...] = part
            np.subtract(scaled_t, part64, out=rest)
            rest32[...] = rest
            g.update_loads_p(self._all, p)
            g.update_loads_q(self._all, q)
            self._S = Sbus
        V = g.ac_pf(V0, max_iter, tol * self.SCALE)  # V0 is overwritten
        converged = len(V) == n
        if not converged:  # a failed solve leaves its linear solver's state behind, which fails later solvable flows
            g.tell_solver_need_reset()
        return V, converged, int(self.algo.get_nb_iter())
