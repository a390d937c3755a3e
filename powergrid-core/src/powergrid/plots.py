"""PNG plots of a run and of a network (``powergrid run --plot``, ``powergrid network plot``).

Needs matplotlib (``pip install "powergrid-core[plot]"``). Figures are drawn without pyplot
(no window, no global state) and written only where the caller says.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from powergrid.slacks import slack_buses


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError('plots need matplotlib: pip install "powergrid-core[plot]"') from None
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


class EpisodeRecord:
    """Per-step series of one episode: bus-voltage envelope (pu, over the in-service buses: an out-of-service bus
    is 0 pu in the flow), device P (MW) and state, the energy price ($/MWh) and the microgrids' exchanges (MW, + imports)."""

    def __init__(self, env: Any) -> None:
        self.name = env.config.name
        self.hours: list[float] = []
        self.v_min: list[float] = []
        self.v_mean: list[float] = []
        self.v_max: list[float] = []
        self.price: list[float] = []
        self.p_mw: dict[str, list[float]] = defaultdict(list)
        self.soc: dict[str, list[float]] = defaultdict(list)
        self.import_mw: dict[str, list[float]] = defaultdict(list)
        self.trades_mw: dict[str, list[tuple[float, float]]] = defaultdict(list)  # (h, MW) when traded
        self.band = (env.config.reward.v_min_pu, env.config.reward.v_max_pu)
        self._on = env.net.bus.in_service.to_numpy(bool)

    def record(self, env: Any, hours: float, price: float) -> None:
        """Add the step that just ran: ``hours`` since the episode start (h), the price it ran at ($/MWh)."""
        result = env.last_result
        vm = np.asarray(result.vm_pu[self._on] if result is not None else [np.nan], dtype=float)
        self.hours.append(hours)
        self.v_min.append(float(np.nanmin(vm)))
        self.v_mean.append(float(np.nanmean(vm)))
        self.v_max.append(float(np.nanmax(vm)))
        self.price.append(price)
        for d in env.scenario.device_agents:
            state = d.device.state_dict()
            if "import_mw" in state:
                self.import_mw[d.id].append(state["import_mw"])
                continue
            self.p_mw[d.id].append(d.device.p_mw)
            if "soc" in state:
                self.soc[d.id].append(state["soc"])
        for proto in env.scenario.horizontal:
            for agent_id, mw in (proto.info().get("trades_mw") or {}).items():
                self.trades_mw[agent_id].append((hours, float(mw)))

    def save(self, folder: Path) -> list[Path]:
        """Write ``<name>_voltages.png``, ``<name>_dispatch.png`` and ``<name>_market.png`` into ``folder``; a
        symbolic link there at one of those names is refused (:func:`powergrid.cli.output_file`), never written through."""
        from powergrid.cli import output_file

        paths = [output_file(folder, f"{self.name}_{kind}.png") for kind in ("voltages", "dispatch", "market")]
        folder.mkdir(parents=True, exist_ok=True)
        return [self._voltages(paths[0]), self._dispatch(paths[1]), self._market(paths[2])]

    def _voltages(self, path: Path) -> Path:
        fig = _figure(9, 4)
        ax = fig.subplots()
        t = np.asarray(self.hours)
        ax.fill_between(t, self.v_min, self.v_max, step="post", color="tab:blue", alpha=0.3,
                        label="in-service buses: min to max")
        ax.step(t, self.v_mean, where="post", color="tab:blue", lw=1, label="mean")
        ax.axhspan(*self.band, color="tab:green", alpha=0.1, label=f"band {self.band[0]:g}–{self.band[1]:g} pu")
        for v in self.band:
            ax.axhline(v, color="tab:green", lw=0.8, ls="--")
        ax.set(xlabel="hour of the episode (h)", ylabel="bus voltage (pu)",
               title=f"{self.name}: bus-voltage envelope")
        ax.legend(loc="best", fontsize=8)
        fig.savefig(path)
        return path

    def _dispatch(self, path: Path) -> Path:
        fig = _figure(9, 6)
        power, soc = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
        t = np.asarray(self.hours)
        for name, series in self.p_mw.items():
            power.step(t, series, where="post", lw=1, label=name)
        power.axhline(0, color="k", lw=0.5)
        power.set(ylabel="P (MW, + injects)", title=f"{self.name}: device dispatch")
        power.legend(loc="upper left", fontsize=7, ncol=max(1, len(self.p_mw) // 6))
        for name, series in self.soc.items():
            soc.step(t, series, where="post", lw=1, label=name)
        soc.set(xlabel="hour of the episode (h)", ylabel="state of charge (1)", ylim=(-0.02, 1.02))
        if self.soc:
            soc.legend(loc="best", fontsize=7)
        else:
            soc.text(0.5, 0.5, "no storage device", ha="center", va="center", transform=soc.transAxes)
        fig.savefig(path)
        return path

    def _market(self, path: Path) -> Path:
        fig = _figure(9, 5)
        price, trade = fig.subplots(2, 1, sharex=True)
        t = np.asarray(self.hours)
        price.step(t, self.price, where="post", color="tab:red", lw=1)
        price.set(ylabel="energy price ($/MWh)", title=f"{self.name}: prices and trades")
        for name, series in self.import_mw.items():
            trade.step(t, series, where="post", lw=1, label=f"{name} (+ imports)")
        for name, points in self.trades_mw.items():
            h, mw = zip(*points)
            trade.plot(h, mw, ".", ms=3, label=f"{name} P2P trade (+ buys)")
        trade.axhline(0, color="k", lw=0.5)
        trade.set(xlabel="hour of the episode (h)", ylabel="exchange (MW)")
        if self.import_mw or self.trades_mw:
            trade.legend(loc="best", fontsize=7)
        else:
            trade.text(0.5, 0.5, "no grid connection or trade", ha="center", va="center", transform=trade.transAxes)
        fig.savefig(path)
        return path


def tree_layout(net: Any) -> dict[int, tuple[float, float]]:
    """Bus index → (x, y): depth from the in-service slacks along closed branches, leaves spread in order."""
    import networkx as nx
    import pandapower.topology as topology

    graph = topology.create_nxgraph(net, respect_switches=True)
    roots = slack_buses(net) or [int(net.bus.index[0])]
    position: dict[int, tuple[float, float]] = {}
    next_row = [0.0]

    def place(tree: Any, node: int, depth: int) -> float:
        children = sorted(tree.successors(node), key=str)
        if not children:
            y = next_row[0]
            next_row[0] += 1.0
        else:
            y = float(np.mean([place(tree, c, depth + 1) for c in children]))
        position[node] = (float(depth), -y)
        return y

    for root in roots:
        if root not in position:
            place(nx.bfs_tree(graph, root), root, 0)
    for bus in net.bus.index:  # buses no closed branch reaches
        if int(bus) not in position:
            position[int(bus)] = (0.0, -next_row[0])
            next_row[0] += 1.0
    return position


def draw_network(net: Any, path: Path, *, title: str, agents: dict[str, list[int]] | None = None) -> Path:
    """Draw ``net`` (buses coloured by zone, lines, transformers dashed, the slack as a square) and mark
    ``agents`` (name → bus indices: a device's bus or a grid agent's zone) with labels; write a PNG."""
    import pandapower.topology as topology

    pos = tree_layout(net)
    fig = _figure(12, max(5.0, 0.09 * len(net.bus) + 2))
    ax = fig.subplots()
    graph = topology.create_nxgraph(net, respect_switches=False, include_trafos=False)
    for a, b in graph.edges():
        (xa, ya), (xb, yb) = pos[int(a)], pos[int(b)]
        ax.plot([xa, xb], [ya, yb], color="0.55", lw=0.8, zorder=1)
    for hv, lv in zip(net.trafo.hv_bus, net.trafo.lv_bus):
        (xa, ya), (xb, yb) = pos[int(hv)], pos[int(lv)]
        ax.plot([xa, xb], [ya, yb], color="tab:brown", lw=1.2, ls="--", zorder=1)
    zones = net.bus.zone.astype(str) if "zone" in net.bus else None
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:red", "tab:cyan", "tab:olive"]
    groups = {z: net.bus.index[zones == z] for z in sorted(set(zones))} if zones is not None else {"buses": net.bus.index}
    for i, (zone, buses) in enumerate(groups.items()):
        xy = np.array([pos[int(b)] for b in buses])
        ax.scatter(xy[:, 0], xy[:, 1], s=14, color=colours[i % len(colours)], zorder=2,
                   label=zone if zone not in ("None", "nan") else "buses")
    slack = np.array([pos[b] for b in slack_buses(net)]).reshape(-1, 2)
    ax.scatter(slack[:, 0], slack[:, 1], s=90, marker="s", color="k", zorder=3, label="slack")
    for name, buses in (agents or {}).items():
        xy = np.array([pos[int(b)] for b in buses])
        if len(buses) == 1:
            ax.scatter(xy[:, 0], xy[:, 1], s=70, marker="*", color="gold", edgecolor="k", lw=0.5, zorder=4)
            ax.annotate(name, xy[0], xytext=(4, 3), textcoords="offset points", fontsize=7, zorder=5)
        else:
            x0, y0 = xy.min(axis=0)
            x1, y1 = xy.max(axis=0)
            ax.add_patch(_rectangle((x0 - 0.4, y0 - 0.6), x1 - x0 + 0.8, y1 - y0 + 1.2))
            ax.annotate(name, (x0 - 0.4, y1 + 0.6), fontsize=9, weight="bold", zorder=5)
    ax.set(title=title, xlabel="branches from the slack", yticks=[])
    ax.legend(loc="best", fontsize=8)
    fig.savefig(path)
    return path


def _rectangle(corner: tuple[float, float], width: float, height: float) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle(corner, width, height, fill=False, ec="k", lw=0.8, ls=":", zorder=3)


def draw_state(env: Any, figure: Any = None) -> Any:
    """The environment's last step: bus voltages (pu; an out-of-service bus is a gap) with the reward's band, and
    every device's P (MW).

    Drawn into ``figure`` (reused between frames), else into a new pyplot-free figure.
    """
    fig = figure if figure is not None else _figure(9, 4.5)
    fig.clf()
    volts, dispatch = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    rw = env.config.reward
    vm = env.last_result.vm_pu if env.last_result is not None else np.ones(len(env.net.bus))
    vm = np.where(env.net.bus.in_service.to_numpy(bool), vm, np.nan)  # an out-of-service bus: a gap, not 0 pu
    volts.plot(np.arange(vm.size), vm, ".-", lw=0.8, ms=3, color="tab:blue")
    volts.axhspan(rw.v_min_pu, rw.v_max_pu, color="tab:green", alpha=0.12, label="band")
    volts.set(xlabel="bus (row)", ylabel="voltage (pu)", title=f"{env.config.name}: tick {env.tick}")
    volts.legend(loc="lower left", fontsize=8)
    devices = env.scenario.device_agents
    p = [d.device.p_mw for d in devices]
    dispatch.barh([d.id for d in devices], p, color=["tab:orange" if v >= 0 else "tab:purple" for v in p])
    dispatch.axvline(0.0, color="k", lw=0.6)
    dispatch.set(xlabel="P (MW, + injects)", title="dispatch")
    dispatch.tick_params(axis="y", labelsize=7)
    return fig


def to_rgb(fig: Any) -> np.ndarray:
    """The figure's pixels as an ``H × W × 3`` uint8 array (rendered by Agg, no window)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
