"""Unit tests: the pure logic called directly, without a database. ``pytest tests/unit`` runs
them alone in seconds."""
