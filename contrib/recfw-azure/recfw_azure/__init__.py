"""recfw-azure: store recfw recordings in Azure Blob Storage (``provider = "azure"``)."""

from importlib.metadata import version

from .sink import AzureSink, container_name_errors

__all__ = ["AzureSink", "container_name_errors"]
__version__ = version("recfw-azure")  # the one version string is in pyproject.toml
