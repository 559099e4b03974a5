"""Who may do what: namespaces, their owners and contributors, API tokens (``authz``), and
the authenticated caller (``caller``).

Shared by the gateway (which authenticates and admits requests), the control plane (which
authorizes each operation per namespace) and the CLI (``modelport ns``/``token``), so it sits
below all three and imports none of them.
"""
