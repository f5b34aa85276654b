"""Throughput and memory of bulk loads into PostgreSQL: ``python -m benchmarks --help``."""

from ._report import render_markdown as render_markdown
