"""Example network plugin: ``radial_feeder``, a template that takes parameters."""
