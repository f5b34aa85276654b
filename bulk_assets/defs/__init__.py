"""The project's definitions, loaded by ``dg`` from this folder: each ``defs.yaml`` is a
component, each ``.py`` file a module of definitions or Pythonic components."""
