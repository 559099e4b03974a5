"""The authenticating gateway: sessions, credentials, skip-auth paths and the upstream proxy.

Behaviour follows Kubeflow's oidc-authservice (cookie ``authservice_session``, callback
``/login/oidc``, headers ``kubeflow-userid``/``kubeflow-groups``); see
docs/compat/dex-authservice-facts.md §7–9.
"""
