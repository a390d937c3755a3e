"""{{Class}}: a vertical protocol that sends every child a price — replace the tariff with yours.

A vertical protocol belongs to a parent agent (``kind: grid``). It defines the parent's action space and turns the
parent's action into one ``Directive`` per child: an action the child applies (``Directive(action=...)``, a setpoint)
and/or a price in $/MWh its own policy responds to (``Directive(price=...)``, read by the child as ``ctx.price``).
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from powergrid.devices import StepContext, box, clip_action
from powergrid.params import quantity
from powergrid.protocols import Directive, VerticalProtocol


@attrs.frozen
class {{Class}}Params:
    """Parameters: each field has a unit and bounds; a bad value is a config error naming the field."""

    peak_start: float = quantity("h", 17.0, ge=0, le=24, doc="start of the daily peak window (local hour)")
    peak_end: float = quantity("h", 21.0, ge=0, le=24, doc="end of the daily peak window (local hour)")
    peak_adder: float = quantity("$/MWh", 100.0, doc="what the rule adds to the price in the peak window")
    max_adder: float = quantity("$/MWh", 200.0, gt=0, doc="the largest adder, either sign, the parent may send")

    def __attrs_post_init__(self) -> None:  # cross-field checks raise ValueError (reported as a config error)
        if self.peak_end <= self.peak_start:
            raise ValueError(f"expected peak_end > peak_start, got {self.peak_end} ≤ {self.peak_start}")
        if abs(self.peak_adder) > self.max_adder:
            raise ValueError(f"expected |peak_adder| ≤ max_adder, got {self.peak_adder} and {self.max_adder}")


class {{Class}}(VerticalProtocol):
    """The parent sends every child one price ``π + a`` $/MWh: the price ``π`` it receives (the market price, or its
    own parent's signal) plus its action ``[a]``, an adder in ``[−max_adder, max_adder]`` $/MWh.

    Children read it as ``ctx.price`` (a battery's rule discharges when it is high); a learned agent below observes it
    (``price_directives``). The energy is still billed at the market price (by the site's ``GridConnection``).
    Rule (``policy: rule``, the default): ``peak_adder`` from ``peak_start`` to ``peak_end`` (local hour,
    ``ctx.hour``), else 0: a time-of-use surcharge on the market price. An ``a`` outside the bounds is clipped, a
    NaN/inf one is 0 (the received price), the distance reported in ``info()["projection"]`` ($/MWh).
    """

    Params = {{Class}}Params
    price_directives = True  # the directives carry prices: learned agents below observe the price they received

    def __init__(self, params: {{Class}}Params, parent) -> None:  # type: ignore[no-untyped-def]
        super().__init__(params, parent)
        self.space = box(-params.max_adder, params.max_adder)  # built once
        self.price, self.projection = math.nan, 0.0

    def action_space(self):  # type: ignore[no-untyped-def]
        """The parent's action: ``[adder]`` $/MWh. A price-only protocol (a fixed tariff) leaves this method out:
        the default is an empty space, the parent then takes no action."""
        return self.space

    def reset(self, rng: np.random.Generator) -> None:
        self.price, self.projection = math.nan, 0.0  # a new episode starts with nothing sent

    def directives(self, action, ctx: StepContext) -> list[Directive]:  # type: ignore[no-untyped-def]
        adder, self.projection = clip_action(action, self.space)  # as the core projects a device's action
        self.price = ctx.price + float(adder[0])
        return [Directive(price=self.price) for _ in self.parent.children]  # one per child, in child order

    def info(self) -> dict[str, float]:
        """Diagnostics of the last step, in the parent's infos under the class name."""
        return {"price": self.price, "projection": self.projection}

    def rule_action(self, ctx: StepContext) -> np.ndarray:
        p = self.params
        return np.array([p.peak_adder if p.peak_start <= ctx.hour < p.peak_end else 0.0], np.float32)
