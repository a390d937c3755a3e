"""A ``setpoint`` parent predicts its meter's import with the change of the loads behind it as the first of its
horizontal protocols that knows them tells it (``Setpoint.load_change_mw``; one that does not know them, without a
``load_change_mw`` of its own, is passed over): two protocols that both know the loads count their change once.
Before, the answers were summed: twice (r38b, finding 7)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from tests.protocols.test_lmp import _lmp_env_mg1

P2P = {"type": "p2p_trading", "participants": ["mg1", "mg2", "mg3"], "params": {"k": 0.5, "q_max_mw": 0.4}}


@pytest.mark.parametrize("first", ["lmp_market", "p2p_trading"])
def test_the_rule_counts_the_load_change_of_the_first_protocol_that_knows_it_once(first):
    """lmp_market.yaml with a second protocol among the same microgrids ahead of the market: another LMP market (two
    protocols forecast the loads behind mg1's meter) or P2P trading (it does not know them). Tick 7 of day 11 (every
    agent on its rule): the market tells a rise of ≈ 0.3 MW; the setpoint rule's change is that, once, and the import
    it predicts under its action is the last reading's plus it once."""

    def edit(data):
        market = data["horizontal"][0]
        data["horizontal"].insert(0, copy.deepcopy(market) if first == "lmp_market" else P2P)

    env = _lmp_env_mg1(edit)
    mg1 = env.scenario.agents["mg1"]
    other, market = env.scenario.horizontal
    proto = mg1.protocol
    assert proto.horizontal == (other, market)
    env.reset(seed=11)
    for _ in range(7):
        env.step({a: env.rule_action(a) for a in env.agents})
    change = market.load_change_mw(mg1, env.ctx)
    assert 0.28 < change < 0.34
    assert other.load_change_mw(mg1, env.ctx) == (change if first == "lmp_market" else 0.0)
    assert proto.load_change_mw(env.ctx) == change
    action = env.rule_action("mg1")
    parts = [np.asarray(action[s], np.float32) for s in proto._slices]
    plan, predicted = proto.predict(parts, env.ctx)
    assert predicted == pytest.approx(proto.predicted(plan, env.ctx, 0.0) + change, abs=1e-12)
