"""recfw's built-in plugins, registered through the ``recfw`` entry-point group
exactly like third-party plugins (see ``pyproject.toml``)."""
