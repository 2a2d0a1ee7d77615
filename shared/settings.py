"""The one settings loader: pydantic-settings, every variable prefixed ``PORTEVOIX_``.

Secrets may also come from files (``PORTEVOIX_<NAME>_FILE`` is not needed: point
``PORTEVOIX_SECRETS_DIR`` at a folder of files named after the settings, as Kubernetes and
Docker secrets mount them).
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PORTEVOIX_", extra="ignore",
        secrets_dir=os.environ.get("PORTEVOIX_SECRETS_DIR") or None,
    )

    kafka_bootstrap_servers: str = Field("127.0.0.1:19092", description="Kafka bootstrap servers, comma-separated")
    database_url: SecretStr = Field(
        SecretStr("postgresql://portevoix:portevoix@127.0.0.1:15432/portevoix"),
        description="PostgreSQL DSN; each service uses its own schema in it",
    )
    http_host: str = Field("127.0.0.1", description="Address the HTTP API listens on")
    db_pool_min: int = Field(1, ge=1, description="Smallest database pool size")
    db_pool_max: int = Field(10, ge=1, description="Largest database pool size (per replica)")
    consumer_max_records: int = Field(500, ge=1, description="Records per consumer batch (one DB transaction)")
    consumer_max_poll_interval_ms: int = Field(
        300_000, ge=10_000, description="Longest a batch may take before Kafka reassigns its partitions")
    retry_delays_seconds: list[float] = Field(
        [1.0, 10.0, 60.0], description="Delays of the successive retries before a record goes to the DLQ",
    )
    outbox_batch_size: int = Field(1000, ge=1, description="Events published per relay round")
    outbox_poll_interval_seconds: float = Field(1.0, gt=0, description="Relay poll when no NOTIFY wakes it")
    kafka_send_timeout_seconds: float = Field(
        5.0, gt=0, description="How long an HTTP ingestion waits for Kafka before answering 503",
    )
    kafka_compression_type: Literal["gzip", "snappy", "lz4", "zstd"] | None = Field(
        None, description="Producer batch compression (lz4/zstd/snappy need the cramjam package)",
    )
    kafka_linger_ms: int = Field(5, ge=0, description="How long the producer waits to fill a batch before sending it")
    # Kafka security: plaintext is the local default; a production cluster (the Helm chart's Strimzi Kafka) asks
    # for SASL_SSL with each service's own SCRAM user, whose ACLs allow only what it uses.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How services reach Kafka (PLAINTEXT only on a trusted local machine)")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism, with SASL_PLAINTEXT or SASL_SSL")
    kafka_sasl_username: str | None = Field(None, description="This service's Kafka user (SASL)")
    kafka_sasl_password: SecretStr | None = Field(None, description="This service's Kafka password (SASL)")
    kafka_ssl_cafile: str | None = Field(
        None, description="PEM file of the CA that signed the brokers' certificates (SSL, SASL_SSL); "
                          "default: the system's trusted CAs")
    jwt_hs256_secret: SecretStr | None = Field(None, description="Shared secret for HS256 tokens (local use)")
    jwt_issuer: str | None = Field(None, description="Expected `iss`; with jwks_url, the enterprise IdP")
    jwt_audience: str | None = Field("portevoix", description="Expected `aud`")
    jwt_jwks_url: str | None = Field(None, description="JWKS URL of the OIDC issuer (RS256/ES256 tokens)")
    # How a token's claims become a principal (shared.auth.ClaimMapping): the same in every service
    # and in the web front's sign-in, so tokens of Entra ID, Okta or Keycloak are read one way.
    # Tokens signed with jwt_hs256_secret (issued by Portevoix itself) always use the native claims.
    auth_subject_claim: str = Field(
        "sub", description="Claim (path) of the user id: for an ambassador it must be his HR employee id, as HR "
                           "events and SCIM carry it (e.g. `employeeid` on Entra ID, `preferred_username`)")
    auth_tenant_claim: str | None = Field("tenant", description="Claim (path) holding the tenant (enterprise group)")
    auth_fixed_tenant: str | None = Field(
        None, description="Every IdP token belongs to this tenant (one group per IdP; wins over auth_tenant_claim)")
    auth_roles_claims: list[str] = Field(
        ["roles"], description='Claims (paths, dot-separated) whose values are role or group names, merged: '
                               'e.g. ["realm_access.roles"] (Keycloak), ["groups"] (Okta), ["roles"] (Entra app roles)')
    auth_role_mapping: dict[str, list[str]] = Field(
        {}, description='IdP group/role name -> Portevoix roles (JSON: {"pv-editors": ["editor"]}). Empty: the names '
                        "are taken as Portevoix roles as they are; not empty: only mapped names give roles")
    auth_subsidiary_claim: str | None = Field(
        "subsidiary", description="Claim (path) of the org unit a subsidiary-scoped user is confined to "
                                  "(absent in the token: group level)")
    identity_key: SecretStr | None = Field(
        None, description="Key of the holder digest (shared.auth.holder_digest), the same on distribution, tracking "
                          "and reporting: it lets tracking and reporting recognise a signed-in ambassador's own "
                          "pseudonymous id without holding HR ids. Without it, 'my shares' and 'my results' answer 503")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    # The HTTP guard (shared/http_guard.py): body size limits and per-client rate limits on the
    # public endpoints. Defaults are far above what one real client sends.
    http_max_body_bytes: int = Field(1024 * 1024, ge=1024, description="Largest request body of any route: "
                                     "413 from Content-Length before reading, or as soon as a streamed body passes it")
    http_max_json_depth: int = Field(64, ge=8, le=500, description="Deepest nesting of arrays and objects in a "
                                     "JSON body: 400 beyond (Python's decoder would recurse until it fails)")
    http_body_limits: dict[str, int] = Field(
        {}, description='Body limits by path prefix, overriding http_max_body_bytes (JSON: {"/v1/imports/": 10485760}; '
                        'the longest matching prefix wins)')
    rate_limit_redirects_per_second: float = Field(
        50, ge=0, description="Redirector /r/: requests per second per client address (token bucket; 0 disables)")
    rate_limit_redirects_burst: int = Field(200, ge=1, description="Redirector /r/: burst per client address")
    rate_limit_webhooks_per_second: float = Field(
        50, ge=0, description="Signed webhooks /v1/webhooks/: calls per second per client address and webhook path "
                              "(0 disables)")
    rate_limit_webhooks_burst: int = Field(200, ge=1, description="Signed webhooks: burst per client and path")
    rate_limit_scim_per_second: float = Field(
        50, ge=0, description="SCIM /scim/: requests per second per SCIM bearer credential (0 disables)")
    rate_limit_scim_burst: int = Field(200, ge=1, description="SCIM: burst per credential")
    rate_limit_exempt_clients: list[str] = Field(
        [], description="Client addresses never rate limited (none by default: behind a sidecar proxy every client "
        'looks like loopback). Local tools and benchmarks set ["127.0.0.1", "::1"]')

    @field_validator("auth_role_mapping", mode="before")
    @classmethod
    def _one_role_or_many(cls, value: object) -> object:
        """{"pv-admins": "admin"} is read as {"pv-admins": ["admin"]}."""
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value
