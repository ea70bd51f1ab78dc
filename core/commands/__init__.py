"""The subcommands of ``recfw``, one module each."""

from .plugins import plugins_command
from .settings import settings_group

COMMANDS = [plugins_command, settings_group]
