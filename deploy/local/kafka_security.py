"""Least privilege on the local Kafka, switchable and off by default (``PORTEVOIX_LOCAL_KAFKA_SASL=1``):
a SASL_PLAINTEXT listener with SCRAM-SHA-512, the KRaft ``StandardAuthorizer``, one SCRAM user per
service and per inbound producer created at format time, and the same ACLs as the Helm chart's
KafkaUsers (deploy/helm/portevoix/files/registry.yaml: the topics each reads and writes, its groups).

Passwords are local only (``<user>-local-only``): this is a development broker on loopback. The
controller listener stays plaintext on loopback; its anonymous principal is a super user because the
broker half of this one node talks to its controller half through it. The test suite's own clients
do not authenticate yet, so only the wall tests (tests/integration/test_local_kafka_acls.py) run in
this mode; the default stays plaintext.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

ADMIN = "portevoix-admin"
MECHANISM = "SCRAM-SHA-512"
REGISTRY = Path(__file__).parents[1] / "helm" / "portevoix" / "files" / "registry.yaml"
# Kafka's protocol codes (org.apache.kafka.common.acl / resource)
TOPIC, GROUP, CLUSTER = 2, 3, 4
LITERAL, PREFIXED = 3, 4
READ, WRITE, DESCRIBE, IDEMPOTENT_WRITE = 3, 4, 8, 12
ALLOW = 3


def enabled() -> bool:
    return os.environ.get("PORTEVOIX_LOCAL_KAFKA_SASL", "").strip().lower() in ("1", "true", "yes")


def password(user: str) -> str:
    return f"{user}-local-only"


def users() -> dict[str, dict[str, Any]]:
    """Every Kafka user and what it may do: the services, then the inbound producers."""
    registry = yaml.safe_load(REGISTRY.read_text())
    found = {name: access for name, access in registry["services"].items()}
    found.update({f"{name}-producer": access for name, access in registry["producers"].items()})
    return found


def broker_properties(bootstrap: str, controller: str) -> dict[str, str]:
    jaas = (f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{ADMIN}" '
            f'password="{password(ADMIN)}";')
    return {
        "listeners": f"SASL_PLAINTEXT://{bootstrap},CONTROLLER://{controller}",
        "advertised.listeners": f"SASL_PLAINTEXT://{bootstrap},CONTROLLER://{controller}",
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        f"listener.name.sasl_plaintext.{MECHANISM.lower()}.sasl.jaas.config": jaas,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN};User:ANONYMOUS",
        "allow.everyone.if.no.acl.found": "false",
    }


def format_arguments() -> list[str]:
    """StorageTool ``--add-scram`` options: the users exist from the first start."""
    arguments = []
    for user in [ADMIN, *users()]:
        arguments += ["--add-scram", f"{MECHANISM}=[name={user},password={password(user)}]"]
    return arguments


def client_settings(user: str = ADMIN) -> dict[str, Any]:
    """aiokafka keyword arguments for ``user`` (the admin for the local tooling); none when off."""
    if not enabled():
        return {}
    return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": MECHANISM,
            "sasl_plain_username": user, "sasl_plain_password": password(user)}


def acl_entries() -> list[tuple[int, str, int, str, int]]:
    """(resource type, name, pattern, principal, operation) for every user, as the chart's KafkaUsers."""
    entries = []
    for user, access in users().items():
        principal = f"User:{user}"
        for topic in access.get("reads", []):
            entries += [(TOPIC, topic, LITERAL, principal, READ), (TOPIC, topic, LITERAL, principal, DESCRIBE)]
        for topic in access.get("writes", []):
            entries += [(TOPIC, topic, LITERAL, principal, WRITE), (TOPIC, topic, LITERAL, principal, DESCRIBE)]
        if access.get("groupPrefix"):
            entries.append((GROUP, access["groupPrefix"], PREFIXED, principal, READ))
        if access.get("idempotentWrite"):
            entries.append((CLUSTER, "kafka-cluster", LITERAL, principal, IDEMPOTENT_WRITE))
    return entries


async def apply_acls(bootstrap: str) -> int:
    """Creates the ACLs (idempotent: Kafka keeps one copy of an ACL created twice)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.protocol.admin import CreateAclsRequest

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000, **client_settings())
    await admin.start()
    try:
        for kind, name, pattern, principal, operation in acl_entries():
            request = CreateAclsRequest(kind, name, pattern, principal, "*", operation, ALLOW)
            response = await admin._send_request(request)
            errors = [r for r in response.creation_responses if r[0] != 0]
            if errors:
                raise RuntimeError(f"creating ACL {principal} {operation} on {name}: {errors}")
    finally:
        await admin.close()
    return len(acl_entries())
