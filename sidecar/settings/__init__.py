"""The sidecar's configuration, one concern per module, each lower one imported by the higher ones only:

- ``model``: the parsed values (``Settings``, ``Entry``) and their defaults; no parsing.
- ``parsers``: one function per kind of scalar value (mode, id, seconds, signal, ...); pure.
- ``options``: the table of settings: per setting its file key, environment variable, flag, parser, default
  and help. The command line, the loader, the linter and the documentation's table all derive from it.
- ``arguments``: the command line's grammar (argparse), built from the table.
- ``entries``: one entry of the secrets list (a reference or a template) into an ``Entry``.
- ``entry_set``: the rules over all entries together (names, the env file's names and access).
- ``texts``: reading the files the configuration names (config file, templates): the only file access.
- ``load``: the sources and their precedence; ``settings_from`` (pure: given texts) and ``load_settings``
  (reads the files named, then calls it).
"""
