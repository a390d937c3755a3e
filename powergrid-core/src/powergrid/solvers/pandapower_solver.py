"""The reference solver: ``pandapower.runpp`` on the net itself (slow, complete)."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import pandapower as pp

from powergrid.params import choice, integer, quantity
from powergrid.solvers.base import Injections, PowerFlowResult, PowerFlowSolver

#: runpp's algorithms that accept start voltages (init_vm_pu, init_va_degree arrays)
_ARRAY_START = ("nr", "iwamoto_nr")


@attrs.frozen
class PandapowerParams:
    algorithm: str = choice(("nr", "iwamoto_nr", "bfsw", "gs", "fdbx", "fdxb"), "nr")
    max_iteration: int = integer(30, ge=1)
    tolerance_mva: float = quantity("MVA", 1e-8, gt=0)


class PandapowerSolver(PowerFlowSolver):
    """AC power flow by ``pandapower.runpp`` (Newton–Raphson by default); the reference of every other solver."""

    name = "pandapower"
    Params = PandapowerParams

    def __init__(self, net: Any, params: PandapowerParams | None = None) -> None:
        super().__init__(net, params or PandapowerParams())
        self._warm: tuple[np.ndarray, np.ndarray] | None = None  # last converged vm (pu), va (degree)

    def set_trafo_tap(self, trafo_row: int, tap_pos: int) -> None:
        """Write the tap position; the next flow still starts from the last one."""
        self.net.trafo.iat[trafo_row, self.net.trafo.columns.get_loc("tap_pos")] = tap_pos

    def __getstate__(self) -> dict[str, Any]:
        """The net, parameters and warm start: a copy solves where the flat start fails as the original does."""
        return {**super().__getstate__(), "warm": self._warm}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._warm = state.get("warm")

    def restart(self) -> None:
        """Forget the warm start, as a new solver has none (an env's reset, at the initial taps)."""
        self._warm = None

    def topology_changed(self) -> None:
        """Switch, in-service or shunt edits: the flat start comes first anyway, and the last converged flow stays the
        fallback (per net.bus row; dropped when buses were added or removed)."""

    def solve(self, injections: Injections) -> PowerFlowResult:
        net, p = self.net, self.params
        net.load["p_mw"] = injections.load_p_mw
        net.load["q_mvar"] = injections.load_q_mvar
        net.sgen["p_mw"] = injections.sgen_p_mw
        net.sgen["q_mvar"] = injections.sgen_q_mvar
        arrays = (injections.load_p_mw, injections.load_q_mvar, injections.sgen_p_mw, injections.sgen_q_mvar)
        if not all(np.isfinite(a).all() for a in arrays):
            return PowerFlowResult.failed(*self.shape)
        # runpp's own start ("auto": a DC flow on a net with angles) fails on long feeders at high regulator taps or
        # under strong reverse flow: then retry from the last converged flow (runpp takes start voltages for its
        # Newton-Raphson only: the other algorithms raise ValueError on them), then from a flat start
        warm = self._warm if self._warm is not None and len(self._warm[0]) == len(net.bus) else None
        warm = warm if p.algorithm in _ARRAY_START else None
        starts = [{"init": "auto"}] + ([{"init": "auto", "init_vm_pu": warm[0], "init_va_degree": warm[1]}]
                                       if warm is not None else []) + [{"init": "flat"}]
        for k, start in enumerate(starts):
            try:
                pp.runpp(net, algorithm=p.algorithm, max_iteration=p.max_iteration,
                         tolerance_mva=p.tolerance_mva, numba=False, **start)
                break
            except (pp.powerflow.LoadflowNotConverged, np.linalg.LinAlgError, FloatingPointError):
                if k == len(starts) - 1:
                    return PowerFlowResult.failed(*self.shape)
        self._warm = (np.nan_to_num(net.res_bus.vm_pu.to_numpy(float), nan=1.0),
                      np.nan_to_num(net.res_bus.va_degree.to_numpy(float), nan=0.0))
        trafo_loading = net.res_trafo.loading_percent.to_numpy(float, copy=True) if len(net.trafo) else np.zeros(0)
        return PowerFlowResult(
            converged=True,
            vm_pu=net.res_bus.vm_pu.to_numpy(float, copy=True),
            va_degree=net.res_bus.va_degree.to_numpy(float, copy=True),
            line_loading_percent=net.res_line.loading_percent.to_numpy(float, copy=True),
            line_p_from_mw=net.res_line.p_from_mw.to_numpy(float, copy=True),
            trafo_loading_percent=trafo_loading,
            trafo_p_hv_mw=net.res_trafo.p_hv_mw.to_numpy(float, copy=True) if len(net.trafo) else np.zeros(0),
            ext_grid_p_mw=net.res_ext_grid.p_mw.to_numpy(float, copy=True),
            ext_grid_q_mvar=net.res_ext_grid.q_mvar.to_numpy(float, copy=True),
            iterations=int(net._ppc["iterations"]) if net.get("_ppc") is not None and "iterations" in net._ppc else 0,
            trafo_p_lv_mw=net.res_trafo.p_lv_mw.to_numpy(float, copy=True) if len(net.trafo) else np.zeros(0),
            trafo_q_lv_mvar=net.res_trafo.q_lv_mvar.to_numpy(float, copy=True) if len(net.trafo) else np.zeros(0),
        )
