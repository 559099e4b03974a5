"""The benchmarks' shared parts: processes, load generators, profiling, results and reports.

Scenario scripts (``bench/serving.py``, ``bench/gateway.py``) measure and write one JSON file
per run; ``report`` and the ``render_*`` modules turn that file, and only it, into Markdown.
"""
