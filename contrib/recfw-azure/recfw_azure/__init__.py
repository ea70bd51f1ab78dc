"""recfw-azure: store recfw recordings in Azure Blob Storage (``provider = "azure"``)."""

from .sink import AzureSink, container_name_errors

__all__ = ["AzureSink", "container_name_errors"]
__version__ = "0.1.0"
