"""The package version, importable from anywhere without import cycles."""

__version__ = "0.1.0"
