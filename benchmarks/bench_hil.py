"""Modbus round-trip latency against ``powergrid hil serve``, and a policy controlling the served battery for an hour.

Starts ``powergrid hil serve configs/hil_sunspec.yaml`` in its own process (or uses a
running one: ``--connect 127.0.0.1:1502``), then measures on 127.0.0.1

- one Modbus read (W, VA, Var of model 701: function 3, three registers), ``--reads`` times;
- one ``SunSpecDevice`` step (write ``WSet``, read ``W``/``Var``, read ``SoC``), ``--steps`` times,
  ``--step-rate`` per second (within the server's default write limit of 20 per second);

and prints median and 99th percentile in ms. Then a closed-loop policy runs a simulated
hour over Modbus, paced like the server (``--speedup``): it steers the battery's state
of charge, read back over Modbus, towards 60 % (P = 0.5·(soc − 0.6)·E/dt, within ±0.5 MW).

Run with ``nox -s bench`` or ``python benchmarks/bench_hil.py [--connect HOST:PORT] [--speedup X]``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from powergrid.devices import StepContext
from powergrid.env import MultiAgentPowerGridEnv
from powergrid_hil.serve import env_action

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "hil_sunspec.yaml"
CAPACITY_MWH, P_MAX_MW = 2.0, 0.5  # the served battery (configs/hil_sunspec.yaml)
TARGET_SOC, GAIN = 0.6, 0.5  # half the gap per step: the measurement lags one server step


def start_server(speedup: float) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([sys.executable, "-m", "powergrid.cli", "hil", "serve", str(CONFIG), "--port", "0",
                                "--speedup", str(speedup)],
                               stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    match = re.search(r":(\d+) \(", line)
    if not match:
        process.kill()
        raise SystemExit(f"bench_hil: the server did not start: {line!r}")
    return process, int(match.group(1))


def percentiles(samples: list[float]) -> str:
    ms = np.asarray(samples) * 1e3
    return f"median {np.median(ms):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms ({len(ms)} samples)"


def controller(host: str, port: int, steps: int) -> MultiAgentPowerGridEnv:
    return MultiAgentPowerGridEnv.from_config({
        "name": "hil_controller", "network": {"type": "cigre_mv"},
        "time": {"step_minutes": 5, "steps_per_episode": steps},
        "agents": [{"id": "site_bess", "type": "SunSpecDevice", "bus": "Bus 5", "policy": "learned",
                    "params": {"host": host, "port": port, "unit_id": 1, "soc": True, "timeout_s": 1.0,
                               "p_min_mw": -P_MAX_MW, "p_max_mw": P_MAX_MW}}],
    })


def measure(host: str, port: int, reads: int, steps: int, rate: float) -> None:
    from pymodbus.client import ModbusTcpClient

    env = controller(host, port, 1)
    env.reset(seed=0)
    device = env.scenario.agents["site_bess"].device
    ctx = StepContext(dt_h=env.dt_h, profiles={})
    device.step([0.0], ctx)  # scan once
    w = device.points.p
    client = ModbusTcpClient(host, port=port, timeout=1.0, retries=0)
    client.connect()
    read_s = []
    for _ in range(reads):
        t0 = time.perf_counter()
        response = client.read_holding_registers(w.address, count=3, device_id=1)
        read_s.append(time.perf_counter() - t0)
        assert not response.isError(), response
    client.close()
    step_s = []
    for i in range(steps):
        t0 = time.perf_counter()
        device.step([0.1 * np.sin(i / 10)], ctx)
        step_s.append(time.perf_counter() - t0)
        assert device.comm_ok, device.last_error
        time.sleep(1.0 / rate)
    device.close()
    print(f"Modbus read (3 registers):     {percentiles(read_s)}")
    print(f"SunSpecDevice step (1 w, 2 r): {percentiles(step_s)}")


def simulated_hour(host: str, port: int, speedup: float) -> None:
    env = controller(host, port, 12)
    env.reset(seed=0)
    device = env.scenario.agents["site_bess"].device
    period = env.dt_h * 3600.0 / speedup
    print(f"a simulated hour: 12 steps of 5 min, one every {period:g} s")
    print(f"{'min':>4}{'setpoint MW':>13}{'measured MW':>13}{'SOC':>8}{'faults':>8}")
    due = time.monotonic()
    faults = 0
    while env.agents:
        soc = device.soc if np.isfinite(device.soc) else TARGET_SOC
        setpoint = float(np.clip(GAIN * (soc - TARGET_SOC) * CAPACITY_MWH / env.dt_h, -P_MAX_MW, P_MAX_MW))
        _, _, _, _, infos = env.step({"site_bess": env_action(env, "site_bess", np.array([setpoint]))})
        faults += len(infos["site_bess"]["comm"])
        print(f"{env.tick * 5:>4}{setpoint:>13.4f}{device.p_mw:>13.4f}{device.soc:>8.4f}"
              f"{len(infos['site_bess']['comm']):>8}")
        due += period
        time.sleep(max(due - time.monotonic(), 0.0))
    device.close()
    print(f"{faults} communication fault(s) recorded")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connect", help="HOST:PORT of a running `powergrid hil serve` (default: start one)")
    parser.add_argument("--speedup", type=float, default=600.0, help="pace of the simulated hour (and of the server)")
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--step-rate", type=float, default=15.0, help="device steps per second while measuring")
    args = parser.parse_args()
    process = None
    if args.connect:
        host, port = args.connect.rsplit(":", 1)[0], int(args.connect.rsplit(":", 1)[1])
    else:
        process, port = start_server(args.speedup)
        host = "127.0.0.1"
    try:
        measure(host, port, args.reads, args.steps, args.step_rate)
        simulated_hour(host, port, args.speedup)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
