"""recfw-azure: store recfw recordings in Azure Blob Storage (``provider = "azure"``)."""

from importlib.metadata import PackageNotFoundError, version

from .sink import AzureSink, container_name_errors

__all__ = ["AzureSink", "container_name_errors"]
try:
    __version__ = version("recfw-azure")  # the one version string is in pyproject.toml
except PackageNotFoundError:  # imported from a source checkout (the project's own tests)
    __version__ = "0+unknown"
