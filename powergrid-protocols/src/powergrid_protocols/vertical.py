"""Vertical protocols: a parent coordinates its children."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import gymnasium
import numpy as np
from powergrid.devices import StepContext, box
from powergrid.params import quantity
from powergrid.protocols import Directive, VerticalProtocol


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
    as ``ctx.price``. Rule: pass the market price on.
    """

    Params = PriceSignalParams

    def action_space(self) -> gymnasium.spaces.Box:
        return box(self.params.price_min, self.params.price_max)

    def directives(self, action: Any, ctx: StepContext) -> Sequence[Directive | None]:
        price = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        if not np.isfinite(price):
            price = ctx.price
        price = min(max(price, self.params.price_min), self.params.price_max)
        return [Directive(price=price) for _ in self.parent.children]

    def rule_action(self, ctx: StepContext) -> np.ndarray:
        return np.array([min(max(ctx.price, self.params.price_min), self.params.price_max)], np.float32)


class Setpoint(VerticalProtocol):
    """The parent's action is the concatenation of its children's actions (in child order).

    Each part is projected onto that child's action space (its limits) and sent as the
    child's action. Rule: every child's own rule.
    """

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

    def action_space(self) -> gymnasium.spaces.Box:
        return self._space

    def directives(self, action: Any, ctx: StepContext) -> Sequence[Directive | None]:
        flat = np.asarray(action, dtype=np.float64).reshape(-1)
        # each child projects its part onto its own limits and reports the projection
        return [Directive(action=flat[where]) for where in self._slices]

    def rule_action(self, ctx: StepContext) -> np.ndarray:
        parts = [np.asarray(child.rule_action(ctx), np.float32).reshape(-1) for child in self.parent.children]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)
