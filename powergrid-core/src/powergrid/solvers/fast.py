"""A fast AC power-flow solver: pandapower's admittance matrix, compiled once, solved many times.

At construction :class:`FastSolver` runs ``pandapower.runpp`` once on the net and
keeps what that run leaves in the net's internal power-flow case
(``net._ppc["internal"]``): the bus admittance matrix ``Ybus``, the branch
matrices ``Yf``/``Yt``, the slack/PV/PQ bus sets, the converged voltages and the
bus power vector ``Sbus``. ``Sbus`` is split into a constant part (everything
that is not a load or a static generator: PV generators, wards, storage, …) and
the per-step part, which is a scatter of the load and sgen injections onto the
internal buses. Each :meth:`FastSolver.solve` then

1. builds ``Sbus`` (one sparse incidence matrix–vector product),
2. runs Newton–Raphson warm-started from the previous step's voltages, with
   lightsim2grid's KLU solver (``backend="lightsim2grid"``, ``NRSing_KLU``:
   every ext_grid bus is a fixed-voltage slack as in pandapower, no distributed
   slack) or a numpy/scipy Newton–Raphson (``backend="numpy"``, sparse Jacobian
   with a precomputed pattern + SuperLU). lightsim2grid runs it inside an ``LSGrid``
   built on this ``Ybus`` (:class:`~powergrid.solvers.newton.GridNewton`), which keeps KLU's analysis of the Jacobian
   from one solve to the next; a net with several slacks uses the bare algorithm object,
   which redoes it every call;
   when that fails or ends with a bus below :data:`LOW_VOLTAGE_PU` (the low-voltage solution a warm start
   can fall into after a step near voltage collapse) it runs once more from the compile's voltages,
3. derives line/trafo flows and loadings and the slack injections exactly as
   pandapower's result functions do (``|S|/(√3·|V|·V_base)``, ``max`` over the
   two ends, ``max_i_ka·df·parallel``, ``trafo_loading="current"``), from one
   stacked sparse matrix–vector product.

Results match ``pandapower.runpp`` to the Newton–Raphson tolerance (≈1e-9 pu).
A whole step (Sbus, ~3 NR iterations, results) takes ≈55–150 µs with lightsim2grid and
≈350–600 µs with numpy on the 13–124-bus templates, against 20–50 ms for runpp
(``benchmarks/bench_solver.py``).

Supported: buses (also out of service, and merged by closed bus–bus switches),
lines, two- and three-winding transformers (taps, phase shift), impedances,
switches, constant-power loads and sgens (``scaling`` honoured), shunts, wards, xwards,
storage, motors and asymmetric loads/sgens (as pandapower's balanced constant
power), ext_grids (one per bus) and PV generators (``gen``; reactive limits are
not enforced — pandapower's default ``enforce_q_lims=False`` does not either).

Not supported — the solver warns once and delegates the whole net to
:class:`~powergrid.solvers.pandapower_solver.PandapowerSolver`: voltage-dependent
loads (``const_z_*``/``const_i_*`` percent ≠ 0), FACTS (svc, tcsc, ssc, vsc),
DC elements (dcline, bus_dc, line_dc…), slack generators
(``gen.slack``), several ext_grids or a generator on one slack bus.

Tap changes: :meth:`FastSolver.set_trafo_tap` patches the four admittance entries of
that transformer's branch in ``Ybus`` (and in the flow matrix) in place. The branch
values of every tap position, ``r, x, g, b``, ratio and shift, come from pandapower's own
transformer model (``_calc_branch_values_from_trafo_df``, evaluated once per transformer
for all its positions on first use; one position per call for a transformer whose steps are
in ``net.trafo_characteristic_table``), and the 2×2 branch admittances from pypower's
``branch_vectors``. A tap move costs a few µs: the new position is kept in the solver and
written to ``net.trafo.tap_pos`` when someone next reads :attr:`FastSolver.net` (pandas writes cost
30–80 µs each), and the next solve equals ``runpp`` at the new tap (tested on every IEEE template).
That solve starts from the last voltages with the buses the transformer feeds (its LV side, when cutting
the transformer separates them from the slack) scaled by its change of no-load ratio ``−Ytf/Ytt``:
after a regulator move on ``ieee34_3mg`` Newton–Raphson then takes 2.2 iterations instead of 3.1.
A regulator's control loop (:class:`~powergrid.controllers.TapControl`) solves with :meth:`FastSolver.flow` and
:meth:`FastSolver.reflow`, its relays read :meth:`FastSolver.probe` (the few values they need, the same floats as
the result's) and the full result is derived once per step, at the final taps.

Topology: :meth:`topology_changed` (called by ``set_shunt_step``, or by hand after
editing switches/in_service flags) recompiles with one ``pandapower.runpp`` at the
net's stored injections: 20–45 ms on the templates, the time of several hundred fast
solves (when its flat start fails, as on a long feeder at high regulator taps, a second run
starts from the last flow's voltages). The next step starts from that run's voltages.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import attrs
import numpy as np
import pandapower as pp
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

try:  # scipy's CSR matrix–vector kernel, the one ``A @ x`` runs after ≈2 µs of dispatch (private since scipy 1.8)
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
except ImportError:  # pragma: no cover - a scipy that moved it: ``A @ x``
    _csr_matvec = None

from powergrid.params import choice, integer, quantity
from powergrid.slacks import slack_flags
from powergrid.solvers import newton
from powergrid.solvers.base import Injections, PowerFlowResult, PowerFlowSolver
from powergrid.solvers.pandapower_solver import PandapowerParams, PandapowerSolver

_SQRT3 = math.sqrt(3.0)
_WARNED: set[str] = set()

#: Element tables the fast path cannot model (in-service rows make the solver delegate).
UNSUPPORTED_TABLES = ("dcline", "svc", "tcsc", "ssc", "vsc", "b2b_vsc", "bus_dc", "line_dc",
                      "source_dc", "load_dc")


#: The lowest bus voltage (pu) the fast solver takes from a warm-started Newton–Raphson without a second run from the
#: compile's voltages (:meth:`FastSolver._newton`). The constant-power flow equations have a high- and a low-voltage
#: solution; behind an impedance Z∠θ a source E feeds a load of angle φ at most at the nose voltage
#: E/√(2·(1 + cos(θ − φ))) ≥ E/2, so a bus below 0.5 pu of a 1 pu source is on the low branch there. A trapped
#: ``ieee34_3mg`` flow sat at 0.11-0.13 pu (review r47a F2); the lowest bus of the shipped configs' converged flows
#: under random and extreme actions is 0.908 pu (r47a q4). Below the bound the second run decides: a flow really that
#: low converges there too.
LOW_VOLTAGE_PU = 0.5

#: What a compile reads from the internal case runpp leaves (``net._ppc["internal"]``).
_COMPILED_CASE = frozenset(("Ybus", "Yf", "Yt", "ref", "pv", "pq", "bus", "gen", "V", "Sbus", "branch_is"))


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


@attrs.frozen
class FastParams:
    backend: str = choice(("auto", "lightsim2grid", "numpy"), "auto",
                          doc="Newton–Raphson backend; auto = lightsim2grid when importable, else numpy")
    max_iteration: int = integer(30, ge=1, doc="Newton–Raphson iterations before a step counts as diverged")
    tolerance_mva: float = quantity("MVA", 1e-8, gt=0,
                                    doc="largest power mismatch, per unit of sn_mva as in pandapower.runpp")


def unsupported_features(net: Any) -> list[str]:
    """What in ``net`` the fast path cannot model (empty when it can solve the net itself)."""
    found = []
    for table in UNSUPPORTED_TABLES:
        df = net.get(table) if hasattr(net, "get") else None
        if df is not None and len(df):
            on = df["in_service"].to_numpy(bool) if "in_service" in df else np.ones(len(df), bool)
            if on.any():
                found.append(f"{table} ({int(on.sum())} in service)")
    load = net.load
    if len(load):
        on = load["in_service"].to_numpy(bool)
        for col in [c for c in load.columns if str(c).startswith("const_") and str(c).endswith("percent")]:
            vals = load[col].fillna(0).to_numpy(float)
            if np.any(on & (vals != 0)):
                found.append(f"voltage-dependent loads ({col} ≠ 0)")
                break
    if len(net.gen) and "slack" in net.gen and (slack_flags(net.gen) & net.gen["in_service"].to_numpy(bool)).any():
        found.append("slack generators (gen.slack=True)")
    return found


@attrs.define
class _TapTable:
    """One transformer's branch admittances ``[Yff, Yft, Ytf, Ytt]`` (pu) per tap position from ``lo``,
    the position in use, the (data array, entry positions, which of the four) triples to patch, the internal
    buses fed through it (its LV side cut off from every slack without it; None when it is not a cut) and its two
    internal buses."""

    lo: int
    Y: np.ndarray
    pos: int
    targets: list
    fed: np.ndarray | None
    buses: tuple[int, int]
    _steps: dict[tuple[int, int], tuple[Any, list[np.ndarray]]] = attrs.field(factory=dict)

    def step_to(self, pos: int) -> tuple[Any, list[np.ndarray]]:
        """A move from :attr:`pos` to ``pos``: the change of the no-load voltage ratio ``−Ytf/Ytt`` (new over old)
        and, per target, the increments of its entries (new minus old admittances, pu); computed once per (from, to)
        pair of positions."""
        step = self._steps.get((self.pos, pos))
        if step is None:
            now, new = self.Y[self.pos - self.lo], self.Y[pos - self.lo]
            delta = new - now
            step = self._steps[(self.pos, pos)] = (new[2] * now[3] / (now[2] * new[3]),
                                                   [delta[which] for _, _, which in self.targets])
        return step


class _Origin(NamedTuple):
    """What :meth:`FastSolver.restart` returns to: the compiled ``Ybus``, flow-matrix and (numpy backend) Newton
    matrix entries, the transformers' tap positions they stand for (per net.trafo row, NaN without a tap changer) and
    whether that compile is the solver's first (at construction; later ones are recompiles)."""

    Ybus: np.ndarray
    M: np.ndarray
    newton_Y: np.ndarray | None
    taps: np.ndarray
    first: bool


def all_finite(x: np.ndarray) -> bool:
    """Whether every entry of ``x`` is finite (``np.isfinite(x).all()`` in half its ≈1 µs on small arrays)."""
    return int(np.count_nonzero(np.isfinite(x))) == x.size


def _matvec(A: sp.csr_matrix, x: np.ndarray) -> np.ndarray:
    """``A @ x`` for a complex128 CSR matrix and vector: the same kernel and floats, without scipy's dispatch."""
    return _csr_product(A.shape, A.indptr, A.indices, A.data, x)


def _csr_product(shape: tuple[int, int], indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, x: np.ndarray
                 ) -> np.ndarray:
    """The complex128 CSR matrix ``(data, indices, indptr)`` of ``shape`` times the vector ``x``: scipy's kernel."""
    if _csr_matvec is None or x.shape != (shape[1],):  # (a wrong length: scipy's error, not a read past x)
        return sp.csr_matrix((data, indices, indptr), shape=shape) @ x
    y = np.zeros(shape[0], np.complex128)
    _csr_matvec(shape[0], shape[1], indptr, indices, data, x, y)
    return y


def _positions(A: sp.spmatrix, ij: list[tuple[int, int]], *, csc: bool) -> np.ndarray:
    """Positions in ``A.data`` of the stored entries ``(row, col)`` of a CSC or CSR matrix with sorted indices."""
    out = []
    for r, c in ij:
        major, minor = (c, r) if csc else (r, c)
        lo, hi = A.indptr[major], A.indptr[major + 1]
        at = lo + int(np.searchsorted(A.indices[lo:hi], minor))
        if at >= hi or A.indices[at] != minor:
            raise KeyError(f"no stored entry at {(r, c)}")
        out.append(at)
    return np.array(out, np.int64)


class FastSolver(PowerFlowSolver):
    """AC power flow on a compiled ``Ybus`` with a warm-started Newton–Raphson (lightsim2grid KLU or numpy)."""

    name = "fast"
    Params = FastParams

    def __init__(self, net: Any, params: FastParams | None = None) -> None:
        self._unsynced_taps: dict[int, int] = {}
        super().__init__(net, params or FastParams())
        self._delegate: PandapowerSolver | None = None
        self.backend = self._choose_backend(self.params.backend)
        reasons = unsupported_features(net)
        if not reasons:
            reasons = self._compile()
        if reasons:
            self._delegate_to_pandapower(reasons)

    @property
    def net(self) -> Any:
        """The pandapower net, with the tap positions :meth:`set_trafo_tap` moved written to ``net.trafo.tap_pos``."""
        if self._unsynced_taps:
            trafo = self._net.trafo
            col = trafo.columns.get_loc("tap_pos")
            for row, position in self._unsynced_taps.items():
                trafo.iat[row, col] = position
            self._unsynced_taps.clear()
        return self._net

    @net.setter
    def net(self, net: Any) -> None:
        self._net = net
        self._unsynced_taps.clear()

    # ----------------------------------------------------------------- setup
    @staticmethod
    def _choose_backend(wanted: str) -> str:
        if wanted == "numpy":
            return "numpy"
        if newton.LS_CLASS is not None:
            return "lightsim2grid"
        if wanted == "lightsim2grid":
            raise ImportError("FastSolver backend 'lightsim2grid' requested but lightsim2grid cannot be imported "
                              f"({newton.LS_IMPORT_ERROR}); install powergrid-core[fast] or use backend: numpy")
        _warn_once("FastSolver: lightsim2grid is not importable "
                   f"({newton.LS_IMPORT_ERROR}); falling back to the numpy/scipy Newton–Raphson backend "
                   "(≈10× slower than lightsim2grid, which has wheels for Linux x86-64, macOS arm64 and "
                   "Windows x86-64).")
        return "numpy"

    def _delegate_to_pandapower(self, reasons: list[str]) -> None:
        _warn_once("FastSolver: the network has features the fast path does not support ("
                   + "; ".join(reasons) + "); delegating every solve of this net to pandapower.runpp (slow).")
        self.backend = "pandapower"
        self.unsupported = reasons
        self._delegated = PowerFlowResult.failed(*self.shape)  # the result of the last flow
        self._delegate = PandapowerSolver(self.net, PandapowerParams(
            max_iteration=self.params.max_iteration, tolerance_mva=self.params.tolerance_mva))

    def _compile(self, warm: tuple[np.ndarray, np.ndarray] | None = None) -> list[str]:
        """Run pandapower once and build every index array. Returns reasons to delegate (empty if fine).

        ``warm``: voltages (pu, degrees per net.bus row) to start that run from when its flat start fails (a recompile
        passes the last flow's: on a long feeder at high regulator taps the flat start fails)."""
        from pandapower.pypower.idx_brch import F_BUS, T_BUS
        from pandapower.pypower.idx_bus import BASE_KV, PD, QD, VA
        from pandapower.pypower.idx_gen import GEN_BUS, GEN_STATUS, VG

        net, p = self.net, self.params
        converged, error = False, None
        for start in [{}] + ([{"init_vm_pu": warm[0], "init_va_degree": warm[1]}] if warm is not None else []):
            try:
                pp.runpp(net, algorithm="nr", max_iteration=p.max_iteration, tolerance_mva=p.tolerance_mva,
                         numba=False, init="auto", **start)
            except (pp.powerflow.LoadflowNotConverged, np.linalg.LinAlgError, FloatingPointError) as exc:
                error = exc
                continue  # the compiled case is still there; without a converged run, start later solves flat
            converged = True
            break
        ppc = net.get("_ppc") or {}
        it = ppc.get("internal") or {}
        if not _COMPILED_CASE <= it.keys():  # (runpp stopped before its Newton-Raphson: e.g. a zero branch impedance)
            why = f" ({type(error).__name__}: {error})" if error is not None else ""
            return [f"pandapower could not build the base power-flow case{why}"]
        base = float(ppc["baseMVA"])
        nb = it["Ybus"].shape[0]
        ref = np.asarray(it["ref"], np.int64)
        pv = np.asarray(it["pv"], np.int64)
        pq = np.asarray(it["pq"], np.int64)

        # --- slack buses: one ext_grid each, nothing else generating there
        gen_i = it["gen"]
        on = gen_i[:, GEN_STATUS] > 0
        gbus = gen_i[on, GEN_BUS].real.astype(np.int64)
        eg = net.ext_grid
        lookup = np.asarray(net._pd2ppc_lookups["bus"], np.int64)

        def internal(bus_ids: np.ndarray) -> np.ndarray:
            idx = lookup[np.asarray(bus_ids, np.int64)]
            return np.where((idx >= 0) & (idx < nb), idx, -1)

        eg_bus = internal(eg["bus"].to_numpy()) if len(eg) else np.zeros(0, np.int64)
        eg_on = eg["in_service"].to_numpy(bool) & (eg_bus >= 0) if len(eg) else np.zeros(0, bool)
        reasons = []
        if len(np.unique(eg_bus[eg_on])) != eg_on.sum():
            reasons.append("several ext_grids on one bus")
        if any(np.sum(gbus == r) != 1 for r in ref) or not set(ref.tolist()) <= set(eg_bus[eg_on].tolist()):
            reasons.append("a generator on a slack bus, or a slack that is not an ext_grid")
        if reasons:
            return reasons

        # --- admittances
        self.base_mva = base
        self.Ybus = sp.csc_matrix(it["Ybus"], dtype=np.complex128)
        self.Ybus.sort_indices()
        self.nb, self.ref, self.pv, self.pq = nb, ref, pv, pq
        self._ref32, self._pv32, self._pq32 = ref.astype(np.int32), pv.astype(np.int32), pq.astype(np.int32)
        self._slack_w = np.zeros(nb)
        self._slack_w[ref] = 1.0
        ibus = it["bus"]

        # --- starting voltages: the converged base case, else a flat start with the set points
        if converged and np.all(np.isfinite(it["V"])):
            V0 = np.asarray(it["V"], np.complex128).copy()
        else:
            V0 = np.ones(nb, np.complex128)
            V0[gbus] = gen_i[on, VG].real * np.exp(1j * np.deg2rad(ibus[gbus, VA].real))
        self.V_base = V0
        self._V = V0.copy()
        self._Sbus: np.ndarray | None = None  # the bus powers of the last flow (pu), for :meth:`reflow`
        self._converged, self._iterations = False, 0  # of the last flow

        # --- injections: Sbus = S_const + C @ [sgen p+jq, load p+jq]  (C: scaling/sn_mva, minus for loads)
        bus_in = internal(net.bus.index.to_numpy())
        self.bus_map = bus_in  # net.bus row -> internal bus, -1 when out of service
        self._bus_map_ext = np.where(bus_in >= 0, bus_in, nb)  # index nb of the padded V is NaN

        def incidence(df: Any, sign: float) -> sp.csr_matrix:
            if not len(df):
                return sp.csr_matrix((nb, 0))
            b = internal(df["bus"].to_numpy())
            w = sign * df["scaling"].to_numpy(float) * df["in_service"].to_numpy(bool) / base
            keep = (b >= 0) & (w != 0)
            return sp.csr_matrix((w[keep], (b[keep], np.flatnonzero(keep))), shape=(nb, len(df)))

        ns = len(net.sgen)
        # complex (w + 0j: the product scipy would form from the real matrix, without converting it at each call)
        self._C = sp.csr_matrix(sp.hstack([incidence(net.sgen, 1.0), incidence(net.load, -1.0)]), dtype=np.complex128)
        self._x = np.zeros(ns + len(net.load), np.complex128)  # the injection vector, rewritten by _scatter
        self._x_parts = (self._x.real[:ns], self._x.imag[:ns], self._x.real[ns:], self._x.imag[ns:])
        s_var = self._scatter(net.load["p_mw"].to_numpy(float), net.load["q_mvar"].to_numpy(float),
                              net.sgen["p_mw"].to_numpy(float), net.sgen["q_mvar"].to_numpy(float))
        S_const = np.asarray(it["Sbus"], np.complex128) - s_var
        # Sbus at a slack bus is whatever pandapower left there; rebuild it from the bus demand
        S_const[ref] = -(ibus[ref, PD].real + 1j * ibus[ref, QD].real) / base - s_var[ref]
        self.S_const = S_const

        # --- flows: one stacked matrix M; M @ V = pu currents at [from/hv ends of the in-service lines
        #     and trafos, their to/lv ends, the ext_grid buses (Ybus rows)]
        Yf = sp.csr_matrix(it["Yf"], dtype=np.complex128)
        Yt = sp.csr_matrix(it["Yt"], dtype=np.complex128)
        branch = ppc["branch"]
        branch_is = np.asarray(it["branch_is"], bool)
        pos = np.cumsum(branch_is) - 1  # ppc branch row -> row of Yf / Yt
        kv = np.concatenate((ibus[:, BASE_KV].real, [np.nan]))  # index -1: out-of-service bus
        lookups = net._pd2ppc_lookups["branch"]
        from_rows, to_rows, f_bus, t_bus, cfs, cts = [], [], [], [], [], []
        self._flow: dict[str, dict[str, Any]] = {}
        offset = 0
        for kind, df in (("line", net.line), ("trafo", net.trafo)):
            n = len(df)
            rows = np.arange(*lookups[kind]) if n and kind in lookups else np.zeros(0, np.int64)
            assert len(rows) == n, f"{kind}: {len(rows)} ppc branch rows for {n} elements"
            is_ = branch_is[rows]
            fb = branch[rows, F_BUS].real.astype(np.int64)
            tb = branch[rows, T_BUS].real.astype(np.int64)
            fb = np.where((fb >= 0) & (fb < nb), fb, -1)
            tb = np.where((tb >= 0) & (tb < nb), tb, -1)
            if kind == "line":
                i_max = df["max_i_ka"].to_numpy(float) * df["df"].to_numpy(float) * df["parallel"].to_numpy(float)
                # pandapower: loading = |S|/(|V|·kV_bus·√3) / i_max · 100 = |I_pu| · sn_mva/(kV_bus·√3·i_max) · 100
                with np.errstate(divide="ignore"):
                    cf = base * 100.0 / (kv[fb] * _SQRT3 * i_max)
                    ct = base * 100.0 / (kv[tb] * _SQRT3 * i_max)
                zero_rating = i_max == 0
            else:  # pandapower's trafo_loading="current" (runpp's default, the one used here):
                # max(|I_hv| in kA · vn_hv_kv, |I_lv| · vn_lv_kv) · √3 / sn_mva · 100 / parallel / df
                sn, par, dfac = df["sn_mva"].to_numpy(float), df["parallel"].to_numpy(float), df["df"].to_numpy(float)
                cf = base * df["vn_hv_kv"].to_numpy(float) * 100.0 / (kv[fb] * sn * par * dfac)
                ct = base * df["vn_lv_kv"].to_numpy(float) * 100.0 / (kv[tb] * sn * par * dfac)
                zero_rating = np.zeros(n, bool)
            sel = np.flatnonzero(is_)
            # out-of-service branch: pandapower reports 0 flow and loading 0/|V| (NaN at a dead bus)
            template = np.where((fb < 0) | (tb < 0), np.nan, 0.0)
            template[zero_rating & ~np.isnan(template)] = np.inf
            self._flow[kind] = {"n": n, "sel": sel, "template": template, "all": len(sel) == n,
                                "part": slice(offset, offset + len(sel))}
            offset += len(sel)
            from_rows.append(Yf[pos[rows[sel]]])
            to_rows.append(Yt[pos[rows[sel]]])
            f_bus.append(fb[sel])
            t_bus.append(tb[sel])
            cfs.append(cf[sel])
            cts.append(ct[sel])
        self._k = offset
        self._cf, self._ct = np.concatenate(cfs), np.concatenate(cts)
        self._zero_rating = np.flatnonzero(np.isinf(self._cf))
        self._f_bus = np.concatenate(f_bus)
        self._t_bus = np.concatenate(t_bus)
        self._ppc_trafo0 = int(lookups["trafo"][0]) if len(net.trafo) else 0
        self._taps: dict[int, _TapTable] = {}
        self._patched = False  # Ybus/_M/V_base hold tap moves patched in place (or a pickled copy of such)
        self._eg_on = eg_on
        self._eg_all_on = bool(eg_on.all())
        self._eg_bus = np.where(eg_on, eg_bus, 0)
        Yr = sp.csr_matrix(self.Ybus)[self._eg_bus]
        self._M = sp.csr_matrix(sp.vstack(from_rows + to_rows + [Yr]), shape=(2 * offset + len(eg_bus), nb),
                                dtype=np.complex128)
        self._M.sort_indices()
        self._all_buses_on = bool(np.all(bus_in >= 0))
        # for _results: the bus at every row of M, the current-to-loading factors of both ends side by side (a zero
        # rating as 0, set to inf afterwards: no inf·0), and per kind (line, trafo) where its rows sit
        self._ends = np.concatenate((self._f_bus, self._t_bus, self._eg_bus))
        self._cfct = np.nan_to_num(np.concatenate((self._cf, self._ct)), posinf=0.0)
        # the MVA base and the degrees per radian as arrays (a ufunc is slower with a Python float, same floats)
        self._base_ends = np.full(len(self._ends), base + 0j)
        self._degrees = np.full(len(bus_in), 180 / np.pi)
        self._parts = [(fl["part"], None if fl["all"] else (fl["sel"], fl["template"], fl["n"]))
                       for fl in (self._flow["line"], self._flow["trafo"])]
        tr = self._flow["trafo"]
        self._lv = (slice(offset + tr["part"].start, offset + tr["part"].stop), None if tr["all"] else (tr["sel"], tr["n"]))
        self._probes: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple] = {}  # probe's gathers by its arguments
        self._block: tuple[np.ndarray, np.ndarray] | None = None  # _currents_of's structure for the most copies yet

        self._backends()
        self._compiled_taps = net.trafo["tap_pos"].to_numpy(float).copy()  # (NaN: no tap changer)
        self._origin = _Origin(self.Ybus.data.copy(), self._M.data.copy(),
                               None if self._nr is None else self._nr.Y.data.copy(), self._compiled_taps,
                               not hasattr(self, "_origin"))
        self.shape = (len(net.bus), len(net.line), len(net.trafo), len(net.ext_grid))
        self.unsupported: list[str] = []
        return []

    def _backends(self) -> None:
        """Build the Newton–Raphson backend on :attr:`Ybus` (its generators' voltages from :attr:`V_base`)."""
        self._ls = self._grid = None
        if self.backend == "lightsim2grid":
            try:
                self._grid = newton.GridNewton(self.Ybus, self.ref, self.pv, self.pq, self.V_base)
            except ValueError:  # several slacks…: the bare algorithm object
                self._ls = newton.LS_CLASS()
        self._nr = newton.NumpyNewton(self.Ybus, self.pv, self.pq) if self.backend == "numpy" else None

    def _scatter(self, load_p: np.ndarray, load_q: np.ndarray, sgen_p: np.ndarray, sgen_q: np.ndarray) -> np.ndarray:
        """The bus powers of the loads and sgens (pu) from their P (MW) and Q (Mvar)."""
        s_p, s_q, l_p, l_q = self._x_parts
        s_p[...], s_q[...], l_p[...], l_q[...] = sgen_p, sgen_q, load_p, load_q
        return _matvec(self._C, self._x)

    # ------------------------------------------------------------------ solve
    def solve(self, injections: Injections) -> PowerFlowResult:
        self.flow(injections)
        return self.result()

    def resolve(self, injections: Injections) -> PowerFlowResult:
        """:meth:`solve` again for the injections of the last solve (``injections``, unchanged since) after tap moves:
        the bus powers of that solve are reused (:meth:`reflow`)."""
        self.reflow(injections)
        return self.result()

    def flow(self, injections: Injections) -> bool:
        """Newton–Raphson for ``injections`` without deriving the results; True when it converged.

        :meth:`result` then derives the full result (``flow`` then ``result`` is :meth:`solve`) and :meth:`probe`
        reads the few values a regulator's relay needs (:class:`~powergrid.controllers.TapControl` moves taps and
        re-solves on those and derives the result once, at the final taps)."""
        if self._delegate is not None:
            self._delegated = self._delegate.solve(injections)
            return self._delegated.converged
        inj = injections
        # a wrong array length is a caller's bug and raises ValueError; NaN/inf values fail the step
        return self._flow_at(self.S_const + self._scatter(inj.load_p_mw, inj.load_q_mvar, inj.sgen_p_mw, inj.sgen_q_mvar))

    def _flow_at(self, Sbus: np.ndarray) -> bool:
        """:meth:`flow` at the bus powers ``Sbus`` (pu, a contiguous array the solver keeps), as :meth:`flow` and a
        :class:`~powergrid.solvers.batched.BatchedSolver` compute them; True when it converged (NaN/inf powers fail).
        Not for a solver that delegates to pandapower (its compiled state is not its flow's)."""
        if not all_finite(Sbus):
            self._Sbus = None
            return self._fail()
        self._Sbus = Sbus
        return self._newton(Sbus)

    def reflow(self, injections: Injections) -> bool:
        """:meth:`flow` again for the injections of the last flow (``injections``, unchanged since) after tap moves,
        as a regulator's control loop does: the bus powers of that flow are reused."""
        if self._delegate is not None or self._Sbus is None:
            return self.flow(injections)
        return self._newton(self._Sbus)

    def result(self) -> PowerFlowResult:
        """The results of the last :meth:`flow` or :meth:`reflow`, at the taps of that flow (derive them before moving
        a tap)."""
        if self._delegate is not None:
            return self._delegated
        if not self._converged:
            return PowerFlowResult.failed(*self.shape)
        return self._results(self._V, self._Sbus, self._iterations)

    def probe(self, buses: tuple[int, ...], trafos: tuple[int, ...]) -> tuple[list[float], list[float], list[float]]:
        """``(vm_pu, trafo_p_lv_mw, trafo_q_lv_mvar)`` of :meth:`result` at the net.bus rows ``buses`` and the
        net.trafo rows ``trafos`` (pu, MW, Mvar; the same values), without deriving the rest of the result (≈4 µs
        against ≈15 µs on ``ieee34_3mg``). The last flow must have converged."""
        if self._delegate is not None:
            r = self._delegated
            return (r.vm_pu[list(buses)].tolist(), r.trafo_p_lv_mw[list(trafos)].tolist(),
                    r.trafo_q_lv_mvar[list(trafos)].tolist())
        pos, at, rows, n = self._probe_gather(buses, trafos)
        V = self._V if self._all_buses_on else np.append(self._V, np.nan)
        Vg = V[at]  # the voltages at the entries of the trafos' LV-end rows of M, at their LV buses, at ``buses``
        # each LV-end current: the row of M times V summed in order in Python complex arithmetic, that of scipy's CSR
        # product in _results; its power by numpy's complex product as there (its SIMD loop rounds differently from a
        # scalar one), the scaling to MW and Mvar in Python (a product with base + 0j is exact on each part)
        m, v = self._M.data[pos].tolist(), Vg[:n].tolist()
        current = []
        for lo, hi in rows:
            i = 0j
            for j in range(lo, hi):
                i += m[j] * v[j]
            current.append(i.conjugate())
        k, base = len(rows), self.base_mva
        S = (Vg[n: n + k] * np.array(current)).tolist()
        return np.abs(Vg[n + k:]).tolist(), [s.real * base for s in S], [s.imag * base for s in S]

    def _probe_gather(self, buses: tuple[int, ...], trafos: tuple[int, ...]
                      ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]], int]:
        """For :meth:`probe`: the positions in ``M.data`` of the entries of the trafos' LV-end rows of ``M``; the
        internal buses of those entries, then of the trafos' LV ends, then of ``buses`` (``nb`` when out of service);
        each trafo's range of the entries (none when it is out of service: no flow); the number of entries. Built
        once per ``(buses, trafos)``."""
        gather = self._probes.get((buses, trafos))
        if gather is not None:
            return gather
        M, k, tr = self._M, self._k, self._flow["trafo"]
        pos, rows, t_bus = [], [], []
        for row in trafos:
            at = np.flatnonzero(tr["sel"] == row)
            i = tr["part"].start + int(at[0]) if len(at) else -1
            lo, hi = (int(M.indptr[k + i]), int(M.indptr[k + i + 1])) if len(at) else (0, 0)
            rows.append((len(pos), len(pos) + hi - lo))
            pos += range(lo, hi)
            t_bus.append(int(self._t_bus[i]) if len(at) else 0)
        pos_a = np.array(pos, np.int64)
        at_a = np.concatenate((M.indices[pos_a], t_bus, self._bus_map_ext[list(buses)])).astype(np.int64)
        gather = self._probes[(buses, trafos)] = (pos_a, at_a, rows, len(pos))
        return gather

    def _newton(self, Sbus: np.ndarray) -> bool:
        """Newton–Raphson from the last voltages at the bus powers ``Sbus`` (pu); True when it converged.

        When that fails, or converges with a bus below :data:`LOW_VOLTAGE_PU` (the low-voltage branch of the flow
        equations, which a warm start after a step near voltage collapse can fall into and then stay on), it runs once
        more from the compile's voltages (:attr:`V_base`, a start on the high-voltage branch like pandapower's), and
        that run's flow stands when it converges; when it does not, the first run's does (converged or failed)."""
        V, ok, iterations = self._solve_from(self._V.copy(), Sbus)
        if not ok or (vm := np.abs(V))[vm.argmin()] < LOW_VOLTAGE_PU:  # (≈0.7 µs; ``vm.min()`` ≈1.3 µs)
            again = self._solve_from(self.V_base.copy(), Sbus)
            if again[1]:
                V, ok, iterations = again
        if not ok:
            return self._fail()
        self._V, self._iterations, self._converged = V, iterations, True
        return True

    def _solve_from(self, V0: np.ndarray, Sbus: np.ndarray) -> tuple[np.ndarray | None, bool, int]:
        """One Newton–Raphson from ``V0`` (pu, a copy it may overwrite) at the bus powers ``Sbus`` (pu):
        ``(V, converged with finite voltages, iterations)``; ``(None, False, 0)`` when the backend raised."""
        p = self.params
        try:
            if self._grid is not None:
                V, ok, iterations = self._grid.solve(V0, Sbus, p.max_iteration, p.tolerance_mva)
            elif self._ls is not None:
                ok = self._ls.compute_pf(self.Ybus, V0, Sbus, self._ref32, self._slack_w, self._pv32, self._pq32,
                                         p.max_iteration, p.tolerance_mva)
                V = self._ls.get_V().copy()  # a view the next solve overwrites
                iterations = int(self._ls.get_nb_iter())
            else:
                with np.errstate(all="ignore"):
                    V, ok, iterations = self._nr.solve(V0, Sbus, p.max_iteration, p.tolerance_mva)
        except (RuntimeError, ValueError, ArithmeticError, np.linalg.LinAlgError):
            return None, False, 0
        return V, bool(ok) and all_finite(V), iterations

    def _fail(self) -> bool:
        """A failed flow: the next one starts again from the last converged voltages (:attr:`_V`, never a diverged
        state; scaled by the tap moves since), not from the compile's, which were solved at the taps of that time."""
        self._converged = False
        return False

    def _results(self, V: np.ndarray, Sbus: np.ndarray, iterations: int) -> PowerFlowResult:
        k = self._k
        I = _matvec(self._M, V)  # pu currents: from ends, to ends, slack buses
        S = V[self._ends] * I.conj()  # pu powers into the branches at both ends, and the slack buses' injections
        S *= self._base_ends
        x = np.abs(I[: 2 * k])
        x *= self._cfct
        loading = np.maximum(x[:k], x[k:])
        if len(self._zero_rating):
            loading[self._zero_rating] = np.inf
        P, Q = S.real.copy(), S.imag.copy()
        out = []
        for part, partial in self._parts:
            if partial is None:
                out += [loading[part], P[part]]
            else:
                sel, template, n = partial
                ld, pf = template.copy(), np.zeros(n)
                ld[sel], pf[sel] = loading[part], P[part]
                out += [ld, pf]
        lv, partial = self._lv
        if partial is None:
            lv_p, lv_q = P[lv], Q[lv]
        else:
            sel, n = partial
            lv_p, lv_q = np.zeros(n), np.zeros(n)
            lv_p[sel], lv_q[sel] = P[lv], Q[lv]
        # slack: computed injection minus what the other elements at the bus inject (generator convention)
        S_eg = S[2 * k:] - Sbus[self._eg_bus] * self._base_ends[2 * k:]
        if not self._eg_all_on:
            S_eg[~self._eg_on] = 0.0
        Vb = V[self.bus_map] if self._all_buses_on else np.append(V, np.nan)[self._bus_map_ext]
        va = np.arctan2(Vb.imag, Vb.real)  # np.angle(Vb, deg=True) without its Python overhead
        va *= self._degrees
        return PowerFlowResult(True, np.abs(Vb), va, out[0], out[1], out[2], out[3],
                               S_eg.real.copy(), S_eg.imag.copy(), iterations, lv_p, lv_q)

    def results_of(self, copies: list[FastSolver], V: np.ndarray, Sbus: np.ndarray, iterations: int
                   ) -> list[PowerFlowResult]:
        """The results of converged flows of ``copies`` (solvers compiled like this one, :meth:`same_layout`; their
        own tap positions) from their voltages ``V`` and bus powers ``Sbus`` (pu, one row per copy), in one pass.

        The same floats as :meth:`_results` of each copy: the branch currents by the same sparse kernel
        (:meth:`_currents_of`), the rest by the same elementwise operations on ``(copies, n)`` arrays
        (tests/core/test_batched.py). :meth:`_results` stays a separate 1-D body because it is on a single env's hot
        path: CPU µs per call on ``ieee34_3mg`` (medians of 31 alternating rounds) 8.4 as it is, 10.5 as one body
        indexed with ``...`` for both (1.25×), 15.9 as this method on one copy (1.9×).
        """
        k, m = self._k, len(copies)
        I = self._currents_of(copies, V)  # pu currents: from ends, to ends, slack buses
        S = V[:, self._ends] * I.conj()  # pu powers into the branches at both ends, and the slack buses' injections
        S *= self._base_ends
        x = np.abs(I[:, : 2 * k])
        x *= self._cfct
        loading = np.maximum(x[:, :k], x[:, k:])
        if len(self._zero_rating):
            loading[:, self._zero_rating] = np.inf
        P, Q = S.real.copy(), S.imag.copy()
        out = []
        for part, partial in self._parts:
            if partial is None:
                out += [loading[:, part], P[:, part]]
            else:
                sel, template, n = partial
                ld, pf = np.repeat(template[None, :], m, axis=0), np.zeros((m, n))
                ld[:, sel], pf[:, sel] = loading[:, part], P[:, part]
                out += [ld, pf]
        lv, partial = self._lv
        if partial is None:
            lv_p, lv_q = P[:, lv], Q[:, lv]
        else:
            sel, n = partial
            lv_p, lv_q = np.zeros((m, n)), np.zeros((m, n))
            lv_p[:, sel], lv_q[:, sel] = P[:, lv], Q[:, lv]
        # slack: computed injection minus what the other elements at the bus inject (generator convention)
        S_eg = S[:, 2 * k:] - Sbus[:, self._eg_bus] * self._base_ends[2 * k:]
        if not self._eg_all_on:
            S_eg[:, ~self._eg_on] = 0.0
        Vb = V[:, self.bus_map] if self._all_buses_on else np.concatenate((V, np.full((m, 1), np.nan)), axis=1)[:, self._bus_map_ext]
        va = np.arctan2(Vb.imag, Vb.real)
        va *= self._degrees
        vm, eg_p, eg_q = np.abs(Vb), S_eg.real.copy(), S_eg.imag.copy()
        lines, line_p, trafos, trafo_p = out
        return [PowerFlowResult(True, vm[c], va[c], lines[c], line_p[c], trafos[c], trafo_p[c], eg_p[c], eg_q[c],
                                iterations, lv_p[c], lv_q[c]) for c in range(m)]

    def _currents_of(self, copies: list[FastSolver], V: np.ndarray) -> np.ndarray:
        """Each copy's flow matrix times its voltages (``V``: one row per copy; pu currents, copies × rows of ``M``):
        :func:`_matvec`'s kernel once, on the block-diagonal matrix of the copies' flow matrices (the same floats)."""
        M, m = self._M, len(copies)
        (rows, nb), nnz = M.shape, M.nnz
        if self._block is None or len(self._block[0]) <= m * rows:  # (fewer copies: a prefix of the block)
            shift = np.arange(m, dtype=M.indptr.dtype)[:, None]
            self._block = (np.r_[(M.indptr[:-1] + nnz * shift).ravel(), m * nnz].astype(M.indptr.dtype),
                           (M.indices + nb * shift).ravel())
        indptr, indices = self._block[0][: m * rows + 1], self._block[1][: m * nnz]
        data, x = np.concatenate([c._M.data for c in copies]), np.ascontiguousarray(V, np.complex128).ravel()
        return _csr_product((m * rows, m * nb), indptr, indices, data, x).reshape(m, rows)

    def same_layout(self, other: FastSolver) -> bool:
        """Whether ``other`` was compiled from a net like this one's (same injection scatter, buses, branches, ratings
        and flow-matrix pattern), so :meth:`results_of` and a batched solve can use this solver's arrays for it."""
        if other._delegate is not None or self._delegate is not None or self.shape != other.shape:
            return False
        same = [(m.indptr, o.indptr) for m, o in ((self._M, other._M), (self._C, other._C))]
        same += [(m.indices, o.indices) for m, o in ((self._M, other._M), (self._C, other._C))]
        same += [(self._C.data, other._C.data)]
        same += [(getattr(self, a), getattr(other, a)) for a in ("_cf", "_ct", "_f_bus", "_t_bus", "_eg_bus", "_eg_on",
                                                                 "bus_map")]
        same += [(self._flow[kind][f], other._flow[kind][f]) for kind in self._flow for f in ("sel", "template")]
        return self._M.shape == other._M.shape and all(a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
                                                        for a, b in same)

    # --------------------------------------------------------------- taps
    def set_trafo_tap(self, trafo_row: int, tap_pos: int) -> None:
        """Move a transformer's tap: patch its branch admittances in place (no recompile).

        Falls back to a recompile when the transformer has no tap changer, is out of
        service, or ``tap_pos`` lies outside ``[tap_min, tap_max]``.
        """
        table = None if self._delegate is not None else self._taps.get(trafo_row) or self._tap_table(trafo_row)
        if table is None or not table.lo <= tap_pos <= table.lo + len(table.Y) - 1:
            net = self.net
            net.trafo.iat[trafo_row, net.trafo.columns.get_loc("tap_pos")] = tap_pos
            if self._delegate is None:
                self.topology_changed()
            return
        self._unsynced_taps[trafo_row] = tap_pos  # written to the table when the net is next read
        ratio, increments = table.step_to(tap_pos)
        if table.fed is not None:  # warm start: the buses it feeds follow its no-load voltage ratio −Ytf/Ytt
            self._V[table.fed] *= ratio
        table.pos = tap_pos
        self._patched = True
        if self._grid is not None:
            self._grid.touch(*table.buses)
        for (data, where, _), increment in zip(table.targets, increments):
            data[where] += increment

    def _tap_table(self, row: int) -> _TapTable | None:
        """Branch admittances of transformer ``row`` at every tap position, and where they sit."""
        from pandapower.build_branch import _calc_branch_values_from_trafo_df
        from pandapower.pypower.idx_brch import BR_B, BR_B_ASYM, BR_G, BR_G_ASYM, BR_R, BR_X, SHIFT, TAP
        from pandapower.pypower.makeYbus import branch_vectors

        net, ppc = self.net, self.net._ppc
        trafo = net.trafo
        sel = self._flow["trafo"]["sel"]
        lo, hi, pos0 = (float(trafo[c].iat[row]) for c in ("tap_min", "tap_max", "tap_pos"))
        if not np.all(np.isfinite([lo, hi, pos0])) or not lo <= pos0 <= hi or row not in sel:
            return None  # (a tap outside its range: recompiled until a move brings it back)
        positions = np.arange(int(lo), int(hi) + 1)
        df = trafo.iloc[[row] * len(positions)].copy()
        df["tap_pos"] = positions
        tabulated = "tap_dependency_table" in trafo and trafo["tap_dependency_table"].iat[row]  # (or NaN, None)
        if isinstance(tabulated, (bool, np.bool_)) and tabulated:
            # its ratio and impedance per step come from net.trafo_characteristic_table, which pandapower maps by
            # transformer, not by row (every row would get one step's values): one position per call
            per_row = [_calc_branch_values_from_trafo_df(net, ppc, df.iloc[[k]]) for k in range(len(positions))]
            values = [np.concatenate([np.ravel(v[i]) for v in per_row]) for i in range(8)]
        else:
            values = _calc_branch_values_from_trafo_df(net, ppc, df)
        r, x, g, b, g_asym, b_asym, ratio, shift = values
        branch = np.repeat(ppc["branch"][[self._ppc_trafo0 + row]], len(positions), axis=0)
        for col, value in ((BR_R, r), (BR_X, x), (BR_G, g), (BR_B, b), (BR_G_ASYM, g_asym),
                           (BR_B_ASYM, b_asym), (TAP, ratio), (SHIFT, shift)):
            branch[:, col] = value
        Ytt, Yff, Yft, Ytf = branch_vectors(branch, len(positions))
        Y = np.stack([Yff, Yft, Ytf, Ytt], axis=1)  # one row per position
        k = self._k
        i = self._flow["trafo"]["part"].start + int(np.searchsorted(sel, row))
        f, t = int(self._f_bus[i]), int(self._t_bus[i])
        ij = [(f, f), (f, t), (t, f), (t, t)]
        all4 = np.arange(4)
        targets = [(self.Ybus.data, _positions(self.Ybus, ij, csc=True), all4)]
        if self._nr is not None:
            targets.append((self._nr.Y.data, _positions(self._nr.Y, ij, csc=False), all4))
        # flow matrix rows: the from end (Yff, Yft), the to end (Ytf, Ytt), and the Ybus row of a slack bus
        m_ij, which = [(i, f), (i, t), (k + i, f), (k + i, t)], [0, 1, 2, 3]
        for j, bus in enumerate(self._eg_bus):
            if self._eg_on[j] and bus in (f, t):
                rows = (0, 1) if bus == f else (2, 3)
                m_ij += [(2 * k + j, ij[n][1]) for n in rows]
                which += list(rows)
        targets.append((self._M.data, _positions(self._M, m_ij, csc=False), np.array(which)))
        # the buses connected to its LV side once its own couplings are cut, when no slack is among them
        A = sp.coo_matrix(self.Ybus)
        keep = ~(((A.row == f) & (A.col == t)) | ((A.row == t) & (A.col == f)))
        _, label = connected_components(sp.csr_matrix((np.ones(int(keep.sum())), (A.row[keep], A.col[keep])),
                                                      shape=A.shape), directed=False)
        fed = np.flatnonzero(label == label[t])
        table = _TapTable(int(lo), Y, int(pos0), targets, None if np.isin(self.ref, fed).any() else fed, (f, t))
        self._taps[row] = table
        return table

    # --------------------------------------------------------------- topology
    def topology_changed(self) -> None:
        """Recompile after tap/shunt/switch/in-service edits: one ``pandapower.runpp`` (20–45 ms on the templates), and
        when its flat start fails a second from the last flow's voltages."""
        if self._delegate is not None:
            return
        Vb = np.append(self._V, np.nan)[self._bus_map_ext]  # (a bus out of service: NaN, then a flat 1 pu)
        warm = (np.nan_to_num(np.abs(Vb), nan=1.0), np.nan_to_num(np.angle(Vb, deg=True), nan=0.0))
        reasons = unsupported_features(self.net) or self._compile(warm if len(Vb) == len(self.net.bus) else None)
        if reasons:
            self._delegate_to_pandapower(reasons)

    def restart(self) -> None:
        """Back to the state a new solver of this net has at the transformers' current tap positions (an env's reset:
        ``reset(seed)`` then repeats an episode bit for bit): the compiled admittances (tap moves patched in place and
        back drift by ≈1e-12 pu), the compile's voltages as the warm start, a new Newton–Raphson backend
        (a used lightsim2grid grid carries its parameters and KLU's state over; ≈0.1 ms on ``ieee34_3mg``); the taps that stand
        away from the compile's positions (an OLTC device's) move there again from those, in the order of their first
        moves, as after the compile. A solver recompiled since its construction (a shunt step, a topology edit) with a
        tap away from that compile's position recompiles at the current taps instead (one ``pandapower.runpp``). A
        solver that delegates restarts its delegate."""
        if self._delegate is not None:
            self._delegate.restart()
            return
        now = self._compiled_taps.copy()  # the positions now (a tap moves through a table, or by a recompile)
        for row, table in self._taps.items():
            now[row] = table.pos
        away = self._away(now)
        if away and not self._origin.first:
            self.topology_changed()
            return
        self._replay(now, away)

    def _away(self, now: np.ndarray) -> list[int]:
        """The net.trafo rows whose tap positions ``now`` differ from those of the compile :attr:`_origin` stands for."""
        taps = self._origin.taps
        return np.flatnonzero((now != taps) & ~(np.isnan(now) & np.isnan(taps))).tolist()

    def _replay(self, now: np.ndarray, away: list[int]) -> None:
        """Back to the compile :attr:`_origin` stands for (its admittances, a new backend, its voltages as the warm
        start), then the taps of the rows ``away`` moved from its positions to ``now`` (per net.trafo row)."""
        Y, M, newton_Y, taps, _ = self._origin
        self.Ybus.data[...], self._M.data[...] = Y, M
        if self._nr is not None:
            self._nr.Y.data[...] = newton_Y
        if self._grid is not None:  # (a grid whose parameters are written again differs in the last bits: a new one)
            self._grid = newton.GridNewton(self.Ybus, self.ref, self.pv, self.pq, self.V_base)
        elif self._ls is not None:
            self._ls = newton.LS_CLASS()
        self._V, self._Sbus, self._converged, self._iterations = self.V_base.copy(), None, False, 0
        self._patched = False
        for row in away:  # (a table made by the move below starts at the compile's position)
            if row in self._taps:
                self._taps[row].pos = int(taps[row])
            self._unsynced_taps[row] = int(taps[row])
        for row in [r for r in self._taps if r in away] + [r for r in away if r not in self._taps]:
            self.set_trafo_tap(row, int(now[row]))

    # ---------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        """The net (at the taps moved) and parameters; when compiled, the warm start, what :meth:`restart` returns to
        and, once a tap moved in place since the compile (here or in the solver this one was copied from), the patched
        entries of ``Ybus`` and the flow matrix, the compiled base voltages and the order of the taps' first moves: a
        recompile at the moved taps differs from the patched floats (≈1e-14 pu), and so does a lightsim2grid grid built
        on them from one touched by the moves; a copy builds its grid on the original's compile, replays the moves
        as :meth:`restart` does, then takes the patched floats, and continues bit for bit; when it delegates, its
        delegate's warm start (a copy then solves where the flat start fails as the original does)."""
        state = super().__getstate__()
        if self._delegate is not None:
            state["delegate_warm"] = self._delegate._warm
            return state
        state["warm_start_V"] = self._V.copy()
        if self._patched:
            state["patched"] = (self.Ybus.data, self._M.data, self.V_base, list(self._taps))
        origin = self._origin
        state["origin"] = (origin.Ybus, origin.M, origin.taps, origin.first)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)  # recompiled at the pickled taps: the same structure
        if self._delegate is not None:
            self._delegate._warm = state.get("delegate_warm")
            return
        # what the original restarts to: its compile, not this one at the pickled taps
        Y, M, taps, first = state["origin"]
        Y, M, taps = np.array(Y), np.array(M), np.array(taps)
        self._origin = _Origin(Y, M, None if self._nr is None else self._newton_Y(Y), taps, bool(first))
        if "patched" in state:
            Y, M, V_base, order = state["patched"]
            # the original's backend: built on its compile, then the taps moved to the pickled positions (as restart
            # replays them, in the original's order of first moves); then the original's patched floats
            self.V_base = np.array(V_base)
            for row in order:
                self._tap_table(row)
            self._replay(self._compiled_taps, self._away(self._compiled_taps))
            self.Ybus.data[...], self._M.data[...] = Y, M  # (a wrong length raises)
            if self._nr is not None:
                self._nr.Y.data[...] = self._newton_Y(self.Ybus.data)
            if self._grid is not None:
                for table in self._taps.values():
                    self._grid.touch(*table.buses)
            self._patched = True  # a copy of this copy carries them too
        V = state.get("warm_start_V")
        if V is not None and V.shape == self._V.shape:
            self._V = V.copy()

    def _newton_Y(self, Ybus_data: np.ndarray) -> np.ndarray:
        """The numpy backend's Newton matrix entries for ``Ybus`` entries ``Ybus_data`` (pu)."""
        Ybus = sp.csc_matrix((Ybus_data, self.Ybus.indices, self.Ybus.indptr), shape=self.Ybus.shape)
        return newton.NumpyNewton(Ybus, self.pv, self.pq).Y.data
