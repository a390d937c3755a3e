"""Entry-point plugin of powergrid-protocols: vertical and horizontal protocols and message channels."""

from __future__ import annotations

from powergrid import PluginRecord, hookimpl


@hookimpl
def powergrid_register_protocols() -> list[PluginRecord]:
    p = "powergrid_protocols"
    v = f"{p}.vertical"
    c = f"{p}.channel"
    return [
        # vertical (owned by a parent agent)
        PluginRecord("price_signal", f"{v}:PriceSignal", "broadcast a price to children"),
        PluginRecord("setpoint", f"{v}:Setpoint", "split the parent's action into child setpoints"),
        PluginRecord("reserve", f"{v}:Reserve", "setpoints that keep an upward reserve allocated by headroom"),
        # horizontal (owned by the environment)
        PluginRecord("p2p_trading", f"{p}.p2p:P2PTrading", "uniform-price k-double auction among GridAgents"),
        PluginRecord("consensus", f"{p}.consensus:Consensus", "gossip average consensus over a communication graph"),
        PluginRecord("admm", f"{p}.admm:ADMMDispatch", "distributed economic dispatch by exchange ADMM"),
        PluginRecord("lmp_market", f"{p}.lmp:LMPMarket", "DC-OPF nodal market; LMPs published to GridAgents"),
        PluginRecord("droop", f"{p}.droop:Droop", "quasi-static P-f and Q-V droop"),
        PluginRecord("volt_var", f"{p}.volt_var:VoltVar", "IEEE 1547-2018 volt-var (Category B default)"),
        # message channels
        PluginRecord("ideal", f"{c}:IdealChannel", "channel without delay, loss or capacity limit"),
        PluginRecord("lossy", f"{c}:LossyChannel", "channel with delay (ticks), seeded loss and capacity"),
    ]
