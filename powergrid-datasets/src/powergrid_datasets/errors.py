"""Errors of the dataset pack; each names the file, URL or setting to look at."""

from __future__ import annotations

from powergrid.errors import PowerGridError


class DatasetError(PowerGridError):
    """Base class of dataset errors."""


class DataFileError(DatasetError, ValueError):
    """A data file cannot be used: wrong report, missing column, empty, corrupt. The message starts with the file."""

    def __init__(self, path: object, message: str):
        self.path = str(path)
        super().__init__(f"{path}: {message}")


class DataUnavailableError(DatasetError, FileNotFoundError):
    """No data offline and no download possible (or downloads are off)."""


class DownloadError(DatasetError, OSError):
    """A download failed or kept arriving corrupt."""


class CacheNotWritableError(DatasetError, PermissionError):
    """The cache folder cannot be created or written to (an OSError, so a scenario's run names the dataset's YAML path)."""
