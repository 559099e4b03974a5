"""Helpers shared by the identity, gateway and platform tests: the Kubeflow-style Dex
config they run with, starting provider and gateway processes, and logging in."""
