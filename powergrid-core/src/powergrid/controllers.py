"""Network controllers: voltage regulators and transformer OLTCs under automatic tap control.

A regulator is a transformer with a tap changer and a voltage relay. The relay sees
the regulated (LV) terminal through a PT and, with line-drop compensation (LDC), the
line current through a CT (Kersting, *Distribution System Modeling and Analysis*, ch. 7;
OpenDSS ``RegControl`` uses the same equations)::

    V_relay = | V_ln / PT  −  (R + jX) · I_line / CT |        (volts on the PT secondary)

``R`` and ``X`` are the compensator settings in volts (the drop at rated CT current),
``I_line`` the phase current leaving the LV terminal. The relay holds ``V_relay`` inside
``v_set ± bandwidth/2``: once it has been out of band for more than ``delay_ticks`` ticks
it moves the tap toward ``v_set`` (one tap changes the ratio by ``tap_step_percent``). A tick
counts whether the deviation is there at its first flow or comes from another regulator's
move within it (with no delay a regulator in series corrects that in the same tick).

:class:`TapControl` is the control stage of an environment step: solve, let a regulator
that is out of band move toward ``v_set`` (at most ``max_taps`` positions per tick, within
its tap limits), re-solve, and repeat while any moved. One regulator moves per round, the
most upstream one first (hops from the slack), so regulators in series do not both correct
the same deviation. Each regulator moves at most ``max_iterations`` times per tick (default
20): that stops a regulator hunting between two positions around a band narrower than its
step, and then lets the others move. The loop thus ends within ``max_iterations`` × (number
of regulators) rounds, and every regulator gets its own moves however many there are. The
solver's ``set_trafo_tap`` applies a move (the fast solver patches ``Ybus`` in place).

The settings live in the pandapower net as a table ``net["regulator"]`` (one row per
regulator, columns = the fields of :class:`RegulatorSettings`); the IEEE templates fill
it with the published settings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, NamedTuple

import attrs
import numpy as np
import pandapower.topology as top
import pandas as pd

from powergrid.slacks import slack_buses
from powergrid.solvers.base import Injections, PowerFlowResult, PowerFlowSolver
from powergrid.solvers.fast import FastSolver

#: PT secondary voltage at 1 pu when a regulator's settings are given in pu (``pt_ratio`` 0).
V_SECONDARY = 120.0


@attrs.frozen
class RegulatorSettings:
    """Relay settings of one regulator (volts on the PT secondary, as published).

    ``pt_ratio`` 0 means "pu on a 120 V base": the PT ratio is taken so that the
    nominal LV phase voltage reads 120 V. ``ct_primary_a`` 0 disables line-drop
    compensation. ``phases`` is the number of phases the published regulator serves;
    in a balanced equivalent an n-phase lateral carries n/3 of its true phase current,
    so the compensator sees ``3/n`` times the balanced current.
    """

    trafo: str
    v_set: float = attrs.field(default=120.0, validator=attrs.validators.gt(0))
    bandwidth: float = attrs.field(default=2.0, validator=attrs.validators.gt(0))
    pt_ratio: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    ct_primary_a: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    r_ldc: float = 0.0
    x_ldc: float = 0.0
    delay_ticks: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    max_taps: int = attrs.field(default=16, validator=attrs.validators.ge(1))
    phases: int = attrs.field(default=3, validator=attrs.validators.in_((1, 2, 3)))


def add_regulators(net: Any, settings: Iterable[RegulatorSettings]) -> None:
    """Store regulator settings in ``net["regulator"]`` (appending to any already there)."""
    old = net.get("regulator")
    records = (old.to_dict("records") if old is not None else []) + [attrs.asdict(s) for s in settings]
    net["regulator"] = pd.DataFrame(records, columns=[f.name for f in attrs.fields(RegulatorSettings)])


def regulator_settings(net: Any) -> list[RegulatorSettings]:
    """The settings stored in ``net["regulator"]`` (empty when the net has none)."""
    table = net.get("regulator")
    if table is None:
        return []
    names = [f.name for f in attrs.fields(RegulatorSettings)]
    return [RegulatorSettings(**{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items() if k in names})
            for row in table.to_dict("records")]


@attrs.define
class Regulator:
    """A regulator's relay and tap state, bound to one transformer row of a net."""

    settings: RegulatorSettings
    row: int  # net.trafo row
    bus: int  # net.bus row of the regulated (LV) bus
    v_ln: float  # nominal LV phase voltage, V
    pt: float  # PT ratio used
    raise_sign: int  # +1 when a higher tap raises the LV voltage (tap on the LV side)
    tap_min: int
    tap_max: int
    tap_step: float  # ratio change per tap, fraction
    tap: int
    tap_init: int
    timer: int = 0  # consecutive ticks out of band
    moved: int = 0  # taps moved this tick
    moves: int = 0  # moves (control rounds in which it moved) this tick
    _z_ldc: complex | None = attrs.field(init=False)  # the compensator's R + jX (V), None without line-drop compensation

    def __attrs_post_init__(self) -> None:
        s = self.settings
        self._z_ldc = complex(s.r_ldc, s.x_ldc) if s.ct_primary_a and (s.r_ldc or s.x_ldc) else None

    @classmethod
    def bind(cls, net: Any, settings: RegulatorSettings) -> Regulator:
        """Find the transformer named ``settings.trafo`` and read its tap changer."""
        trafo = net.trafo
        names = [str(n) for n in trafo.name]
        if settings.trafo not in names:
            raise ValueError(f"regulator: no transformer named {settings.trafo!r} (have: {', '.join(names)})")
        row = names.index(settings.trafo)
        t = trafo.iloc[row]
        if not all(np.isfinite(float(t[c])) for c in ("tap_pos", "tap_min", "tap_max", "tap_step_percent")):
            raise ValueError(f"regulator {settings.trafo!r}: the transformer has no tap changer")
        if not float(t.tap_step_percent) > 0:
            raise ValueError(f"regulator {settings.trafo!r}: the transformer's tap_step_percent is "
                             f"{float(t.tap_step_percent)}: its taps do not change the voltage (must be > 0)")
        v_ln = float(t.vn_lv_kv) * 1e3 / math.sqrt(3.0)
        return cls(settings, row, int(net.bus.index.get_loc(t.lv_bus)), v_ln,
                   settings.pt_ratio or v_ln / V_SECONDARY, 1 if t.tap_side == "lv" else -1,
                   int(t.tap_min), int(t.tap_max), float(t.tap_step_percent) / 100.0, int(t.tap_pos), int(t.tap_pos))

    def relay_volts(self, vm_pu: float, p_lv_mw: float, q_lv_mvar: float) -> float:
        """Relay voltage (V on the PT secondary) from the LV bus voltage and the power into the
        transformer at its LV terminal (MW, Mvar; the load current leaves, hence the minus)."""
        v_sec = vm_pu * self.v_ln / self.pt
        if self._z_ldc is None:
            return v_sec
        s = self.settings
        # phase current (A) leaving the LV terminal, with the LV voltage as the angle reference
        i_line = (-p_lv_mw + 1j * q_lv_mvar) * 1e6 / (3.0 * vm_pu * self.v_ln) * 3.0 / s.phases
        return abs(v_sec - self._z_ldc * i_line / s.ct_primary_a)

    def taps_wanted(self, volts: float) -> int:
        """Signed tap move toward ``v_set`` (0 inside the band, and for a relay that reads NaN: its regulated bus is
        de-energised, e.g. its transformer out of service), before delay and limits."""
        s = self.settings
        error = s.v_set - volts
        if not abs(error) > s.bandwidth / 2:
            return 0
        n = max(1, round(abs(error) / (self.tap_step * volts)))
        return int(math.copysign(n, error)) * self.raise_sign


class TapReading(NamedTuple):
    """What the relays of a :class:`TapControl` read from a power flow: whether it converged and, per regulator in
    the control's order, the regulated bus's voltage (pu) and the power into its transformer at the LV terminal
    (MW, Mvar; empty lists when the flow did not converge)."""

    converged: bool
    vm_pu: list[float]
    p_lv_mw: list[float]
    q_lv_mvar: list[float]


def _hops_from_slacks(net: Any) -> dict[int, float]:
    """Hops from the nearest in-service slack (ext_grid or slack generator) to each bus it reaches, by bus index."""
    hops: dict[int, float] = {}
    for slack in slack_buses(net):
        for bus, n in top.calc_distance_to_bus(net, slack, weight=None).items():
            hops[bus] = min(n, hops.get(bus, np.inf))
    return hops


@attrs.define
class TapControl:
    """Automatic tap control of a net's regulators around a power-flow solver.

    ``tap_changes`` counts the tap positions moved in the last :meth:`solve` (a step's
    maintenance count); ``total_tap_changes`` since :meth:`reset`. ``regulators`` is fixed once the control is
    built. ``max_iterations`` is how many times each regulator may move in one tick (its moves, not the loop's
    rounds: many regulators out of band at once each get theirs).
    """

    solver: PowerFlowSolver
    regulators: list[Regulator]
    max_iterations: int = 20
    tap_changes: int = 0
    total_tap_changes: int = 0
    _settle: bool = True
    _iteration: int = 0  # rounds of the current tick's control loop that moved a tap
    _moved_total: int = 0  # taps moved in the current tick
    #: the regulated buses (net.bus rows), in the control's order, and their transformers (net.trafo rows)
    buses: tuple[int, ...] = attrs.field(init=False)
    rows: tuple[int, ...] = attrs.field(init=False)
    _index: tuple[np.ndarray, np.ndarray] = attrs.field(init=False)  # both as index arrays

    def __attrs_post_init__(self) -> None:
        self.buses = tuple(r.bus for r in self.regulators)
        self.rows = tuple(r.row for r in self.regulators)
        self._index = (np.array(self.buses, np.int64), np.array(self.rows, np.int64))

    @classmethod
    def from_net(cls, solver: PowerFlowSolver, exclude: Iterable[int] = (), max_iterations: int = 20) -> TapControl:
        """Regulators of ``solver.net["regulator"]``, except transformer rows in ``exclude``
        (those a learned or rule OLTC device agent drives)."""
        skip, net = set(exclude), solver.net
        regs = [r for r in (Regulator.bind(net, s) for s in regulator_settings(net)) if r.row not in skip]
        names = [r.settings.trafo for r in regs]
        if len(set(names)) < len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"net['regulator'] lists transformer(s) {', '.join(map(repr, twice))} more than once: one "
                             "relay per tap changer (edit the row in net['regulator'] to change its settings)")
        if len(regs) > 1:  # upstream first: hops from the nearest slack to each regulated bus
            hops = _hops_from_slacks(net)
            regs.sort(key=lambda r: hops.get(net.bus.index[r.bus], np.inf))
        return cls(solver, regs, max_iterations)

    def rewind(self) -> None:
        """Taps back to their initial positions (moved in the solver, not restarted) and the regulators' timers and
        counts cleared: an env's reset calls it before a shunt's recompile, so that compile is at the initial taps."""
        for reg in self.regulators:
            if reg.tap != reg.tap_init:
                self.solver.set_trafo_tap(reg.row, reg.tap_init)
                reg.tap = reg.tap_init
            reg.timer = reg.moved = reg.moves = 0

    def reset(self) -> None:
        """Taps back to their initial positions (:meth:`rewind`), the solver restarted there
        (:meth:`PowerFlowSolver.restart`: its warm start and admittances as a new solver's), counters cleared; the
        next converged :meth:`solve` settles the taps without delay and uncounted (the steady state an episode starts
        from)."""
        self.rewind()
        self.solver.restart()
        self.tap_changes = self.total_tap_changes = 0
        self._settle = True

    def solve(self, injections: Injections) -> PowerFlowResult:
        """Solve, move the taps of regulators out of band, re-solve while any moved; the result at the final taps.

        The fast solver reuses the bus powers of the first solve, its relays read :meth:`FastSolver.probe` and it
        derives the full result once, after the last solve."""
        solver = self.solver
        if not isinstance(solver, FastSolver):
            result = solver.solve(injections)
            self.begin()
            while self.move(result):
                result = solver.solve(injections)
            return result
        converged = solver.flow(injections)
        self.begin()
        while self.move(self.probe(converged)):
            converged = solver.reflow(injections)
        return solver.result()

    def probe(self, converged: bool) -> TapReading:
        """The relays' reading of the last flow of the control's :class:`FastSolver` (``converged``: whether it did),
        through :meth:`FastSolver.probe`."""
        if not converged or not self.regulators:
            return TapReading(converged, [], [], [])
        return TapReading(True, *self.solver.probe(self.buses, self.rows))

    def read(self, result: PowerFlowResult) -> TapReading:
        """The relays' reading of a full power-flow result (no LV-side powers reported: 0)."""
        if not result.converged or not self.regulators:
            return TapReading(result.converged, [], [], [])
        zero = [0.0] * len(self.rows)
        (buses, rows), p, q = self._index, result.trafo_p_lv_mw, result.trafo_q_lv_mvar
        return TapReading(True, result.vm_pu[buses].tolist(), p[rows].tolist() if len(p) else zero,
                          q[rows].tolist() if len(q) else zero)

    def begin(self) -> None:
        """Start a tick's control loop (before :meth:`move` sees the tick's first flow)."""
        self._iteration = self._moved_total = 0
        for reg in self.regulators:
            reg.moved = reg.moves = 0

    def move(self, flow: PowerFlowResult | TapReading) -> bool:
        """One round of the control loop after a solve (its result, or the relays' reading of it): move the most
        upstream regulator out of band that has moved fewer than ``max_iterations`` times this tick; True when a tap
        moved (solve again, then call again), False when the tick's taps are final.

        :meth:`solve` is ``begin`` then ``move`` after each solve; a vector env runs the rounds of
        many copies and re-solves the copies that moved together.
        """
        if not self.regulators:
            return False
        iteration = self._iteration
        moved = 0
        reading = flow if isinstance(flow, TapReading) else self.read(flow)
        calm = []  # regulators in band at a later flow: their timers restart when it is the tick's last
        if reading.converged:
            settle, cap = self._settle, self.max_iterations
            for reg, vm, p, q in zip(self.regulators, reading.vm_pu, reading.p_lv_mw, reading.q_lv_mvar):
                if moved and iteration:  # the timers count at the first iteration only; the others are not read
                    break
                n = reg.taps_wanted(reg.relay_volts(vm, p, q))  # upstream first; one regulator moves per iteration
                if iteration == 0:
                    reg.timer = reg.timer + 1 if n else 0
                elif not n:
                    calm.append(reg)
                elif not reg.timer:  # pushed out of band by another regulator's move: this tick is its first out
                    reg.timer = 1
                if moved or not n or reg.moves >= cap or (not settle and reg.timer <= reg.settings.delay_ticks):
                    continue
                budget = reg.settings.max_taps - reg.moved if not settle else reg.tap_max - reg.tap_min
                new = min(max(reg.tap + min(max(n, -budget), budget), reg.tap_min), reg.tap_max)  # ints: no np.clip
                if new != reg.tap:
                    self.solver.set_trafo_tap(reg.row, new)
                    moved = abs(new - reg.tap)
                    reg.moved += moved
                    reg.moves += 1
                    reg.tap = new
        if moved:
            self._iteration += 1
            self._moved_total += moved
            return True
        for reg in calm:  # in band at the tick's final taps: a deviation at the next tick is a new one
            reg.timer = 0
        self.tap_changes = 0 if self._settle else self._moved_total
        self.total_tap_changes += self.tap_changes
        self._settle = self._settle and not reading.converged  # (a failed flow settles nothing: the next one does)
        return False

    @property
    def taps(self) -> dict[str, int]:
        """Current tap position of every controlled regulator, by transformer name."""
        return {r.settings.trafo: r.tap for r in self.regulators}
