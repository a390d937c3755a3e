"""Example policy plugin: ``evening_peak``, a time-of-day battery schedule."""
