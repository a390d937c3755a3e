"""Locational marginal prices: the DC-OPF market (:mod:`.dcopf`, pure) and its protocol (:mod:`.market`)."""

from powergrid_protocols.lmp.dcopf import DCNetwork, MarketResult, Offer, clear_market, dc_network, make_network
from powergrid_protocols.lmp.market import LMPMarket, LMPParams

__all__ = ["DCNetwork", "LMPMarket", "LMPParams", "MarketResult", "Offer", "clear_market", "dc_network",
           "make_network"]
