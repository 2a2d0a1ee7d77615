"""Generate the API documents from the code: AsyncAPI (from each service's declared FastStream
publishers and subscribers) and OpenAPI (from each HTTP app), into ``docs/``.

``python -m deploy.apidocs`` writes them; ``--check`` fails when a committed document is stale.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

SERVICES = ("content", "distribution", "tracking", "reporting", "web")
DOCS = Path(__file__).resolve().parents[1] / "docs"


def documents() -> dict[Path, str]:
    # Documents must not depend on where they are generated: fixed placeholders.
    os.environ["PORTEVOIX_KAFKA_BOOTSTRAP_SERVERS"] = "kafka:9092"
    os.environ["PORTEVOIX_JWT_HS256_SECRET"] = "placeholder"
    out: dict[Path, str] = {}
    for name in SERVICES:
        module = importlib.import_module(f"services.{name}.main")
        app = module.create_app()
        service = app.state.service
        asyncapi = with_contracts(service.asyncapi().to_specification().to_jsonable())
        out[DOCS / "asyncapi" / f"{name}.json"] = json.dumps(asyncapi, indent=2, sort_keys=True) + "\n"
        out[DOCS / "openapi" / f"{name}.json"] = json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
    out[DOCS / "configuration.md"] = configuration_reference()
    return out


def configuration_reference() -> str:
    """Every setting of every service, from the settings models: name, default, meaning."""
    from shared.settings import ServiceSettings

    lines = ["# Configuration reference", "",
             "Generated from the settings models by `make docs`: do not edit. Every setting is an",
             "environment variable (or a file named after it in `PORTEVOIX_SECRETS_DIR`).", ""]
    classes: list[tuple[str, type]] = [("all services", ServiceSettings)]
    for name in SERVICES:
        module = importlib.import_module(f"services.{name}.main")
        classes += [(name, cls) for cls in vars(module).values()
                    if isinstance(cls, type) and issubclass(cls, ServiceSettings) and cls is not ServiceSettings
                    and cls.__module__ == module.__name__]
    for scope, cls in classes:
        base = ServiceSettings.model_fields
        # A service's own settings, and the shared ones whose default it changes.
        rows = [(f, i) for f, i in cls.model_fields.items()
                if cls is ServiceSettings or f not in base or i.default != base[f].default]
        if not rows:
            continue
        lines += [f"## {scope}", "", "| variable | default | meaning |", "|---|---|---|"]
        for field, info in rows:
            default = info.default
            if isinstance(default, Path):  # the same document on every machine
                default = default.resolve().relative_to(DOCS.parent)
            shown = "" if default is None else f"`{json.dumps(default, default=str)}`"
            if hasattr(default, "get_secret_value"):
                shown = "(secret; local default)"
            lines.append(f"| `PORTEVOIX_{field.upper()}` | {shown} | {info.description or ''} |")
        lines.append("")
    return "\n".join(lines)


CLOUDEVENTS_HEADERS = {
    "type": "object",
    "description": "CloudEvents 1.0 binary content mode: attributes as ce_* headers "
                   "(or structured mode: content-type application/cloudevents+json, the whole event as the value)",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "ce_tenantid"],
    "properties": {
        "ce_specversion": {"const": "1.0"},
        "ce_id": {"type": "string", "description": (
            "Unique per source: the deduplication key. Delivery is at-least-once: after a producer's "
            "crash the events of its last relay round (at most PORTEVOIX_OUTBOX_BATCH_SIZE) may arrive "
            "again with the same ce_id, so a consumer deduplicates by it")},
        "ce_source": {"type": "string"},
        "ce_type": {"type": "string", "description": "The event type: selects the payload schema"},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string", "description": "The entity id"},
        "ce_tenantid": {"type": "string", "description": "The enterprise group (tenant)"},
        "content-type": {"const": "application/json"},
    },
}


def with_contracts(spec: dict[str, Any]) -> dict[str, Any]:
    """Document each message with the contracts of its topic's event types (from
    shared.events), and the CloudEvents headers: FastStream only sees the handlers' raw bytes."""
    from shared.events import EVENT_TYPES

    by_topic: dict[str, list[tuple[str, Any]]] = {}
    for type_name, (topic, model) in EVENT_TYPES.items():
        by_topic.setdefault(topic.name, []).append((type_name, model))
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name, message in components.get("messages", {}).items():
        topic = name.split(":")[0].removesuffix(".retry")
        contracts = by_topic.get(topic)
        if not contracts:
            continue
        _, definitions = models_json_schema([(m, "validation") for _, m in contracts],
                                            ref_template="#/components/schemas/{model}")
        schemas.update(definitions.get("$defs", {}))
        old = message.get("payload", {}).get("$ref", "").rsplit("/", 1)[-1]
        if old.endswith(":Payload"):
            schemas.pop(old, None)
        message["payload"] = {"oneOf": [
            {"$ref": f"#/components/schemas/{m.__name__}", "description": f"data of {t}"} for t, m in contracts]}
        message["headers"] = CLOUDEVENTS_HEADERS
    return with_dead_letters(spec)


def with_dead_letters(spec: dict[str, Any]) -> dict[str, Any]:
    """Each consumed topic's ``<topic>.dlq`` channel, where this service parks what it cannot
    process: the original bytes and headers, plus the x-portevoix-dlq-* headers saying why."""
    from shared.consumer import DLQ_HEADERS

    channels, operations = spec.setdefault("channels", {}), spec.setdefault("operations", {})
    messages = spec.setdefault("components", {}).setdefault("messages", {})
    consumed = {ch["address"] for name, ch in list(channels.items())
                if operations.get(name, {}).get("action") == "receive" and not ch["address"].endswith(".retry")}
    for topic in sorted(consumed):
        name = f"{topic}.dlq"
        messages[f"{name}:DeadLetter"] = {
            "title": f"{name}:DeadLetter", "name": f"{name}:DeadLetter",
            "summary": f"A record of {topic} this service could not process",
            "payload": {"description": f"The original record's bytes, unchanged (a {topic} event, or whatever "
                                       "arrived), re-injectable with `python -m deploy.dlq replay`"},
            "headers": {"type": "object", "description": "The original headers, plus:",
                        "required": sorted(DLQ_HEADERS),
                        "properties": {h: {"type": "string", "description": d} for h, d in DLQ_HEADERS.items()}}}
        channels[name] = {
            "address": name, "bindings": {"kafka": {"bindingVersion": "0.4.0", "topic": name}},
            "description": f"Dead letters of {topic}: invalid records at once, failing ones after their retries",
            "messages": {"DeadLetter": {"$ref": f"#/components/messages/{name}:DeadLetter"}}}
        operations[name] = {"action": "send", "channel": {"$ref": f"#/channels/{name}"},
                            "messages": [{"$ref": f"#/channels/{name}/messages/DeadLetter"}]}
    return spec


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a committed document is stale")
    args = parser.parse_args()
    stale = []
    for path, text in documents().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.relative_to(DOCS.parent))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(DOCS.parent)}")
    if stale:
        print("stale API documents (run `make docs` and commit):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
