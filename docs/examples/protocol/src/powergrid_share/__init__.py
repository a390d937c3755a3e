"""Example protocol plugin: ``proportional_share`` (vertical) and ``generation_cap`` (horizontal)."""
