"""Batched AC power flow: many copies of one network solved together by a Z-bus fixed-point iteration.

For nets whose buses are all PQ apart from the slack(s) (every shipped template), the
PQ block of the admittance matrix ``Y_pp`` is inverted once (``Z = Y_pp⁻¹``) and each
copy's PQ voltages ``V`` (pu) solve

    V = w + Z · conj(S / V),      w = −Z · Y_ps · V_s

("tensor power flow"): with the copies as the columns of one matrix, an iteration
for all of them is one dense matrix product. The iteration stops when every copy's
largest power mismatch ``|V·conj(Y·V) − S|`` (see :meth:`BatchedSolver._iterate`) is below ``tolerance_mva`` (per unit of
``sn_mva``, as in ``pandapower.runpp``), warm-started from each copy's previous voltages.

Each copy is one :class:`~powergrid.solvers.fast.FastSolver`, which keeps its own
state (warm start, taps) and derives its results; a copy goes to its own
Newton–Raphson (``FastSolver.solve``) instead when

- the net has PV buses, or the solver delegates to pandapower,
- its ``Ybus`` differs from the one ``Z`` was built from (a regulator moved its tap),
- its injections are not finite, or the fixed point does not converge.

When no copy matches the factored ``Ybus`` any more, ``Z`` is rebuilt from the first
copy's (one dense inversion, 0.1–2 ms on the templates).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from powergrid.solvers.base import Injections, PowerFlowResult
from powergrid.solvers.fast import FastSolver


class BatchedSolver:
    """Solve the power flows of many :class:`FastSolver` copies of one network at once.

    ``max_iteration`` bounds the fixed-point iterations (a copy still above the tolerance
    then gets a Newton–Raphson solve); the tolerance is the copies' ``tolerance_mva``.
    """

    def __init__(self, solvers: Sequence[FastSolver], max_iteration: int = 60) -> None:
        if not solvers:
            raise ValueError("BatchedSolver needs at least one FastSolver copy")
        self.solvers = list(solvers)
        self.max_iteration = max_iteration
        self.tolerance = min(s.params.tolerance_mva for s in self.solvers)
        self._Ydata: np.ndarray | None = None
        self._factor(self.solvers[0])

    def _factor(self, s: FastSolver) -> None:
        """Build ``Z`` and the slack coupling from copy ``s`` (none when its net has PV buses)."""
        self._Ydata = None
        if s._delegate is not None or len(s.pv):
            return
        Y = sp.csr_matrix(s.Ybus)
        pq, ref = s.pq, s.ref
        try:
            Z = np.linalg.inv(Y[pq][:, pq].toarray())
        except np.linalg.LinAlgError:
            return
        self.pq, self.ref = pq.copy(), ref.copy()
        self._Z = np.ascontiguousarray(Z)
        self._Yps = Y[pq][:, ref].toarray()
        self._Ydata = s.Ybus.data.copy()

    def _fits(self, s: FastSolver) -> bool:
        """Whether copy ``s`` can join the batch solved with the current ``Z``."""
        return (self._Ydata is not None and s._delegate is None and s.Ybus.nnz == len(self._Ydata)
                and np.array_equal(s.Ybus.data, self._Ydata) and np.array_equal(s.pq, self.pq)
                and np.array_equal(s.ref, self.ref) and not len(s.pv))

    def solve(self, injections: Sequence[Injections]) -> list[PowerFlowResult]:
        """One power flow per copy (``injections[i]`` for ``solvers[i]``), in copy order."""
        if len(injections) != len(self.solvers):
            raise ValueError(f"BatchedSolver.solve: {len(injections)} injections for {len(self.solvers)} copies")
        fits = [self._fits(s) for s in self.solvers]
        if not any(fits) and self.solvers[0]._delegate is None:
            self._factor(self.solvers[0])
            fits = [self._fits(s) for s in self.solvers]
        batch, Sbus = [], []
        for i, (s, inj) in enumerate(zip(self.solvers, injections)):
            if fits[i]:
                S = s.S_const + s._scatter(inj.load_p_mw, inj.load_q_mvar, inj.sgen_p_mw, inj.sgen_q_mvar)
                if np.all(np.isfinite(S)):
                    batch.append(i)
                    Sbus.append(S)
        results: list[PowerFlowResult | None] = [None] * len(self.solvers)
        if batch:
            S_all = np.stack(Sbus, axis=1)  # (buses, copies)
            V_all = np.stack([self.solvers[i]._V for i in batch], axis=1)
            V, ok, iterations = self._iterate(V_all, S_all)
            for col, i in enumerate(batch):
                if ok[col]:
                    s = self.solvers[i]
                    s._V = V[:, col].copy()
                    results[i] = s._results(s._V, Sbus[col], iterations)
        return [r if r is not None else s.solve(inj) for r, s, inj in zip(results, self.solvers, injections)]

    def _iterate(self, V_all: np.ndarray, S_all: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Fixed-point iteration on the PQ voltages of every column; (voltages, converged per column, iterations).

        After an update ``V' = Z·(conj(S/V) − Y_ps·V_s)`` the PQ currents are ``Y_pp·V' + Y_ps·V_s = conj(S/V)``,
        so the mismatch at ``V'`` is ``V'·S/V − S`` (pu) with no product by ``Y``; the loop always takes
        at least one step from the warm start.
        """
        pq, Z = self.pq, self._Z
        S = S_all[pq]
        V = V_all[pq]
        w = -(Z @ (self._Yps @ V_all[self.ref]))  # (pq, copies)
        it = 0
        with np.errstate(all="ignore"):
            while True:
                V_new = w + Z @ np.conj(S / V)
                it += 1
                ok = np.max(np.abs(S * (V_new - V) / V), axis=0) < self.tolerance
                V = V_new
                if it == self.max_iteration or ok.all():
                    break
        V_all = V_all.copy()
        V_all[pq] = V
        return V_all, ok & np.all(np.isfinite(V), axis=0), it
