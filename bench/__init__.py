"""Benchmarks of modelport against its peers; run the scenarios as ``python -m bench.NAME``."""
