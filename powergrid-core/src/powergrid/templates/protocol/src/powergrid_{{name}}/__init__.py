"""PowerGrid plugin providing the {{name}} protocol."""

from powergrid_{{name}}.protocol import {{Class}}, {{Class}}Params

__all__ = ["{{Class}}", "{{Class}}Params"]
__version__ = "0.1.0"
