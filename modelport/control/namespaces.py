"""Who may create a namespace through the control API (by applying into one that does not
exist yet; the caller becomes its owner).

People may, as Kubeflow's registration flow lets a new user create their profile, unless the
platform turns that off (``ApiContext.namespace_self_service``, ``modelport up
--namespace-self-service off``); admins always may. Machine identities never may, whatever the
setting: a service account (OAuth2 ``client_credentials``) or an API token that could create
namespaces would let anyone holding a client secret or a leaked token give themselves a place
to deploy code into (issue 9). Their owners give them a role in an existing namespace instead.
"""

from __future__ import annotations

from modelport.access.authz import Authorizer, AuthzError
from modelport.access.caller import Identity

# The gateway names a client_credentials identity client:ID (no email claim in such tokens),
# and local user emails must contain "@", so the prefix marks a service account.
SERVICE_ACCOUNT_PREFIX = "client:"


def is_service_account(identity: Identity) -> bool:
    """Whether the caller authenticated with an OAuth2 client_credentials token."""
    return identity.email.startswith(SERVICE_ACCOUNT_PREFIX)


def creation_denied(
    identity: Identity, namespace: str, *, admin: bool, self_service: bool
) -> str | None:
    """Why the caller may not create ``namespace`` (for a 403), or None if they may."""
    how = f"an admin can create it with `modelport namespaces create {namespace} --owner EMAIL`"
    if identity.token_namespace is not None:
        return (
            f"Namespace {namespace} does not exist, and API tokens cannot create namespaces: {how}."
        )
    if is_service_account(identity):
        return (
            f"Namespace {namespace} does not exist, and service accounts ({identity.email}) "
            f"cannot create namespaces: {how}, then give {identity.email} a role with "
            f"`modelport namespaces add-contributor {namespace} {identity.email} --role edit`."
        )
    if admin or self_service:
        return None
    owner = f"`modelport namespaces create {namespace} --owner {identity.email}`"
    return (
        f"Namespace {namespace} does not exist, and only admins can create namespaces on this "
        f"platform: ask an admin to run {owner}."
    )


def create_owned(authorizer: Authorizer, namespace: str, owner: str) -> str | None:
    """Create ``namespace`` owned by ``owner``; why it cannot be (a 422), or None.

    Like a Kubeflow Profile, the first to deploy into a new namespace owns it. Losing a race
    to someone creating it at the same moment is no error here: the caller's role in the
    namespace is checked next, as for any existing namespace.
    """
    try:
        authorizer.create_namespace(namespace, owner)
    except AuthzError as exc:
        if authorizer.get_namespace(namespace) is None:
            return str(exc)
    return None
