"""PowerGrid dataset pack: profile providers for CAISO, ERCOT, NYISO, SimBench, pvlib and synthetic data.

Installing the distribution registers the providers through the ``powergrid``
entry-point group; a scenario names them under ``datasets:`` per profile role.
"""

from __future__ import annotations

__version__ = "0.1.0"

from powergrid_datasets.timeseries import TimeSeries

__all__ = ["TimeSeries", "__version__"]
