"""Example command plugin: ``powergrid tree SCENARIO``."""
