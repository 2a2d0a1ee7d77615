"""Every value a client sends has bounds: in every request body and query parameter of every
service's OpenAPI document, and in the bodies parsed by hand (signed webhooks), integers and
numbers have a minimum and a maximum (2^31 into an int4 column, 2^63 into a bigint, 1e400 as a
float are 500s otherwise) and strings a maximum length, an enumeration, a format or a bounded
pattern (an indexed text column refuses an entry over ~2.7 kB with a 500)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI

from services.content.main import ContentSettings
from services.content.main import create_app as content_app
from services.distribution.main import DistributionSettings
from services.distribution.main import create_app as distribution_app
from services.reporting.main import ReportingSettings
from services.reporting.main import create_app as reporting_app
from services.tracking.main import TrackingSettings
from services.tracking.main import create_app as tracking_app
from services.tracking.models import WebhookBatch
from services.web.main import WebSettings
from services.web.main import create_app as web_app
from shared.events import EmployeeDeparted, EmployeeUpserted, IntranetContentSubmitted

BOUNDED_FORMATS = {"uuid", "date-time", "date", "time", "uri", "email", "binary"}
HAND_PARSED = (WebhookBatch, IntranetContentSubmitted, EmployeeUpserted, EmployeeDeparted)


def apps() -> dict[str, FastAPI]:
    return {"content": content_app(ContentSettings()), "distribution": distribution_app(DistributionSettings()),
            "tracking": tracking_app(TrackingSettings()), "reporting": reporting_app(ReportingSettings()),
            "web": web_app(WebSettings())}


def _bounded_pattern(pattern: str) -> bool:
    return pattern.startswith("^") and pattern.endswith("$") and not re.search(r"[*+]|\{\d+,\}", pattern)


def unbounded(schema: dict[str, Any], components: dict[str, Any], where: str, seen: frozenset[str] = frozenset()
              ) -> list[str]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return [] if name in seen else unbounded(components[name], components, where, seen | {name})
    found = [p for key in ("anyOf", "oneOf", "allOf") for s in schema.get(key, [])
             for p in unbounded(s, components, where, seen)]
    kind = schema.get("type")
    if kind in ("integer", "number") and not (
            {"minimum", "exclusiveMinimum"} & schema.keys() and {"maximum", "exclusiveMaximum"} & schema.keys()):
        found.append(f"{where}: {kind} without a minimum and a maximum")
    if kind == "string" and not ({"maxLength", "enum", "const"} & schema.keys()
                                 or schema.get("format") in BOUNDED_FORMATS
                                 or _bounded_pattern(schema.get("pattern", ""))):
        found.append(f"{where}: string without a maximum length")
    for name, sub in (schema.get("properties") or {}).items():
        found += unbounded(sub, components, f"{where}.{name}", seen)
    for key, suffix in (("items", "[]"), ("additionalProperties", "{}"), ("propertyNames", "{key}")):
        if isinstance(schema.get(key), dict):
            found += unbounded(schema[key], components, where + suffix, seen)
    return found


@pytest.mark.parametrize("service", ["content", "distribution", "tracking", "reporting", "web"])
def test_every_request_value_is_bounded(service: str) -> None:
    document = apps()[service].openapi()
    components = document.get("components", {}).get("schemas", {})
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                if parameter["in"] in ("query", "cookie"):  # path and headers: the HTTP server bounds them
                    found += unbounded(parameter.get("schema", {}), components, f"{label} ?{parameter['name']}")
            for media in operation.get("requestBody", {}).get("content", {}).values():
                found += unbounded(media.get("schema", {}), components, f"{label} body")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("model", HAND_PARSED, ids=lambda m: m.__name__)
def test_bodies_parsed_by_hand_are_bounded_too(model: type) -> None:
    schema = model.model_json_schema()
    assert not unbounded(schema, schema.get("$defs", {}), model.__name__)
