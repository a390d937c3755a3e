"""A learned participant on ``env.rule_action`` plays its protocol's rule: the same day as with the agent on its rule
policy. Before, the action's horizontal entries were zeros: no P2P order, a 0 MW market offer, a consensus value of 0."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from powergrid.env import MultiAgentPowerGridEnv

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _day(name: str, learned: bool, seed: int = 1) -> tuple[float, dict[str, float]]:
    """The three microgrids' cost ($) of one day, mg1 learned (on ``rule_action``) or on its rule; mg1's extra
    activity: MWh of its DG (LMP), the agreed value (consensus)."""
    data = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text(encoding="utf-8"))
    if not learned:
        for agent in data["agents"]:
            agent["policy"] = "rule" if agent.get("policy") == "learned" else agent.get("policy", "rule")
    env = MultiAgentPowerGridEnv.from_config(data)
    env.reset(seed=seed)
    proto, dg = env.scenario.horizontal[0], env.scenario.agents["mg1_dg"].device
    cost, seen = 0.0, {"dg": 0.0, "agreed": 0.0}
    while not env.ended:
        env.step({a: env.rule_action(a) for a in env.agents})
        table = env.agent_costs()
        cost += sum(table[g][0] for g in ("mg1", "mg2", "mg3"))
        info = proto.info()
        seen["dg"] += dg.p_mw * env.dt_h
        seen["agreed"] = info.get("average", seen["agreed"])
    return cost, seen


@pytest.mark.parametrize("name", ["consensus_3mg", "lmp_market"])
def test_rule_action_sends_the_protocols_rule(name):
    """Consensus: the DG's marginal cost at its rule setpoint; LMP: the rule's blocks as one offer (they clear
    alike here). Equal to the float32 rounding of the action."""
    learned, on_rule = _day(name, True), _day(name, False)
    assert learned[0] == pytest.approx(on_rule[0], rel=1e-8)
    assert learned[1]["dg"] == pytest.approx(on_rule[1]["dg"], abs=1e-6)  # MWh; a 0 MW offer left it at 0
    assert learned[1]["dg"] > 0.5
    if name == "consensus_3mg":  # $/MWh; mg1's 0 pulled the average down
        assert learned[1]["agreed"] == pytest.approx(on_rule[1]["agreed"], rel=1e-6) and learned[1]["agreed"] > 50.0


def test_rule_action_sends_the_p2p_rule_order():
    """Benchmark task 4 (three learned microgrids) on ``rule_action`` against the same day with every microgrid on its
    rule: the same orders, trades and cost (seed 1: 4.2 MWh traded). Before, no learned agent ordered: nothing traded."""
    days = []
    for learned in (True, False):
        data = yaml.safe_load((CONFIGS / "bench" / "p2p_trading.yaml").read_text(encoding="utf-8"))
        if not learned:
            for agent in data["agents"]:
                agent["policy"] = "rule" if agent.get("policy") == "learned" else agent.get("policy", "rule")
        env = MultiAgentPowerGridEnv.from_config(data)
        env.reset(seed=1)
        proto, traded, cost = env.scenario.horizontal[0], 0.0, 0.0
        while not env.ended:
            env.step({a: env.rule_action(a) for a in env.agents})
            traded += proto.info()["volume_mw"] * env.dt_h  # MWh
            table = env.agent_costs()
            cost += sum(table[g][0] for g in ("mg1", "mg2", "mg3"))
        days.append((traded, cost))
    (traded, cost), (traded_rule, cost_rule) = days
    assert traded_rule > 1.0
    assert traded == pytest.approx(traded_rule, abs=1e-3)
    assert cost == pytest.approx(cost_rule, rel=1e-6)


def test_rule_extra_without_a_setpoint_protocol_reads_the_pending_setpoints():
    """mg1 under ``price_signal`` (its action is one price, not its children's setpoints): the consensus entry is still
    mg1's rule value (its DG's marginal cost at the pending setpoint, $/MWh), not 0."""
    data = yaml.safe_load((CONFIGS / "consensus_3mg.yaml").read_text(encoding="utf-8"))
    data["agents"][0]["protocol"] = {"type": "price_signal"}
    env = MultiAgentPowerGridEnv.from_config(data)
    env.reset(seed=1)
    for _ in range(3):
        env.step({a: env.rule_action(a) for a in env.agents})
    agent, proto = env.scenario.agents["mg1"], env.scenario.horizontal[0]
    value = proto.rule_value(agent, env.ctx)
    own = [float(x) for x in env.physical_rule("mg1").reshape(-1)]
    assert value > 50.0
    assert env.rule_action("mg1") == pytest.approx(env.action_from_physical("mg1", own + [value]), abs=1e-6)
