"""Clear-sky PV output from pvlib: plane-of-array irradiance of a fixed panel, per unit of 1000 W/m².

For each time (interval midpoint) pvlib gives the solar position and the
clear-sky GHI, DNI and DHI (``model``: ineichen, haurwitz or simplified_solis)
at ``latitude``/``longitude``/``altitude``; the isotropic transposition gives
the irradiance on a panel at ``tilt`` and ``azimuth``. PV output in pu is
``min(1, POA / 1000 W/m²)`` — STC rating, no temperature or inverter losses —
so it is 0 at night and at most 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from powergrid_datasets.errors import DataUnavailableError


def _pvlib():
    try:
        import pvlib
    except ImportError:
        raise DataUnavailableError("the pvlib provider needs pvlib: pip install 'powergrid-datasets[pvlib]'") from None
    return pvlib


def clear_sky_pu(times: pd.DatetimeIndex, *, latitude: float, longitude: float, altitude: float = 0.0,
                 tilt: float = 20.0, azimuth: float = 180.0, model: str = "ineichen") -> np.ndarray:
    """Clear-sky PV output (pu of STC rating) at ``times`` (UTC)."""
    pvlib = _pvlib()
    location = pvlib.location.Location(latitude, longitude, tz="UTC", altitude=altitude)
    sky = location.get_clearsky(times, model=model)
    position = location.get_solarposition(times)
    poa = pvlib.irradiance.get_total_irradiance(
        surface_tilt=tilt, surface_azimuth=azimuth,
        solar_zenith=position["apparent_zenith"], solar_azimuth=position["azimuth"],
        dni=sky["dni"], ghi=sky["ghi"], dhi=sky["dhi"], model="isotropic",
    )["poa_global"]
    return np.clip(np.nan_to_num(poa.to_numpy(dtype=np.float64) / 1000.0), 0.0, 1.0)
