"""PowerGrid protocol pack: coordination mechanisms registered through the ``powergrid`` entry point."""

__version__ = "0.1.0"
