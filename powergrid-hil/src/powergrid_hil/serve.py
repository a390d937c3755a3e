"""Serve every device of a scenario over Modbus while the simulation runs, paced to the wall clock.

:class:`ScenarioServer` builds the environment of a scenario and gives each
device agent one unit id (1, 2, … in the order of the scenario file). Devices
that a client drives are served with their controls: learned device agents, and
the children of a learned grid agent with the ``setpoint`` protocol (whose action
is its children's actions, in order). Their actions at each step come from what
clients wrote (a write made during step ``k`` takes effect at step ``k + 1``);
every register image shows its device after each step. Other devices are served
read-only (they follow their own policy), and so is a driven device none of whose
action entries has a SunSpec control (an HVAC's ``u``, EV chargers): it follows its
own rule; other learned grid agents act by their own rule.

A step is one tick of the environment: the physics step, or shorter in a
multi-rate scenario whose agents act more often (docs/time.md). There a write to
a device driven by an agent that does not act at every tick takes effect at that
agent's next action; a write to a child of a setpoint parent travels in the
parent's action, so at the parent's next action (and the child's first action at
or after it). A child reached over a non-ideal link (delay, loss, capacity) is
refused at construction (:class:`~powergrid.config.ConfigError` at its ``link``):
its directive would apply a write late, after the child's own newer action (the
served value going backwards), or lose it with nothing on the Modbus side. :meth:`ScenarioServer.run` steps every ``tick_s / speedup``
seconds of wall time. A step that starts late is an overrun (counted, with the
worst lateness); the schedule then restarts from now rather than bursting to catch up.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from powergrid.devices import StepContext
from powergrid_hil.registers import RegisterMap
from powergrid_hil.server import ModbusServer, RegisterUnit, Unit


@attrs.define
class Pace:
    """Wall-clock pacing statistics."""

    steps: int = 0
    overruns: int = 0
    worst_late_s: float = 0.0
    step_s: deque[float] = attrs.Factory(lambda: deque(maxlen=10_000))  # compute time of the last steps

    def summary(self) -> str:
        busy = float(np.median(list(self.step_s))) * 1e3 if self.step_s else 0.0
        return (f"{self.steps} steps, {self.overruns} overruns (worst {self.worst_late_s * 1e3:.1f} ms late), "
                f"median step {busy:.1f} ms")


def env_action(env: Any, agent_id: str, physical: Any = None) -> Any:
    """What ``agent_id`` sends for ``physical`` (device units; None: its own rule), in the env's action convention."""
    return env.rule_action(agent_id) if physical is None else env.action_from_physical(agent_id, physical)


class ScenarioServer:
    """The scenario ``config`` (path or mapping) served over Modbus; ``registers="sunspec"`` or a RegisterMap."""

    def __init__(self, config: str | Path | dict[str, Any], *, registers: str | RegisterMap = "sunspec",
                 seed: int = 0, **server: Any) -> None:
        from powergrid.env import MultiAgentPowerGridEnv
        from powergrid_hil.sunspec_unit import SunSpecUnit

        self.env = MultiAgentPowerGridEnv.from_config(config)
        self.seed = seed
        self.env.reset(seed=seed)
        scenario = self.env.scenario
        agents = scenario.device_agents
        devices = {a.id for a in agents}
        #: learned grid agents with the setpoint protocol → their children (their action is the children's, in order)
        self.parents: dict[str, list[str]] = {}
        for aid in self.env.possible_agents:
            agent = scenario.agents[aid]
            children = [c.id for c in agent.children]
            if type(getattr(agent, "protocol", None)).__name__ == "Setpoint" and set(children) <= devices:
                self.parents[aid] = children
        self._refuse_links()
        controlled = set(self.env.possible_agents).union(*self.parents.values())
        self.unit_of: dict[str, int] = {}
        units: dict[int, Unit] = {}
        for unit_id, agent in enumerate(agents, start=1):
            if unit_id > 247:
                raise ValueError(f"{len(agents)} devices: Modbus has unit ids 1..247 only")
            controls = agent.id in controlled and int(np.prod(agent.device.action_space.shape or (1,))) > 0
            if registers == "sunspec":
                unit: Unit = SunSpecUnit(agent.device, name=agent.id, unit_id=unit_id, controls=controls)
            else:
                unit = RegisterUnit(agent.device, registers if isinstance(registers, RegisterMap) else None)
                if not controls:
                    unit.writable = frozenset()
            units[unit_id] = unit
            self.unit_of[agent.id] = unit_id
        self.units = units
        self.server = ModbusServer(units, **server)
        self.pace = Pace()
        self.episodes = 0

    def _refuse_links(self) -> None:
        """A served child of a setpoint parent behind a non-ideal down link is a config error (see the module doc)."""
        from powergrid.clock import format_duration

        config = self.env.config
        agents = {a.id: a for a in config.agents}
        for parent, children in self.parents.items():
            for child in children:
                link = agents[child].down
                if link is None:
                    continue
                what = ", ".join(part for part in (f"{format_duration(link.delay_s)} delay" if link.delay_s else "",
                                                   f"{link.loss:.0%} loss" if link.loss else "",
                                                   f"capacity {link.capacity}" if link.capacity else "") if part)
                periods = (f"{parent} acts every {format_duration(agents[parent].period_s)}, {child} every "
                           f"{format_duration(agents[child].period_s)}")
                raise config.source.error(
                    f"{agents[child].path}.link",
                    f"hil serve drives {child!r} through its setpoint parent {parent!r} ({periods}), and its link from "
                    f"{parent!r} is not ideal ({what}): a client's write would take effect late, even after a newer "
                    f"one (the served value going backwards), or be lost with nothing on the Modbus side; serve it "
                    f"with an ideal down link (no link, or link: {{up: ...}} only)")

    @property
    def port(self) -> int:
        return self.server.port

    def table(self) -> list[tuple[int, str, str, str]]:
        """``(unit id, agent, device type, access)`` of every served device."""
        rows = []
        for agent in self.env.scenario.device_agents:
            unit = self.units[self.unit_of[agent.id]]
            rows.append((self.unit_of[agent.id], agent.id, type(agent.device).__name__,
                         "read/write" if unit.writable else "read-only"))
        return rows

    def step(self) -> None:
        """One simulation step with the setpoints accepted so far; then publish (reset at the episode's end)."""
        env = self.env
        ctx = env.ctx  # the step about to be taken (the env sets it up after each step and at reset)
        with self.server.lock:
            own = {aid: self.units[self.unit_of[aid]].action(ctx) for aid in env.agents
                   if aid in self.unit_of and self.units[self.unit_of[aid]].writable}  # the rest: their own rule
            for aid, children in self.parents.items():
                if aid in env.agents:
                    parts = [np.asarray(self._physical(c, ctx), np.float64).reshape(-1) for c in children]
                    size = int(np.prod(env.action_space(aid).shape))
                    flat = np.concatenate(parts) if parts else np.zeros(0)
                    own[aid] = np.concatenate([flat, np.zeros(size - flat.size)])  # horizontal-protocol parts: 0
        actions = {aid: env_action(env, aid, own.get(aid)) for aid in env.agents}
        env.step(actions)
        if env.ended:  # the last tick, or a failed flow that terminates the episode (also without learned agents)
            self.episodes += 1
            env.reset(seed=self.seed + self.episodes)
        self.server.publish()

    def _physical(self, agent_id: str, ctx: StepContext) -> Any:
        """What device agent ``agent_id`` does at the step of ``ctx`` (device units): the clients' writes, or its
        own rule when its unit has no control (no SunSpec point for any of its action entries), at the price its
        internal policy would see (:meth:`MultiAgentPowerGridEnv.physical_rule`)."""
        unit = self.units[self.unit_of[agent_id]]
        return unit.action(ctx) if unit.writable else self.env.physical_rule(agent_id)

    def run(self, *, speedup: float = 1.0, steps: int | None = None, duration_s: float | None = None,
            on_step: Callable[[ScenarioServer], None] | None = None,
            sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> Pace:
        """Step (one tick) every ``tick_s / speedup`` seconds until ``steps`` steps or ``duration_s`` seconds (None:
        forever)."""
        period = self.env.tick_s / float(speedup)
        start = clock()
        due = start
        while (steps is None or self.pace.steps < steps) and (duration_s is None or clock() - start < duration_s):
            now = clock()
            if now < due:
                sleep(due - now)
                now = clock()
            late = now - due
            if late > 0.05 * period + 1e-3:
                self.pace.overruns += 1
                self.pace.worst_late_s = max(self.pace.worst_late_s, late)
                due = now
            began = clock()
            self.step()
            self.pace.step_s.append(clock() - began)
            self.pace.steps += 1
            if on_step is not None:
                on_step(self)
            due += period
        return self.pace

    def __enter__(self) -> ScenarioServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
