"""Batched AC power flow: many copies of one network solved together, by a Z-bus fixed-point iteration (from
:data:`FIXED_POINT_FROM` copies) or by each copy's own Newton–Raphson with everything around it done for all copies
at once (each layout's bus powers as one sparse product, the relays' readings and the results in one pass: the same
floats as each copy's own :class:`~powergrid.solvers.fast.FastSolver`).

For nets whose buses are all PQ apart from the slack(s) (every shipped template), the
PQ block of the admittance matrix ``Y_pp`` is inverted once (``Z = Y_pp⁻¹``) and each
copy's PQ voltages ``V`` (pu) solve

    V = w + Z · conj(S / V),      w = −Z · Y_ps · V_s

("tensor power flow"): with the copies as the columns of one matrix, an iteration
for all of them is one dense matrix product. The iteration stops when every copy's
largest power mismatch ``|V·conj(Y·V) − S|`` (see :meth:`BatchedSolver._iterate`) is below ``tolerance_mva`` (per unit of
``sn_mva``, as in ``pandapower.runpp``), warm-started from each copy's previous voltages.

Only the PQ buses whose current ``conj(S/V) − Y_ps·V_s`` can be nonzero are iterated (``live``: those coupled to a
slack or with a bus power in some copy since ``Z`` was factored; 55 of 69 on ``ieee34_3mg``): the others' voltages
do not enter the products and their mismatch is zero, so they follow from the last currents by one product after the
loop. On recorded ``ieee34_3mg`` calls this takes a 16-copy call from ≈189 to ≈159 µs of CPU, a 64-copy call from
≈471 to ≈370 µs (7.4 and 7.8 steps on average on that recording, the same as before; the extrapolation's ratio, now
fitted over the iterated buses only, changed a copy's step count in ≈2 % of its solves on ``ieee34`` in a test and in
none on ``ieee34_3mg``).

The step's Jacobian ``δ ↦ −Z·conj(S/V²)·conj(δ)`` is conjugate-linear; its two-step map's leading eigenvalue was
real (0.02–0.18) on every shipped feeder, so a copy's slowest error shrinks by a real ratio ``r`` every two steps:
from the fifth step on, every third step jumps to where that would lead (:func:`_extrapolate`, ``r`` fitted per copy,
no jump where it is not in (0, 0.95)). On the ``ieee34_3mg`` calls recorded when it was added a 16-copy call took 8.6
steps instead of 11.1 and ≈12 % less CPU time, a 64-copy call 9.1 instead of 12.3 and ≈18 % less. Alternatives measured and dropped
(Anderson acceleration, a chord iteration with one shared Jacobian, a sparse LU): docs/performance.md.

A copy whose regulators moved has a ``Ybus`` that differs from the factored one ``Y₀`` on the
few buses of the tapped transformers (``aff``: the PQ buses where any copy's ``Ybus`` has differed
from ``Y₀`` since it was factored, the same few call after call); its ``Z`` follows from ``Z`` by the
Woodbury identity, ``Z_c·x = Z·x − Z[:, aff]·K_c·(Z·x)[aff]`` with
``K_c = (I + Δ_c·Z[aff, aff])⁻¹·Δ_c`` and ``Δ_c = (Y_c − Y₀)[aff, aff]``, so copies with
different taps still iterate together: a small product for ``(Z·x)[aff]``, then one by ``Z``'s columns at the
iterated buses and at ``aff``, with ``−K_c·(Z·x)[aff]`` entering at ``aff``; a changed entry between a PQ bus and a
slack (a transformer at the substation) enters that copy's ``Y_ps·V_s``.

Each copy is one :class:`~powergrid.solvers.fast.FastSolver`, which keeps its own
state (warm start, taps) and derives its results; a copy goes to its own
Newton–Raphson (``FastSolver.flow``/``reflow``) instead when

- the net has PV buses, or the solver delegates to pandapower,
- its ``Ybus`` changed in its structure (a recompile) or on more than ``max_rank`` PQ buses,
- its injections are not finite, or the fixed point does not converge.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from powergrid.solvers.base import Injections, PowerFlowResult
from powergrid.solvers.blas_threads import one_blas_thread
from powergrid.solvers.fast import FastSolver

#: the fewest copies a :class:`BatchedSolver` solves by the fixed point (fewer: each copy's own Newton–Raphson): where
#: it pays on ``ieee34_3mg`` (CPU µs of flows per env-step, each copy's own / the fixed point: 71-75 / 71-74 at 14
#: copies, medians 73.5 / 69.7 at 16, 66-86 / 46-52 at 64; the full table in docs/performance-history.md,
#: *Since dcd202a*)
FIXED_POINT_FROM = 16

#: the fewest copies whose bus powers, relays' readings and results one pass derives below :data:`FIXED_POINT_FROM`
#: (fewer: each its own, which is cheaper: a pass costs ≈10-15 µs more than one copy's own on ``ieee34_3mg``, a copy's
#: own ≈2-9 µs)
ONE_PASS_FROM = 8

#: the fixed point's step that first extrapolates (:func:`_extrapolate`), then every third step (≥ 3: it needs three
#: residuals)
EXTRAPOLATE_FROM = 5


class BatchedSolver:
    """Solve the power flows of many :class:`FastSolver` copies of one network at once.

    ``max_iteration`` bounds the fixed-point iterations (a copy still above the tolerance
    then gets a Newton–Raphson solve); the tolerance is the copies' ``tolerance_mva``;
    ``max_rank`` bounds the buses whose admittances may differ from the factored ``Ybus`` (over all copies, since it was
    factored). With at least
    ``fixed_point_from`` copies (None: :data:`FIXED_POINT_FROM` when constructed) :meth:`flow`/:meth:`reflow` run the
    fixed point; with fewer, each copy's own Newton–Raphson (lightsim2grid's, as :meth:`FastSolver.flow`), the bus
    powers of at least ``one_pass_from`` copies (None: :data:`ONE_PASS_FROM` when constructed) from one sparse product
    per layout: then flows, readings and results are the same floats as each copy's own.
    """

    def __init__(self, solvers: Sequence[FastSolver], max_iteration: int = 60, max_rank: int = 32,
                 fixed_point_from: int | None = None, one_pass_from: int | None = None) -> None:
        if not solvers:
            raise ValueError("BatchedSolver needs at least one FastSolver copy")
        self.solvers = list(solvers)
        self.max_iteration = max_iteration
        self.max_rank = max_rank
        self.fixed_point_from = FIXED_POINT_FROM if fixed_point_from is None else fixed_point_from
        self.one_pass_from = ONE_PASS_FROM if one_pass_from is None else one_pass_from
        self.tolerance = min(s.params.tolerance_mva for s in self.solvers)
        first = self.solvers[0]
        self.pq, self.ref = first.pq.copy(), first.ref.copy()
        self._Ydata: np.ndarray | None = None
        self._checked: dict[int, Any] = {}  # id(copy) → its Ybus found to fit (a recompile makes a new one)
        self._layouts: dict[int, tuple[Any, int]] = {}  # id(copy) → (its flow matrix, its layout's index)
        self._layout_reps: list[tuple[FastSolver, Any]] = []  # one copy per layout, with its flow matrix then
        if self._batchable(first):
            self._factor(first)

    def __getstate__(self) -> dict[str, Any]:
        """The factored state as it is (``Z``, ``Y_ps``, ``Y₀``, the iterated buses ``live``, the tapped buses
        ``aff``), so a copy continues bit for bit; without the blocks of ``Z`` that :meth:`_stack` cuts (copies of it,
        remade on load) and the caches keyed by the copies' ids."""
        return {**self.__dict__, "_stacked": None, "_checked": {}, "_layouts": {}, "_layout_reps": []}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "_live" not in state:  # pickled before 7169acf, which iterated every PQ bus
            self._live = np.arange(len(self.pq))
        if self._Ydata is not None:
            self._stack()

    def _stack(self) -> None:
        """The blocks of ``Z`` that :meth:`_iterate` and :meth:`_low_rank` multiply by, for the current ``live``
        (``L``: the PQ buses it iterates) and ``aff`` (and each PQ bus's position in ``aff``): ``Z[L, L ∪ aff]``,
        ``Z[aff, L]``, ``Z[aff, aff]`` and, for the other PQ buses ``D``, ``Z[D, L ∪ aff]`` (``L ∪ aff``: ``L`` then
        ``aff``, a bus in both twice)."""
        Z, aff, live = self._Z, self._aff, self._live
        dead = np.setdiff1d(np.arange(len(self.pq)), live)
        self._dead_buses = self.pq[dead]
        self._aff_pos = np.full(len(self.pq), -1, np.int64)
        self._aff_pos[aff] = np.arange(len(aff))
        columns = np.concatenate((live, aff))
        self._stacked = Z[np.ix_(live, columns)], Z[np.ix_(aff, live)], Z[np.ix_(aff, aff)], Z[np.ix_(dead, columns)]

    def _batchable(self, s: FastSolver) -> bool:
        """Whether copy ``s`` can be solved by the fixed point at all (PQ buses only, the same bus types)."""
        return (s._delegate is None and not len(s.pv) and np.array_equal(s.pq, self.pq)
                and np.array_equal(s.ref, self.ref))

    def _factor(self, s: FastSolver) -> None:
        """``Z``, the slack coupling ``Y_ps`` and the structure of copy ``s``'s ``Ybus`` (``Y₀``); the iterated buses
        ``live`` start again from those coupled to a slack, and no bus is tapped (``aff``)."""
        self._Ydata = None
        self._checked = {}
        Y = sp.csc_matrix(s.Ybus)
        pq, ref = self.pq, self.ref
        try:
            Z = np.linalg.inv(Y[pq][:, pq].toarray())
        except np.linalg.LinAlgError:
            return
        self._Z = np.ascontiguousarray(Z)
        Yps = Y[pq][:, ref]
        self._Yps = Yps.toarray()
        # the PQ buses iterated (live: coupled to a slack, or where a copy's bus power has not been zero since
        # factored), those where a copy's Ybus has differed from Y₀ (aff), and the blocks of Z at them (_stack)
        self._live = np.flatnonzero(Yps.getnnz(axis=1))
        self._aff = np.zeros(0, np.int64)
        self._stack()
        self._Ydata, self._indices, self._indptr = s.Ybus.data.copy(), s.Ybus.indices.copy(), s.Ybus.indptr.copy()
        pos = np.full(Y.shape[0], -1, np.int64)  # a bus's position among the PQ buses (−1: slack)
        pos[pq] = np.arange(len(pq))
        self._col = np.repeat(np.arange(Y.shape[1]), np.diff(self._indptr))  # each stored entry's bus column
        self._pq_row, self._pq_col = pos[self._indices], pos[self._col]

    def _fits(self, s: FastSolver) -> bool:
        """Whether copy ``s`` is batchable with ``Y₀``'s structure (checked once per compiled ``Ybus`` of a copy)."""
        Y = s.Ybus
        if self._Ydata is None:
            return False
        if self._checked.get(id(s)) is Y and s._delegate is None:
            return True
        ok = (self._batchable(s) and Y.nnz == len(self._Ydata) and np.array_equal(Y.indices, self._indices)
              and np.array_equal(Y.indptr, self._indptr))
        if ok:
            self._checked[id(s)] = Y
        return ok

    def _copies(self, copies: Sequence[int] | None) -> list[FastSolver]:
        """The solvers of ``copies`` (all copies when None), in order."""
        return self.solvers if copies is None else [self.solvers[i] for i in copies]

    def _select(self, count: int, copies: Sequence[int] | None, what: str) -> list[FastSolver]:
        """:meth:`_copies`, checked against the ``count`` injections given for them."""
        solvers = self._copies(copies)
        if count != len(solvers):
            raise ValueError(f"BatchedSolver.{what}: {count} injections for {len(solvers)} copies")
        return solvers

    def solve(self, injections: Sequence[Injections], copies: Sequence[int] | None = None) -> list[PowerFlowResult]:
        """One power flow per copy (``injections[k]`` for ``solvers[copies[k]]``; all copies by default), in order:
        :meth:`flow` then :meth:`results`."""
        self.flow(injections, copies)
        return self.results(copies)

    def flow(self, injections: Sequence[Injections], copies: Sequence[int] | None = None) -> list[bool]:
        """Each copy's flow without its results, as :meth:`FastSolver.flow` leaves it (warm start, bus powers,
        convergence), so its :meth:`~FastSolver.probe` and :meth:`results` read it; True where it converged."""
        return self._flow(self._select(len(injections), copies, "flow"), injections, reuse=False)

    def reflow(self, injections: Sequence[Injections], copies: Sequence[int] | None = None) -> list[bool]:
        """:meth:`flow` again after tap moves, for the injections of each copy's last flow (unchanged since): their bus
        powers are reused, as :meth:`FastSolver.reflow` does."""
        return self._flow(self._select(len(injections), copies, "reflow"), injections, reuse=True)

    def results(self, copies: Sequence[int] | None = None) -> list[PowerFlowResult]:
        """The results of each copy's last flow (:meth:`FastSolver.result`), the converged copies with one layout
        derived in one pass (:meth:`FastSolver.results_of`)."""
        solvers = self._copies(copies)
        results: list[PowerFlowResult | None] = [None] * len(solvers)
        done = [k for k, s in enumerate(solvers) if s._converged and s._Sbus is not None]
        for ks in (ks for ks in self._by_layout(solvers, done) if len(ks) >= self.one_pass_from):
            members = [solvers[k] for k in ks]
            flows = members[0].results_of(members, np.array([s._V for s in members]),
                                          np.array([s._Sbus for s in members]), 0)
            for k, s, r in zip(ks, members, flows):
                r.iterations = s._iterations
                results[k] = r
        return [r if r is not None else s.result() for r, s in zip(results, solvers)]

    def probe(self, copies: Sequence[int], buses: tuple[int, ...], trafos: tuple[int, ...]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """:meth:`FastSolver.probe` of the converged last flows of ``copies`` in one pass: ``vm_pu`` at the net.bus
        rows ``buses`` (copies × buses) and the MW and Mvar into the net.trafo rows ``trafos`` at their LV ends
        (copies × trafos), the same floats; None when the copies do not share one layout or are fewer than
        :attr:`one_pass_from` (then probe each)."""
        solvers = self._copies(copies)
        if len(solvers) < self.one_pass_from:
            return None
        layouts = self._layout_of(solvers)
        if layouts[0] < 0 or layouts.count(layouts[0]) != len(layouts):
            return None
        first = solvers[0]
        pos, at, rows, n = first._probe_gather(buses, trafos)
        V = np.array([s._V for s in solvers])
        if not first._all_buses_on:
            V = np.concatenate((V, np.full((len(V), 1), np.nan)), axis=1)
        Vg = V[:, at]  # the voltages at the entries of the trafos' LV-end rows of M, at their LV buses, at ``buses``
        # each entry's product rounded as Python's complex product (no fused multiply-add), the entries of each row
        # summed in order as there (a shorter row adds the zero in column n)
        m, v = np.array([s._M.data[pos] for s in solvers]), Vg[:, :n]
        terms = np.zeros((len(solvers), n + 1), complex)
        terms.real[:, :n] = m.real * v.real - m.imag * v.imag
        terms.imag[:, :n] = m.real * v.imag + m.imag * v.real
        k = len(rows)
        current = np.zeros((len(solvers), k), complex)  # an out-of-service trafo has no entries: no flow
        for j in range(max((hi - lo for lo, hi in rows), default=0)):
            current += terms[:, [lo + j if lo + j < hi else n for lo, hi in rows]]
        S = Vg[:, n: n + k] * current.conj()
        return np.abs(Vg[:, n + k:]), S.real * first.base_mva, S.imag * first.base_mva

    def _flow(self, solvers: list[FastSolver], injections: Sequence[Injections], reuse: bool) -> list[bool]:
        """The copies' flows at the bus powers scattered from ``injections`` (or with ``reuse`` those of each copy's
        last flow): with :attr:`fixed_point_from` copies or more the fixed point over the copies that fit ``Y₀``,
        else each copy's own Newton–Raphson at bus powers from one product; every other copy its own flow. True where
        converged."""
        ok: list[bool | None] = [None] * len(solvers)
        if len(self.solvers) >= self.fixed_point_from:
            self._fixed_point(solvers, injections, reuse, ok)
        elif not reuse and len(solvers) >= self.one_pass_from:  # (a reflow: each copy at its last bus powers)
            for group in self._by_layout(solvers, range(len(solvers))):
                for k, S in zip(group, self._bus_powers(solvers, injections, group)):
                    ok[k] = solvers[k]._flow_at(S)
        return [done if done is not None else s.reflow(i) if reuse else s.flow(i)
                for done, s, i in zip(ok, solvers, injections)]

    def _by_layout(self, solvers: list[FastSolver], positions: Iterable[int]) -> list[list[int]]:
        """``positions`` in ``solvers`` grouped by the copies' layouts (:meth:`_layout_of`), each group in order;
        copies that delegate are left out."""
        positions = list(positions)
        groups: dict[int, list[int]] = {}
        for k, layout in zip(positions, self._layout_of([solvers[k] for k in positions])):
            if layout >= 0:
                groups.setdefault(layout, []).append(k)
        return list(groups.values())

    def _bus_powers(self, solvers: list[FastSolver], injections: Sequence[Injections], group: list[int]) -> np.ndarray:
        """The bus powers (pu, one contiguous row per copy) of the copies ``group`` (positions in ``solvers`` of one
        layout) from their ``injections``: the layout's scatter as one sparse product, the same floats as each copy's
        own (:meth:`FastSolver.flow`)."""
        injs, first = [injections[k] for k in group], solvers[group[0]]
        ns = len(injs[0].sgen_p_mw)
        x = np.empty((len(group), first._C.shape[1]), complex)  # as each copy's FastSolver._scatter fills it
        x.real[:, :ns], x.imag[:, :ns] = [i.sgen_p_mw for i in injs], [i.sgen_q_mvar for i in injs]
        x.real[:, ns:], x.imag[:, ns:] = [i.load_p_mw for i in injs], [i.load_q_mvar for i in injs]
        S = np.array([solvers[k].S_const for k in group])
        S += (first._C @ x.T).T
        return S

    def _fixed_point(self, solvers: list[FastSolver], injections: Sequence[Injections], reuse: bool,
                     ok: list[bool | None]) -> None:
        """:meth:`_flow`'s fixed point over the copies that fit ``Y₀``; sets ``ok[k]`` True for those it converged."""
        fits = [self._fits(s) for s in solvers]
        if not any(fits) and solvers and self._batchable(solvers[0]):
            self._factor(solvers[0])
            fits = [self._fits(s) for s in solvers]
        batch = [k for k, fit in enumerate(fits) if fit and not (reuse and solvers[k]._Sbus is None)]
        if batch and reuse:
            S_rows = np.array([solvers[k]._Sbus for k in batch])
        elif batch:  # (copies that fit Y₀ share its buses: rows of one length)
            groups = self._by_layout(solvers, batch)
            batch = [k for group in groups for k in group]
            S_rows = np.concatenate([self._bus_powers(solvers, injections, group) for group in groups])
            finite = np.isfinite(S_rows).all(axis=1)
            if not finite.all():  # those copies fail in their own flow
                batch = [k for k, good in zip(batch, finite.tolist()) if good]
                S_rows = S_rows[finite]
        if batch and S_rows[:, self._dead_buses].any():  # a bus power where the fixed point has not iterated
            self._live = np.union1d(self._live, np.flatnonzero(S_rows[:, self.pq].any(axis=0)))
            self._stack()
        if batch:
            # each copy's Ybus entries that differ from Y₀'s (a slack bus's own row is not in the PQ equations)
            diff = np.array([solvers[k].Ybus.data for k in batch]) - self._Ydata
            changed = np.flatnonzero((diff != 0) & (self._pq_row >= 0))
            copy, at = np.divmod(changed, diff.shape[1])
            values = diff.ravel()[changed]
            update = self._low_rank(copy, at, values, len(batch))
            if update is None:  # too many buses changed, or a singular update: only unchanged copies batch
                keep = np.setdiff1d(np.arange(len(batch)), copy)
                batch, S_rows = [batch[c] for c in keep.tolist()], S_rows[keep]
                copy, at, values, update = copy[:0], at[:0], values[:0], ()
        if batch:
            V_rows = np.array([solvers[k]._V for k in batch])
            b = -(self._Yps @ V_rows[:, self.ref].T)  # the slack's current into the PQ buses, (pq, copies)
            slack = self._pq_col[at] < 0  # a changed Y_ps entry (a transformer at the substation)
            if slack.any():
                c, a = copy[slack], at[slack]
                np.add.at(b, (self._pq_row[a], c), -values[slack] * V_rows[c, self._col[a]])
            V_rows, converged, iterations = self._iterate(V_rows, S_rows, b, *update)
            for col, k in enumerate(batch):
                if converged[col]:
                    s = solvers[k]
                    s._V, s._Sbus, s._iterations, s._converged = V_rows[col], S_rows[col], iterations, True
                    ok[k] = True

    def _layout_of(self, solvers: list[FastSolver]) -> list[int]:
        """Each copy's layout: a key shared by copies whose injections and results one pass derives
        (:meth:`FastSolver.same_layout`; −1 for a copy that delegates), checked once per compiled flow matrix of a
        copy; a recompiled representative clears what was checked."""
        if any(rep._M is not M for rep, M in self._layout_reps):
            self._layouts, self._layout_reps = {}, []
        known = self._layouts
        return [key[1] if (key := known.get(id(s))) is not None and key[0] is s._M and s._delegate is None
                else self._classify(s) for s in solvers]

    def _classify(self, s: FastSolver) -> int:
        """Copy ``s``'s layout (:meth:`_layout_of`), found among the representatives' or a new one."""
        if s._delegate is not None:
            return -1
        index = next((i for i, (rep, _) in enumerate(self._layout_reps) if rep.same_layout(s)), len(self._layout_reps))
        if index == len(self._layout_reps):
            self._layout_reps.append((s, s._M))
        self._layouts[id(s)] = (s._M, index)
        return index

    def _low_rank(self, copy: np.ndarray, at: np.ndarray, values: np.ndarray, n_copies: int
                  ) -> tuple[np.ndarray] | tuple[()] | None:
        """``(K,)``, ``K`` of shape ``(n_copies, m, m)`` (zero for an unchanged copy) for the copies' ``Ybus`` changes (copy
        ``copy[e]`` differs from ``Y₀`` by ``values[e]`` at data position ``at[e]``) over ``aff``, the ``m`` PQ buses
        where a copy's ``Ybus`` has differed from ``Y₀`` since it was factored; ``()`` when no copy changed between PQ
        buses; None when impossible."""
        inner = self._pq_col[at] >= 0  # entries between PQ buses (the others are slack coupling)
        rows, cols = self._pq_row[at[inner]], self._pq_col[at[inner]]
        if not rows.size:
            return ()
        pos = self._aff_pos
        if (pos[rows] < 0).any() or (pos[cols] < 0).any():
            aff = np.union1d(self._aff, np.union1d(rows, cols))
            if len(aff) > self.max_rank:
                return None
            self._aff = aff
            self._stack()
            pos = self._aff_pos
        Zaa = self._stacked[2]
        m = len(self._aff)
        D = np.zeros((n_copies, m, m), complex)
        D[copy[inner], pos[rows], pos[cols]] = values[inner]
        try:
            return (np.linalg.solve(np.eye(m) + D @ Zaa, D),)
        except np.linalg.LinAlgError:
            return None

    def _iterate(self, V_rows: np.ndarray, S_rows: np.ndarray, b: np.ndarray, K: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, int]:
        """Fixed-point iteration on the PQ voltages of each copy (row ``c`` of ``V_rows``, at the bus powers
        ``S_rows[c]``; column ``c`` of ``b`` and ``K[c]``); (voltages as new rows, converged per copy, iterations).

        After an update ``V' = Z_c·x`` with the currents ``x = conj(S/V) − Y_ps·V_s`` the PQ currents are
        ``Y_pp·V' + Y_ps·V_s = conj(S/V)``, so the mismatch at ``V'`` is ``V'·S/V − S`` (pu), of magnitude
        ``|conj(S/V)|·|V' − V|``, with no product by ``Y``; the loop always takes at least one step from the warm
        start. ``b = −Y_ps·V_s`` per copy; ``K`` is :meth:`_low_rank`'s (None: every copy has ``Y₀``'s PQ block), and
        ``Z_c·x = Z·x − Z[:, aff]·K_c·(Z·x)[aff]`` is one product by ``Z[L, L ∪ aff]`` after a small one by
        ``Z[aff, L]`` for ``(Z·x)[aff]``. Only the ``live`` buses ``L`` are iterated: at the others ``x`` is zero
        in every column (no bus power, no slack coupling), so their voltages do not enter ``Z·x`` and their mismatch
        is zero; they follow from the last ``x`` after the loop. The steps write into buffers made once per call
        (three for the steps' ``V' = Z_c·x`` and for the residuals ``V' − V``, in turn, as :func:`_extrapolate` reads
        them); the returned voltages are the last ``V'``.
        """
        Z_live, Z_aff, _, Z_dead = self._stacked
        live, n, k = self._live, len(self._live), len(V_rows)
        buses = self.pq[live]
        S_conj = np.conj(S_rows[:, buses].T, order="C")  # (buses × copies from here on)
        b = b[live]
        V = np.ascontiguousarray(V_rows[:, buses].T)
        s, t, V_x = np.empty_like(V), np.empty_like(V), np.empty_like(V)
        x = np.zeros((Z_live.shape[1], k), complex)  # x, then −K_c·(Z·x)[aff] (zero without K)
        y = np.empty((len(Z_aff), k), complex)
        step = np.empty(V.shape)
        gs = np.empty((3, n, k), complex)  # the last three steps' V', in turn
        F = np.empty((3, n, k), complex)  # the last three residuals V' − V, in the same turn
        it = 0
        with np.errstate(all="ignore"), one_blas_thread():
            if K is not None:
                K = -K
            while True:
                np.conjugate(V, out=t)
                np.divide(S_conj, t, out=s)  # conj(S/V)
                np.add(s, b, out=x[:n])
                if K is not None:
                    np.matmul(Z_aff, x[:n], out=y)
                    np.matmul(K, y.T[:, :, None], out=x[n:].T[:, :, None])
                slot = (it - EXTRAPOLATE_FROM) % 3  # (f₀, f₁, f₂ in slots 0, 1, 2 when it extrapolates)
                g = np.matmul(Z_live, x, out=gs[slot])
                it += 1
                f = F[slot]
                np.subtract(g, V, out=f)
                np.multiply(f, s, out=t)
                np.abs(t, out=step)  # each bus's mismatch at g
                if not (step >= self.tolerance).any() or it == self.max_iteration:  # (a NaN copy fails alone, in ok)
                    V = g
                    break
                if slot == 2 and it >= EXTRAPOLATE_FROM:  # F holds f₀, f₁, f₂ in order
                    V = _extrapolate(g, F, V_x)
                else:
                    V = g
            V_dead = Z_dead @ x
        V_rows = V_rows.copy()  # each copy's row: its own contiguous state, one copy for all
        V_rows[:, buses] = V.T
        V_rows[:, self._dead_buses] = V_dead.T
        return V_rows, (step.max(axis=0) < self.tolerance) & np.isfinite(V_rows).all(axis=1), it


def _extrapolate(g: np.ndarray, F: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Where each copy's plain iteration from ``g`` (buses × copies) tends if its residuals shrink by a real ratio
    ``r`` every two steps: with its last three ``F`` (f₀, f₁, f₂ = ``g`` − its input) the steps after ``g`` are
    ``r·f₁, r·f₂, r²·f₁, …``, so ``g + r/(1 − r)·(f₁ + f₂)`` (into ``out``); ``r`` fitted per copy from ``f₂ ≈ r·f₀``
    (least squares over its buses), no jump (``g``) where ``r`` is not in (0, 0.95) (growing, flipping, not finite)."""
    A = F.view(float)  # (real and imaginary parts side by side)
    q = np.ones(A.shape[1]) @ (A[0] * A[::2])  # per column of A: Σ f₀·f₀, Σ f₀·f₂ over the buses
    dots = q[:, ::2] + q[:, 1::2]  # Re f̄₀·f₀, Re f̄₀·f₂ per copy
    r = dots[1] / dots[0]
    c = r / (1.0 - r)
    c[~((r > 0.0) & (r < 0.95))] = 0.0
    np.add(F[1], F[2], out=out)
    out *= c
    out += g
    return out
