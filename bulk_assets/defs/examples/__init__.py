"""The bundled datasets: three declared in Python (``@dataset``), one in YAML
(``cities/defs.yaml``). Delete this folder to leave them out."""
