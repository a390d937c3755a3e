"""Vertical protocols: a parent coordinates its children."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import gymnasium
import numpy as np

from powergrid.agents import DeviceAgent
from powergrid.devices import StepContext, box, export_price
from powergrid.loads import LoadGroup
from powergrid.params import UNLIMITED, flag, quantity, text
from powergrid.protocols import Directive, HorizontalProtocol, VerticalProtocol
from powergrid_protocols.common import DISPATCHABLE, check_kinds, dg_marginal, finite_or, injection_mw, kind, mw_range


@attrs.frozen
class PriceSignalParams:
    price_min: float = quantity("$/MWh", 0.0)
    price_max: float = quantity("$/MWh", 200.0)

    def __attrs_post_init__(self) -> None:
        if self.price_min >= self.price_max:
            raise ValueError(f"expected price_min < price_max, got {self.price_min} ≥ {self.price_max}")


class PriceSignal(VerticalProtocol):
    """The parent broadcasts one price ($/MWh); each child's own policy responds to it.

    Parent action: ``[price]`` in ``[price_min, price_max]`` $/MWh. Children see it
    as ``ctx.price``. Rule: pass the market price on. A price outside the range is clipped;
    a NaN or infinite one passes the market price on and counts as the full range in
    ``projection`` ($/MWh, in :meth:`info`). A learned agent below it observes the price it received
    (``price_directives``).
    """

    Params = PriceSignalParams
    price_directives = True

    def __init__(self, params: Any, parent: Any) -> None:
        super().__init__(params, parent)
        self.projection = 0.0

    def action_space(self) -> gymnasium.spaces.Box:
        return box(self.params.price_min, self.params.price_max)

    def directives(self, action: Any, ctx: StepContext) -> Sequence[Directive | None]:
        lo, hi = self.params.price_min, self.params.price_max
        requested = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        if np.isfinite(requested):
            price = min(max(requested, lo), hi)
            self.projection = abs(price - requested)
        else:
            price = min(max(ctx.price, lo), hi)
            self.projection = hi - lo
        return [Directive(price=price) for _ in self.parent.children]

    def info(self) -> dict[str, Any]:
        return {"projection": self.projection}

    def rule_action(self, ctx: StepContext) -> np.ndarray:
        return np.array([min(max(ctx.price, self.params.price_min), self.params.price_max)], np.float32)


@attrs.frozen
class SetpointParams:
    margin_mw: float = quantity("MW", 0.05, ge=0, doc="the rule keeps its meter's predicted exchange this far inside "
                                                      "the import and export limits (the reading lags)")
    export_margin_mw: float = quantity("MW", 0.05, ge=0, doc="predicted export the rule lets stand where the grid pays "
                                                             "an export below the price (the reading lags a rising load)")
    hold_import: bool = flag(False, doc="the rule also raises the DGs, then the batteries, to keep the predicted import "
                                        "within the meter's import limit less margin_mw (Setpoint.hold_import)")


class Setpoint(VerticalProtocol):
    """The parent's action is the concatenation of its children's actions (in child order).

    Each part is projected onto that child's action space (its limits) and sent as the
    child's action. Rule: every child's own rule; with a ``GridConnection`` child that has a limit or pays an export
    below the price, the batteries idle at the first tick (the meter has no reading to predict from yet); from the
    second tick, the stores shave its peak under a demand charge (:meth:`shave`), then the DGs and the other batteries
    hold back an export paid below the price (:meth:`export_value`), then the setpoints are kept inside its import and
    export limits (:meth:`headroom`), the last word being the limits'; with ``hold_import`` the DGs and batteries then
    rise to hold the import limit (:meth:`hold_import`).
    """

    Params = SetpointParams

    def __init__(self, params: Any, parent: Any) -> None:
        super().__init__(params, parent)
        spaces = [child.own_action_space for child in parent.children]
        for child, space in zip(parent.children, spaces):
            if not isinstance(space, gymnasium.spaces.Box):
                raise ValueError(f"setpoint needs Box action spaces; child {child.id!r} has {space}")
        sizes = [int(np.prod(s.shape)) for s in spaces]
        edges = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self._slices = [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]
        low = np.concatenate([s.low.ravel() for s in spaces]) if spaces else np.zeros(0)
        high = np.concatenate([s.high.ravel() for s in spaces]) if spaces else np.zeros(0)
        self._space = gymnasium.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        devices = [c for c in parent.children if isinstance(c, DeviceAgent)]
        meters = [c.device for c in devices if kind(c) == "GridConnection"]
        limited = [m for m in meters if min(m.params.import_limit_mw, m.params.export_limit_mw) < UNLIMITED]
        self._meter = limited[0] if limited else None
        self._pcc = limited[0] if limited else (meters[0] if meters else None)  # the reading the rule predicts from
        # the children whose setpoint the rule may move: devices with an action (not the meter)
        self._movable = [i for i, (c, n) in enumerate(zip(parent.children, sizes))
                         if n and c in devices and kind(c) != "GridConnection"]
        # an export paid below the price: the DGs whose output the rule values at the export price
        sells_low = self._pcc is not None and self._pcc.params.sell_ratio < 1
        self._dgs = [i for i in self._movable if sells_low and kind(parent.children[i]) == "DG"]
        self._idle = [np.clip(np.zeros(s.shape, np.float32), s.low, s.high) for s in spaces]
        # under a demand charge the rule shaves the meter's peak with the stores (ESS: a feasible range and a store)
        charged = self._meter is not None and self._meter.params.demand_charge > 0
        self._stores = [i for i in self._movable if charged and hasattr(parent.children[i].device, "feasible_range")
                        and parent.children[i].device.stored_mwh() is not None]
        batteries = [i for i in self._movable if kind(parent.children[i]) == "ESS"]
        # the batteries that wait for the meter's first reading: it has a limit or pays an export below the price
        self._waiting = batteries if self._meter is not None or sells_low else []
        # the batteries (not shaving a peak) whose trade the rule values at the export price where the meter exports
        self._sellers = [i for i in batteries if sells_low and i not in self._stores]
        # with hold_import: the DGs and the batteries that rise to hold the import limit
        lifts = self._meter is not None and params.hold_import
        self._lift_dgs = [i for i in self._movable if lifts and kind(parent.children[i]) == "DG"]
        self._lift_stores = batteries if lifts else []
        # their on/off entries (a DG with commitment: true): hold_import asks such a DG on, which its rule may ask off
        self._switch = {i: parent.children[i].device.actions.index("u") for i in self._lift_dgs
                        if parent.children[i].device.params.commitment}
        self._loads: LoadGroup | None = None  # the loads behind the meter (attach)

    def attach(self, net: Any) -> None:
        """Find the loads behind the meter the rule predicts from (its ``billed_buses``), whose forecast change
        :meth:`load_change_mw` tells when no horizontal protocol does."""
        if self._pcc is not None:
            self._loads = LoadGroup.at(net, self._pcc.billed_buses(net))

    def action_space(self) -> gymnasium.spaces.Box:
        return self._space

    def directives(self, action: Any, ctx: StepContext) -> Sequence[Directive | None]:
        flat = np.asarray(action, dtype=np.float64).reshape(-1)
        # each child projects its part onto its own limits and reports the projection
        return [Directive(action=flat[where]) for where in self._slices]

    @property
    def meter(self) -> Any:
        """The ``GridConnection`` device whose import/export limits the rule keeps (None: no limited meter)."""
        return self._meter

    def action_slices(self) -> list[slice] | None:
        # a subclass that changes the directives (e.g. reserve caps) is not a plain split
        return self._slices if type(self).directives is Setpoint.directives else None

    def rule_action(self, ctx: StepContext) -> np.ndarray:
        parts = [np.asarray(child.rule_action(ctx), np.float32).reshape(-1) for child in self.parent.children]
        if ctx.tick == 0:  # the meter has no reading yet: the batteries wait for one
            for i in self._waiting:
                parts[i] = self._idle[i]
        elif self._pcc is not None:
            plan = self.plan(parts, ctx)  # each step below updates the entries it moves
            change = self.load_change_mw(ctx)  # asked once: every step below predicts with it
            if self._stores:
                self.shave(parts, plan, ctx, change)
            if self._dgs or self._sellers:
                self.export_value(parts, plan, ctx, change)
            if self._meter is not None:
                self.headroom(parts, plan, ctx, change)
            if self._lift_dgs or self._lift_stores:
                self.hold_import(parts, plan, ctx, change)
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def _move(self, parts: list[np.ndarray], plan: dict[int, float], i: int, mw: float, ctx: StepContext) -> None:
        """Set child ``i``'s MW setpoint in ``parts`` to ``mw`` and its injection in ``plan`` to what it injects."""
        parts[i] = np.array(parts[i], np.float32)
        parts[i][0] = mw
        plan[i] = injection_mw(self.parent.children[i], parts[i], ctx)

    def shave(self, parts: list[np.ndarray], plan: dict[int, float], ctx: StepContext,
              change: float) -> None:
        """Under a demand charge: set each store's MW setpoint in ``parts`` (physical, changed in place) to hold the
        predicted import at the ceiling ``c = import_limit − margin`` (MW; the running peak ``peak_mw − margin`` for a
        meter without an import limit): ``P = min(max(rest − c, lo), hi)``, with ``rest`` the import predicted
        without the store (as in :meth:`headroom`) and ``[lo, hi]`` its feasible range. Above the ceiling it
        discharges the excess; below it, it charges into the room (whatever the price), so it enters the day's
        peak full; the store's own rule (price arbitrage) is set aside. It sees the last reading, the limit and
        ``change``, the loads' forecast change (:meth:`load_change_mw`).
        ``plan``: the movable children's injections under ``parts`` (:meth:`plan`), updated with them; ``change``:
        :meth:`load_change_mw` (MW).
        """
        children, m = self.parent.children, self._meter
        predicted = self.predicted(plan, ctx, change)
        if len(plan) < len(self._movable):  # a child whose injection cannot be predicted: the rules stand
            return
        cap = m.params.import_limit_mw if m.params.import_limit_mw < UNLIMITED else m.peak_mw
        ceiling = cap - self.params.margin_mw
        for i in self._stores:
            lo, hi = mw_range(children[i], parts[i])
            rest = predicted + plan[i]  # the import without this store (MW)
            p = min(max(rest - ceiling, lo), hi)
            self._move(parts, plan, i, p, ctx)
            predicted = rest - p

    def plan(self, parts: list[np.ndarray], ctx: StepContext) -> dict[int, float]:
        """The movable children's injections under ``parts`` (MW, by index; those that can be predicted)."""
        children = self.parent.children
        return {i: p for i in self._movable if (p := injection_mw(children[i], parts[i], ctx)) is not None}

    def load_change_mw(self, ctx: StepContext) -> float:
        """MW by which the loads behind the meter change from its last reading to this tick, as the first of the
        parent's horizontal protocols that knows them tells it (one whose class overrides
        :meth:`~powergrid.protocols.HorizontalProtocol.load_change_mw`: each tells the same loads' change, so a second
        would count it twice); when none does, the forecast change of the loads behind the meter found at
        :meth:`attach` (:meth:`~powergrid.loads.LoadGroup.forecast_change_mw`: the schedule without its jitter, with the
        share of the last deviation that persists, less their actual MW at the last reading), as the LMP market and ADMM
        forecast them; 0.0 before any attach. Causal: on a dataset's days the forecast's level is the day before's
        actual load (:func:`~powergrid.loads.previous_day`)."""
        for h in self.horizontal:
            if type(h).load_change_mw is not HorizontalProtocol.load_change_mw:
                return h.load_change_mw(self.parent, ctx)
        return 0.0 if self._loads is None else self._loads.forecast_change_mw(ctx)

    def predicted(self, plan: dict[int, float], ctx: StepContext, change: float) -> float:
        """The meter's import predicted from the injections ``plan`` (MW; :meth:`headroom`), plus ``change``, the
        change of the loads behind the meter since the last reading (MW, :meth:`load_change_mw`)."""
        last = sum(float(finite_or(self.parent.children[i].device.p_mw, 0.0)) for i in plan)
        return self._pcc.import_mw + last - sum(plan.values()) + change

    def predict(self, parts: list[np.ndarray], ctx: StepContext) -> tuple[dict[int, float], float]:
        """:meth:`plan` and :meth:`predicted` under ``parts``."""
        plan = self.plan(parts, ctx)
        return plan, self.predicted(plan, ctx, self.load_change_mw(ctx))

    def export_value(self, parts: list[np.ndarray], plan: dict[int, float], ctx: StepContext,
                     change: float) -> None:
        """Lower the MW setpoints in ``parts`` (physical, changed in place) of the DGs, then of the batteries not shaving
        a peak, where the meter would export (its predicted import < 0, :meth:`predict`) and an exported MWh is paid
        ``s = export_price(price, sell_ratio)``, below the price each one's own rule weighs its output against: the DGs
        dearest marginal cost first, each to the larger of the output that brings the predicted export down to
        ``export_margin_mw`` (what a lagging reading may miss of a rising load), or to the MW the parent's horizontal
        protocols' rules take over when more (:meth:`~powergrid.protocols.HorizontalProtocol.export_taken_mw`, summed:
        P2P trading's order), and its output at ``s`` (:meth:`output_at`: a battery may so charge from the export),
        within its feasible range. The MW that offset an import stay valued at the price. It sees the last reading,
        the setpoints and ``change``, the loads' forecast change (:meth:`load_change_mw`).
        ``plan``: the movable children's injections under ``parts`` (:meth:`plan`), updated with them; ``change``:
        :meth:`load_change_mw` (MW).
        """
        children, margin = self.parent.children, self.params.export_margin_mw
        export = -self.predicted(plan, ctx, change)
        if export <= margin or len(plan) < len(self._movable):  # a child that cannot be predicted: the rules stand
            return
        left = export - max(margin, sum(h.export_taken_mw(self.parent, parts, ctx) for h in self.horizontal))
        if left <= 0:  # MW of export to hold back
            return
        sell = float(export_price(ctx.price, self._pcc.params.sell_ratio))
        for i in sorted(self._dgs, key=lambda i: -dg_marginal(children[i], plan[i])) + self._sellers:
            lo, hi = mw_range(children[i], parts[i])
            p = max(plan[i] - left, min(max(self.output_at(children[i], sell, ctx), lo), hi))
            if p < plan[i]:
                left -= plan[i] - p
                self._move(parts, plan, i, p, ctx)
            if left <= 0:
                break

    @staticmethod
    def output_at(child: Any, price: float, ctx: StepContext) -> float:
        """The MW ``child`` (a DG or a battery) injects where a MWh is worth ``price`` $/MWh: a DG's profit-maximising
        output (:meth:`~powergrid_devices.generator.DG.best_output`), a battery's own rule's setpoint at that price."""
        if kind(child) == "DG":
            return child.device.best_output(price)[0]
        market, ctx.price = ctx.price, price
        try:
            return float(child.device.rule_action(ctx)[0])
        finally:
            ctx.price = market

    def headroom(self, parts: list[np.ndarray], plan: dict[int, float], ctx: StepContext,
                 change: float) -> None:
        """Scale the rule actions ``parts`` (physical, one per child; changed in place) of the movable children towards
        their zero action so the predicted import stays within ``[−export_limit + margin, import_limit − margin]``
        (MW).

        Prediction, from what the parent knows before the flow: ``base − Σ P_i``, with ``base`` the meter's last
        settled import plus the last injections ``p_mw`` of the movable children (the rest of the microgrid as it was,
        but for the load change its horizontal protocols know) and ``P_i`` their injections under ``parts``
        (:func:`injection_mw`). Over the import limit the children whose rule draws more than their zero action
        (charging, electrolysis, EV charging, recovering a backlog) are scaled by one factor ``α ∈ [0, 1]`` towards
        it, just enough; over the export limit those that inject more (discharging, generation). A child whose scaled
        action draws (injects) more than its share (a minimum load) takes its zero action; a child whose injection
        cannot be predicted keeps its rule. ``plan``: the movable children's injections under ``parts`` (:meth:`plan`);
        ``change``: :meth:`load_change_mw` (MW).
        """
        children, m, margin = self.parent.children, self._meter, self.params.margin_mw
        predicted = self.predicted(plan, ctx, change)
        if not plan:
            return
        over = predicted - (m.params.import_limit_mw - margin)
        under = -predicted - (m.params.export_limit_mw - margin)
        if over <= 0 and under <= 0:
            return
        sign, excess = (1.0, over) if over > 0 else (-1.0, under)  # +1: cut draw; −1: cut injection
        idle = {i: injection_mw(children[i], self._idle[i], ctx) for i in plan}
        # each child's MW it gives back at its zero action (> 0 only on the side that adds to the excess)
        give = {i: sign * (idle[i] - plan[i]) for i in plan if idle[i] is not None and sign * (idle[i] - plan[i]) > 0}
        room = sum(give.values())
        if room <= 0:
            return
        alpha = max(1.0 - excess / room, 0.0)
        for i, g in give.items():
            share = plan[i] + sign * (1.0 - alpha) * g  # the injection it may have (MW)
            scaled = (self._idle[i] + alpha * (parts[i] - self._idle[i])).astype(np.float32)
            p = injection_mw(children[i], scaled, ctx)
            keep = p is not None and sign * (p - share) >= -1e-6
            parts[i], plan[i] = (scaled, p) if keep else (self._idle[i].copy(), idle[i])

    def hold_import(self, parts: list[np.ndarray], plan: dict[int, float], ctx: StepContext, change: float) -> None:
        """With ``hold_import``: where the import predicted under ``parts`` (after :meth:`headroom`) exceeds
        ``import_limit − margin_mw`` (MW), raise the MW setpoints in ``parts`` (physical, changed in place) of the DGs,
        cheapest marginal cost first, then of the batteries (ESS: discharge), each up to its feasible maximum, just
        enough. A DG rises first: it burns fuel, a battery spends energy it may need at a later peak. A DG with
        ``commitment`` that its rule asked off is asked on (and, when it can start, runs at least at its minimum
        output). It sees the last reading, the limit and ``change``, the loads' forecast change
        (:meth:`load_change_mw`). ``plan``: the movable children's injections under ``parts``
        (:meth:`plan`, as :meth:`headroom` left them), updated with them; ``change``: :meth:`load_change_mw` (MW).
        """
        children = self.parent.children
        excess = self.predicted(plan, ctx, change) - (self._meter.params.import_limit_mw - self.params.margin_mw)
        if excess <= 0 or len(plan) < len(self._movable):  # a child that cannot be predicted: the rules stand
            return
        dgs = sorted(self._lift_dgs, key=lambda i: dg_marginal(children[i], plan[i]))
        for i in dgs + self._lift_stores:
            part = parts[i]
            if i in self._switch and part[self._switch[i]] < 0.5:  # a committed DG asked off: ask it on
                part = part.copy()
                part[self._switch[i]] = 1.0
            lo, hi = mw_range(children[i], part)
            p = min(max(plan[i] + excess, lo), hi)  # a DG that starts runs at least at its minimum output
            if p > plan[i]:
                excess -= p - plan[i]
                parts[i] = part
                self._move(parts, plan, i, p, ctx)
            if excess <= 0:
                break


@attrs.frozen
class ReserveParams(SetpointParams):
    requirement_mw: float = quantity("MW", 0.2, ge=0, doc="upward reserve the children must hold together")
    providers: str = text("DG,ESS", doc="comma-separated device classes that can hold reserve")


class Reserve(Setpoint):
    """Setpoints that keep an upward reserve.

    The parent's action is its children's setpoints (as in ``setpoint``). The reserve
    requirement ``R`` MW is allocated among the provider children in proportion to their
    headroom capacity ``h_i = upper_i − lower_i`` (``upper``/``lower``: the MW the device can
    hold over the next step, e.g. an ESS's SOC-limited range):
    ``r_i = min(R·h_i/Σh, h_i)``. Each provider's MW setpoint is then capped at
    ``upper_i − r_i`` so the headroom stays available. ``allocation`` (MW per child) and
    ``shortfall_mw`` (``R − Σ r_i`` when the children cannot cover R) are reported by
    :meth:`info`.
    """

    Params = ReserveParams

    def __init__(self, params: Any, parent: Any) -> None:
        super().__init__(params, parent)
        children = {type(c.device).__name__ for c in parent.children if hasattr(c, "device")}
        kinds = set(check_kinds("providers", params.providers, DISPATCHABLE, children))
        self._providers = [i for i, c in enumerate(parent.children)
                           if hasattr(c, "device") and type(c.device).__name__ in kinds]
        if params.requirement_mw > 0 and not self._providers:  # a misspelt class ("DGG") held no reserve, silently
            raise ValueError(f"params.providers: expected device classes of {parent.id}'s children "
                             f"({', '.join(sorted(children)) or 'none'}), got {params.providers!r}: no child could hold the reserve")
        self.allocation: dict[str, float] = {}
        self.shortfall_mw = 0.0

    def allocate(self, actions: Sequence[Any]) -> dict[int, tuple[float, float]]:
        """``{child index: (reserve MW, setpoint cap MW)}`` for the providers, each in the range it holds under its
        action this step (``actions``: one per child, physical)."""
        ranges = {i: mw_range(self.parent.children[i], actions[i]) for i in self._providers}
        head = {i: max(hi - lo, 0.0) for i, (lo, hi) in ranges.items()}
        total = sum(head.values())
        need = self.params.requirement_mw
        out = {}
        for i, (_, hi) in ranges.items():
            r = min(need * head[i] / total, head[i]) if total > 0 else 0.0
            out[i] = (r, hi - r)
        self.allocation = {self.parent.children[i].id: r for i, (r, _) in out.items()}
        self.shortfall_mw = max(need - sum(r for r, _ in out.values()), 0.0)
        return out

    def directives(self, action: Any, ctx: StepContext) -> Sequence[Directive | None]:
        out = list(super().directives(action, ctx))
        for i, (_, cap) in self.allocate([d.action for d in out]).items():
            part = np.array(out[i].action, dtype=np.float64)
            if part.size and np.isfinite(part[0]):
                part[0] = min(part[0], cap)
            out[i] = Directive(action=part)
        return out

    def info(self) -> dict[str, Any]:
        return {"reserve_mw": dict(self.allocation), "shortfall_mw": self.shortfall_mw,
                "requirement_mw": self.params.requirement_mw}
