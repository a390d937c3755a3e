"""RuleResidual's day-ahead features at a step other than an hour: the flagship's 15-min ticks.

Yesterday's load and solar must be yesterday's at the env's step; read hour by hour at 15-min ticks, tick 40 (10:00)
would carry today's 16:00 load and tomorrow's (the future of the day being played). The features' horizon counts
hours at any step: at 15-min ticks every 4th tick, 6 h ahead (it was 6 ticks, 1.5 h).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from powergrid.config import EnvConfig
from powergrid.env import MultiAgentPowerGridEnv

for _pack in ("powergrid_devices", "powergrid_protocols", "powergrid_datasets"):  # the config's devices and data
    pytest.importorskip(_pack)

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "ieee34_3mg.yaml"


def _flagship_on(day: str) -> MultiAgentPowerGridEnv:
    if not CONFIG.is_file():
        pytest.skip(f"{CONFIG} not found (the test runs from a checkout of the repository)")
    data = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    for params in data["datasets"].values():
        params["start"] = day
    env = MultiAgentPowerGridEnv(EnvConfig.from_dict(data))
    env.reset(seed=0)
    return env


def test_yesterday_at_15_min_ticks_is_the_previous_days_episode():
    from powergrid.bench.residual import HORIZON, PRICE_UNIT, RuleResidual, yesterday

    today, before = _flagship_on("2023-06-15"), _flagship_on("2023-06-14")
    assert today.max_ticks == 96
    past = yesterday(today, "load")
    assert past.shape == (96,)
    assert past == pytest.approx(before.ctx.profiles["load"][:96], rel=1e-9)  # the 14th's 96 ticks, not 96 hours
    solar = yesterday(today, "solar")  # the episode's solar is clipped to [0, peak] after resampling; this is not
    assert solar == pytest.approx(before.ctx.profiles["solar"][:96], abs=0.02)
    wrapped = RuleResidual(today)
    obs, _ = wrapped.reset(seed=0)
    n_act = int(np.prod(today.action_space("mg1").shape))
    extra = obs["mg1"][-(n_act + 2 + 3 * HORIZON + 1):]
    price = extra[n_act + 2: n_act + 2 + HORIZON] * PRICE_UNIT
    load = extra[n_act + 2 + HORIZON: n_act + 2 + 2 * HORIZON] + 1.0
    hours = np.arange(HORIZON) * 4  # the ticks of 00:00, 01:00, ..., 05:00
    assert price == pytest.approx(today.ctx.profiles["price"][hours], rel=1e-5)  # $/MWh, 6 h ahead
    assert load == pytest.approx(before.ctx.profiles["load"][hours], rel=1e-5)
