"""The Ray scenario (`python -m bench.ray`): modelport's Ray backend against its process
backend and Ray Serve on one local two-node Ray cluster; see __main__.py and bench/README.md."""
