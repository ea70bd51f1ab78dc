"""The subcommands of ``recfw``, one module each, imported only when used.

``recfw --version`` and ``recfw --help`` import none of them (they pull in the
media stack); ``recfw --help`` shows the one-line help kept here, which
``tests/core/test_loading.py`` checks against each command's own.
"""

#: name -> (module, attribute, the command's one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": (
        "recfw.commands.demo",
        "demo_command",
        "Record a meeting of synthetic participants and store the file.",
    ),
    "plugins": (
        "recfw.commands.plugins",
        "plugins_command",
        "List loaded plugins with what they provide, and plugins that failed to load.",
    ),
    "settings": (
        "recfw.commands.settings",
        "settings_group",
        "Validate and show recording settings.",
    ),
    "run": (
        "recfw.commands.run",
        "run_command",
        "Serve room pages and record real meetings over WebRTC.",
    ),
    "join": (
        "recfw.commands.join",
        "join_command",
        "Join the room at URL with a synthetic (or --file) participant over WebRTC.",
    ),
    "spool": (
        "recfw.commands.spool",
        "spool_group",
        "Recordings waiting on local disk: storing failed, or recfw stopped mid-recording.",
    ),
    "keys": (
        "recfw.commands.keys",
        "keys_group",
        "API keys: `Authorization: Bearer <key>` on every /v1 request.",
    ),
    "db": (
        "recfw.commands.db",
        "db_group",
        "recfw's database: SQLite in .recfw/ by default, or PostgreSQL.",
    ),
    "worker": (
        "recfw.commands.worker",
        "worker_command",
        "Record one room (a JSON job on stdin or in a file), or take jobs from a queue (--queue).",
    ),
    "workers": (
        "recfw.commands.workers",
        "workers_command",
        "List the queue's recorder workers: load, capacity, jobs, and the admission rule.",
    ),
    "webhooks": (
        "recfw.commands.webhooks",
        "webhooks_group",
        "Webhook endpoints and deliveries (kept in the database; see docs/webhooks.md).",
    ),
}
