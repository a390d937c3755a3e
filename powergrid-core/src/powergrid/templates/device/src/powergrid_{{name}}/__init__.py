"""PowerGrid plugin providing the {{Class}} device."""

from powergrid_{{name}}.device import {{Class}}, {{Class}}Params

__all__ = ["{{Class}}", "{{Class}}Params"]
__version__ = "0.1.0"
