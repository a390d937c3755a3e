"""``powergrid hil serve CONFIG AGENT --port P``: serve one device of a scenario over Modbus TCP."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="powergrid hil", description="Hardware-in-the-loop tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve a device agent of a scenario as a Modbus TCP server")
    p.add_argument("config", help="scenario YAML")
    p.add_argument("agent", help="id of a device agent in the scenario")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5020)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--step-on", choices=("write", "manual"), default="write")
    p.add_argument("--duration", type=float, default=0.0, help="seconds to serve (0: until Ctrl-C)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from powergrid.builder import build_scenario
    from powergrid.config import EnvConfig
    from powergrid_hil.server import SimulatedDeviceServer

    args = build_parser().parse_args(list(argv or []))
    scenario = build_scenario(EnvConfig.from_yaml(args.config))
    agent = scenario.agents.get(args.agent)
    device = getattr(agent, "device", None)
    if device is None:
        known = ", ".join(a for a, x in scenario.agents.items() if hasattr(x, "device"))
        print(f"powergrid hil: error: {args.agent!r} is not a device agent (device agents: {known})")
        return 2
    server = SimulatedDeviceServer(device, host=args.host, port=args.port, step_on=args.step_on,
                                   rng=np.random.default_rng(args.seed))
    with server:
        m = server.registers
        print(f"serving {args.agent} ({type(device).__name__}) on {args.host}:{server.port}: "
              f"setpoint holding {m.setpoint.address}, P input {m.p.address}"
              + (f", Q input {m.q.address}" if m.q else "") + (f", SOC input {m.soc.address}" if m.soc else ""))
        deadline = time.monotonic() + args.duration if args.duration > 0 else None
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.1)
        except KeyboardInterrupt:
            pass
    return 0
