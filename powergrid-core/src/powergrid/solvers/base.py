"""The interface every power-flow solver implements.

A solver is built once per network (``solver = Solver(net, params)``), compiles
what it needs, and then solves many times for new injections. Arrays are
ordered like the rows of the pandapower tables (``net.bus``, ``net.load``,
``net.sgen``, ``net.line``, ``net.trafo``, ``net.ext_grid``).
"""

from __future__ import annotations

import abc
from typing import Any

import attrs
import numpy as np


@attrs.define
class Injections:
    """Per-element injections of one step (row order of the pandapower tables).

    ``load_*`` are consumption (load convention), ``sgen_*`` are generation
    (generator convention), both in MW / Mvar.
    """

    load_p_mw: np.ndarray
    load_q_mvar: np.ndarray
    sgen_p_mw: np.ndarray
    sgen_q_mvar: np.ndarray


@attrs.define
class PowerFlowResult:
    """Results of one AC power flow (row order of the pandapower tables).

    Voltages in pu and degrees, flows in MW/Mvar (positive from the from/hv side
    into the branch), loadings in percent of rating, slack injections in MW/Mvar
    (generator convention, like ``res_ext_grid``). ``trafo_p_lv_mw``/``trafo_q_lv_mvar``
    are the flows into each transformer at its LV terminal (like ``res_trafo``; a regulator
    feeding a load shows them negative); empty when a solver does not report them.
    """

    converged: bool
    vm_pu: np.ndarray
    va_degree: np.ndarray
    line_loading_percent: np.ndarray
    line_p_from_mw: np.ndarray
    trafo_loading_percent: np.ndarray
    trafo_p_hv_mw: np.ndarray
    ext_grid_p_mw: np.ndarray
    ext_grid_q_mvar: np.ndarray
    iterations: int = 0
    trafo_p_lv_mw: np.ndarray = attrs.field(factory=lambda: np.zeros(0))
    trafo_q_lv_mvar: np.ndarray = attrs.field(factory=lambda: np.zeros(0))

    @classmethod
    def failed(cls, n_bus: int, n_line: int, n_trafo: int, n_ext: int) -> PowerFlowResult:
        """A non-converged result: every value NaN, ``converged`` False."""
        nan = np.full
        return cls(False, nan(n_bus, np.nan), nan(n_bus, np.nan), nan(n_line, np.nan), nan(n_line, np.nan),
                   nan(n_trafo, np.nan), nan(n_trafo, np.nan), nan(n_ext, np.nan), nan(n_ext, np.nan), 0,
                   nan(n_trafo, np.nan), nan(n_trafo, np.nan))


class PowerFlowSolver(abc.ABC):
    """Compiles a pandapower net once and solves AC power flows for new injections.

    Subclasses must never raise for a diverging case: they return a result with
    ``converged=False``.
    """

    #: Registry name, for messages.
    name: str = "solver"

    def __init__(self, net: Any, params: Any = None) -> None:
        self.net = net
        self.params = params
        self.shape = (len(net.bus), len(net.line), len(net.trafo), len(net.ext_grid))

    @abc.abstractmethod
    def solve(self, injections: Injections) -> PowerFlowResult:
        """Solve the AC power flow for ``injections``."""

    def set_trafo_tap(self, trafo_row: int, tap_pos: int) -> None:
        """Change a transformer's tap position (changes the admittance matrix)."""
        self.net.trafo.iat[trafo_row, self.net.trafo.columns.get_loc("tap_pos")] = tap_pos
        self.topology_changed()

    def set_shunt_step(self, shunt_row: int, step: int) -> None:
        """Change a switched shunt's step (changes the admittance matrix)."""
        self.net.shunt.iat[shunt_row, self.net.shunt.columns.get_loc("step")] = step
        self.topology_changed()

    def topology_changed(self) -> None:
        """Called after the net's admittance-relevant tables change; fast solvers recompile."""

    def restart(self) -> None:
        """Back to the state a new solver of the net has (warm start, compiled state), at the net's current taps and
        steps: called at an env's reset, so ``reset(seed)`` repeats an episode bit for bit."""

    def __getstate__(self) -> dict[str, Any]:
        """Pickle only the net and parameters; compiled state is rebuilt on load."""
        return {"net": self.net, "params": self.params}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["net"], state["params"])  # type: ignore[misc]
