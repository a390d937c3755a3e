"""Power-flow solvers: the pandapower reference and fast backends share one interface."""

from powergrid.solvers.base import Injections, PowerFlowResult, PowerFlowSolver

__all__ = ["Injections", "PowerFlowResult", "PowerFlowSolver"]
