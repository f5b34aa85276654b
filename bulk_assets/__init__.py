"""Dagster assets that generate or fetch datasets and bulk-load them into PostgreSQL."""
