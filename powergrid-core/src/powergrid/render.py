"""Pictures of an environment's last step: the voltage profile with its band, and the device dispatch.

Needs matplotlib (``pip install "powergrid-core[plot]"``); used by ``MultiAgentPowerGridEnv.render``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError('rendering needs matplotlib: pip install "powergrid-core[plot]"') from None
    return plt


def draw(env: Any, figure: Any = None) -> Any:
    """Draw bus voltages (pu, with ``v_min_pu``/``v_max_pu``) and every device's P (MW) into ``figure``."""
    plt = _pyplot()
    fig = figure or plt.figure(figsize=(9, 4.5), dpi=80)
    fig.clf()
    volts, dispatch = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    rw = env.config.reward
    result = env.last_result
    vm = result.vm_pu if result is not None else np.ones(len(env.net.bus))
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
    fig.tight_layout()
    return fig


def to_rgb(fig: Any) -> np.ndarray:
    """The figure's pixels as an ``H × W × 3`` uint8 array."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
