"""Task 3's import limit is one the battery can hold on the train days, so its safety term measures the policy.

Per train day (reset seeds of the task's config): the substation import with the battery idle and the PV at full
output (hourly AC flow), then the least import limit (MW) that some schedule of the battery holds every hour, by an
LP over the battery's power, energy, SoC and efficiency limits with the feeder lossless (a battery MW moves the
import by one MW). The old 3.5 MW contract failed this on 25 of these 40 days; 5 MW holds on all of them (and on
251 of the train config's reset seeds 0–251; 4.5 MW on 38 of 40), and an idle battery crosses it on 23 of them.
"""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv

from ._contract import idle_import, least_limit

SEEDS = range(40)


def test_the_battery_can_hold_the_import_limit_on_every_train_day_and_idle_crosses_it():
    pytest.importorskip("powergrid_datasets")
    from powergrid.bench.tasks import task_named

    env = MultiAgentPowerGridEnv.from_config(task_named("peak_shaving").config_path())
    ess, limit = env.scenario.agents["ess"].device, env.scenario.agents["meter"].device.params.import_limit_mw
    assert ess.params.soc_init_spread == 0.0  # the LP starts every day from soc_init
    idle = [idle_import(env, seed, "site", ("ess",), "pv", "meter")[0] for seed in SEEDS]
    least = np.array([least_limit(imports, ess, env.dt_h) for imports in idle])
    assert (least <= np.array([i.max() for i in idle]) + 1e-9).all()  # idling is one schedule: never above its peak
    held = least <= limit
    assert held.all(), (limit, f"held on {held.sum()}/{len(held)} days", np.round(np.sort(least)[-5:], 3))
    # and it binds: an idle battery crosses it on at least a quarter of the days (23 of 40 at 5 MW; at 8 MW on none,
    # where safety would measure nothing)
    crossed = np.array([i.max() > limit for i in idle])
    assert crossed.mean() >= 0.25, (limit, f"idle crosses it on {crossed.sum()}/{len(crossed)} days")
