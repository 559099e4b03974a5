"""S3 client settings, read from the environment variables KServe's storage initializer reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelport.control.storage.errors import StorageError


@dataclass(frozen=True)
class S3Settings:
    """S3 client settings from KServe's environment variables (see its s3_secret.go)."""

    endpoint_url: str | None = None
    key: str | None = None
    secret: str | None = None
    token: str | None = None
    region: str | None = None
    verify: bool | str = True
    anonymous: bool = False
    virtual_hosted: bool = False
    connect_timeout_s: int = 15
    read_timeout_s: int = 30
    max_attempts: int = 3

    def __repr__(self) -> str:
        # Keeps the secret out of logs and tracebacks that print locals.
        return f"S3Settings(endpoint_url={self.endpoint_url!r}, region={self.region!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> S3Settings:
        """Read AWS_*/S3_* variables as KServe's storage initializer does."""
        verify: bool | str = True
        if env.get("S3_VERIFY_SSL", "").lower() in ("0", "false"):
            verify = False
        elif env.get("AWS_CA_BUNDLE"):
            verify = env["AWS_CA_BUNDLE"]
        anonymous = env.get("AWS_ANONYMOUS_CREDENTIAL") or env.get("awsAnonymousCredential")
        return cls(
            endpoint_url=env.get("AWS_ENDPOINT_URL")
            or _endpoint_url(env.get("S3_ENDPOINT", ""), env.get("S3_USE_HTTPS", "")),
            key=env.get("AWS_ACCESS_KEY_ID") or None,
            secret=env.get("AWS_SECRET_ACCESS_KEY") or None,
            token=env.get("AWS_SESSION_TOKEN") or None,
            region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or None,
            verify=verify,
            anonymous=(anonymous or "").lower() in ("true", "1"),
            virtual_hosted=env.get("S3_USER_VIRTUAL_BUCKET", "").lower() == "true",
            connect_timeout_s=_int_env(env, "S3_CONNECT_TIMEOUT", 15),
            read_timeout_s=_int_env(env, "S3_READ_TIMEOUT", 30),
            max_attempts=_int_env(env, "S3_MAX_ATTEMPTS", 3),
        )

    def filesystem_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``s3fs.S3FileSystem``."""
        client: dict[str, Any] = {"verify": self.verify}
        if self.region:
            client["region_name"] = self.region
        config: dict[str, Any] = {
            "connect_timeout": self.connect_timeout_s,
            "read_timeout": self.read_timeout_s,
            "retries": {"max_attempts": self.max_attempts, "mode": "standard"},
        }
        if self.virtual_hosted:
            config["s3"] = {"addressing_style": "virtual"}
        kwargs: dict[str, Any] = {
            "anon": self.anonymous,
            "client_kwargs": client,
            "config_kwargs": config,
            # Each Storage has its own credentials, and every probe must see fresh listings.
            "skip_instance_cache": True,
            "use_listings_cache": False,
        }
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        if self.key and not self.anonymous:
            kwargs.update(key=self.key, secret=self.secret, token=self.token)
        return kwargs


def _endpoint_url(endpoint: str, use_https: str) -> str | None:
    # KServe's getEndpointConfiguration: a scheme in S3_ENDPOINT wins, else S3_USE_HTTPS=0 → http.
    endpoint = endpoint.strip()
    if not endpoint:
        return None
    if endpoint.lower().startswith(("http://", "https://")):
        return endpoint
    scheme = "http" if use_https.strip().lower() in ("0", "false") else "https"
    return f"{scheme}://{endpoint}"


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise StorageError(f"{name} must be an integer, got {value!r}") from None
