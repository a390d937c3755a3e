"""``powergrid hil serve CONFIG [--port P] [--speedup X]``: serve every device of a scenario over Modbus TCP."""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
from collections.abc import Sequence

from powergrid.cli import ArgumentParser, count, number


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="powergrid hil", description="Hardware-in-the-loop tools.")  # one-line errors
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run a scenario paced to the wall clock, every device a Modbus unit")
    p.add_argument("config", help="scenario YAML")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=1502, help="TCP port (0: any free port)")
    p.add_argument("--speedup", type=number(0), default=1.0, help="simulated time per wall-clock time (60: a minute per second)")
    p.add_argument("--map", choices=("sunspec", "registers"), default="sunspec",
                   help="SunSpec models per device type, or the plain register map of docs/hil.md")
    p.add_argument("--framer", choices=("socket", "rtu"), default="socket", help="Modbus TCP, or RTU frames over TCP")
    p.add_argument("--serial", default="", metavar="PORT", help="serve Modbus RTU on this serial port instead of TCP")
    p.add_argument("--baudrate", type=count(1), default=19200, help="with --serial")
    p.add_argument("--allow", action="append", default=None, metavar="ADDRESS", type=_network,
                   help="client address or network allowed to connect (repeat; default: 127.0.0.1 and ::1)")
    p.add_argument("--read-only", action="store_true", help="refuse every write")
    p.add_argument("--max-writes-per-s", type=number(0), default=20.0,
                   help="writes accepted per second, one budget shared by all clients and units")
    p.add_argument("--seed", type=count(0), default=0)
    p.add_argument("--steps", type=count(1), default=None,
                   help="stop after this many steps, each a tick: the physics step unless agents act more often "
                        "(default: run until Ctrl-C)")
    p.add_argument("--duration", type=number(0), default=None, help="stop after this many wall-clock seconds")
    return parser


def _network(text: str) -> str:
    """An argparse type: an IP address or network (``192.168.1.0/24``)."""
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an IP address or network such as 192.168.1.0/24, got {text!r}") from None
    return text


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace) -> int:
    from powergrid.clock import format_duration
    from powergrid_hil.serve import ScenarioServer
    from powergrid_hil.server import LOCALHOST

    served = ScenarioServer(args.config, registers=args.map, seed=args.seed, host=args.host, port=args.port,
                            allow=args.allow or LOCALHOST, read_only=args.read_only,
                            max_writes_per_s=args.max_writes_per_s, framer=args.framer, serial_port=args.serial,
                            baudrate=args.baudrate)
    env = served.env
    period, physics_s = env.tick_s / args.speedup, round(env.dt_h * 3600)
    step = f"a {env.dt_h * 60:g}-minute step" if env.tick_s == physics_s else \
        f"a {format_duration(env.tick_s)} tick ({format_duration(physics_s)} physics steps)"
    with served:
        where = f"serial {args.serial} (RTU, {args.baudrate} Bd)" if args.serial else \
            f"{args.host}:{served.port} ({args.framer})"
        print(f"serving {env.config.name} on {where}, {args.map} map: {step} every {period:g} s", flush=True)
        for unit_id, agent, kind, access in served.table():
            print(f"  unit {unit_id:>3}  {agent:<16} {kind:<16} {access}", flush=True)
        reported = [0]

        def report(s: ScenarioServer) -> None:
            if s.pace.overruns > reported[0]:
                reported[0] = s.pace.overruns
                print(f"overrun at step {s.pace.steps}: {s.pace.overruns} so far "
                      f"(worst {s.pace.worst_late_s * 1e3:.1f} ms late)", flush=True)

        signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop: the same clean end as Ctrl-C
        try:
            pace = served.run(speedup=args.speedup, steps=args.steps, duration_s=args.duration, on_step=report)
        except KeyboardInterrupt:
            pace = served.pace
        stats = ", ".join(f"{k} {v}" for k, v in sorted(served.server.stats.items())) or "no requests"
        print(f"stopped: {pace.summary()}; requests: {stats}", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from powergrid.errors import PowerGridError

    try:
        return _serve(build_parser().parse_args(list(argv or [])))
    except (PowerGridError, FileNotFoundError, OSError, ValueError) as exc:
        print(f"powergrid: error: {exc}", file=sys.stderr)
        return 2
