"""Command-line interface: typer commands that parse flags, build settings and call in."""
