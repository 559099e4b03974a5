"""The ``modelport`` command."""

from __future__ import annotations

import typer

from modelport.cli import access, gateway, identity, kubeconfig, login, resources
from modelport.cli.serve import serve
from modelport.cli.up import up

app = typer.Typer(
    rich_markup_mode=None,
    name="modelport",
    help="Self-hostable model serving: KServe V1 and Open Inference Protocol V2, REST and gRPC.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command(no_args_is_help=True)(serve)
app.add_typer(identity.app, name="identity")
app.add_typer(identity.users, name="users")
app.command("gateway")(gateway.gateway)
app.command()(login.login)
app.command()(login.token)
app.command()(login.logout)
app.command()(kubeconfig.kubeconfig)
app.add_typer(access.namespaces, name="namespaces")
app.add_typer(access.tokens, name="tokens")
app.command()(up)
for command in (
    resources.apply,
    resources.get,
    resources.describe,
    resources.delete,
    resources.logs,
    resources.infer,
):
    app.command()(command)


@app.command()
def version() -> None:
    """Print the modelport version."""
    from modelport.version import __version__

    typer.echo(__version__)


def main() -> None:
    """Console-script entry point."""
    app()
