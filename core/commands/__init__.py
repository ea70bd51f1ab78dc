"""The subcommands of ``recfw``, one module each."""

from .db import db_group
from .demo import demo_command
from .join import join_command
from .keys import keys_group
from .plugins import plugins_command
from .run import run_command
from .settings import settings_group
from .spool import spool_group

COMMANDS = [
    demo_command,
    plugins_command,
    settings_group,
    run_command,
    join_command,
    spool_group,
    keys_group,
    db_group,
]
