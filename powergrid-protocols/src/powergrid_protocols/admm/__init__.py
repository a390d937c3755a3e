"""Distributed economic dispatch by exchange ADMM: the algorithm (:mod:`.dispatch`, pure) and its protocol
(:mod:`.protocol`)."""

from powergrid_protocols.admm.dispatch import (
    Area,
    Dispatch,
    GridTie,
    Unit,
    admm_dispatch,
    area_response,
    centralized_dispatch,
    curve_units,
    dispatch_total,
    dispatch_with_grid,
    ess_units,
    local_step,
    tariff_cost,
    tariff_units,
    unit_cost,
)
from powergrid_protocols.admm.protocol import ADMMDispatch, ADMMParams

__all__ = ["ADMMDispatch", "ADMMParams", "Area", "Dispatch", "GridTie", "Unit", "admm_dispatch", "area_response",
           "centralized_dispatch", "curve_units", "dispatch_total", "dispatch_with_grid", "ess_units",
           "local_step", "tariff_cost", "tariff_units", "unit_cost"]
