"""The one envelope: CloudEvents 1.0 over Kafka.

We produce binary content mode (``data`` JSON is the record value, attributes are ``ce_*``
headers). Inbound topics also accept structured mode (``content-type:
application/cloudevents+json``, the whole event as the value). Parsing raises
:class:`EnvelopeError` with a readable cause; such a record is poison and goes to the DLQ.
"""

from __future__ import annotations

import base64
import functools
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.events import EVENT_TYPES, Contract
from shared.logs import current_traceparent

T = TypeVar("T")

STRUCTURED = "application/cloudevents+json"
JSON = "application/json"
REQUIRED = ("id", "source", "type", "time", "subject", "tenantid")
Attr = Field(min_length=1, max_length=500)


class EnvelopeError(ValueError):
    """The record is not a valid event for us: never retried, sent to the DLQ with this cause."""


class CloudEvent(BaseModel, Generic[T]):
    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: str = "1.0"
    id: str = Attr
    source: str = Attr
    type: str = Attr
    time: datetime
    subject: str = Attr
    tenantid: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    datacontenttype: str = JSON
    traceparent: str | None = None
    data: T

    @property
    def dedup_key(self) -> tuple[str, str]:
        return self.source, self.id


def new_event(type: str, *, source: str, subject: str, tenant: str, data: BaseModel | dict,
              id: str | None = None, time: datetime | None = None,
              traceparent: str | None = None) -> CloudEvent[Any]:
    payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    return CloudEvent[Any](
        id=id or str(uuid.uuid4()), source=source, type=type, time=time or datetime.now(UTC),
        subject=subject, tenantid=tenant, data=payload,
        traceparent=traceparent or current_traceparent(),  # the request's or the event's trace
    )


@dataclass(frozen=True)
class KafkaRecord:
    key: bytes
    value: bytes
    headers: dict[str, str]


def record_key(tenant: str, entity_id: str) -> bytes:
    """One entity's events share a key, so they stay in order on one partition."""
    return f"{tenant}/{entity_id}".encode()


def binary_headers(type: str, *, source: str, tenant: str, id: str, subject: str, time: datetime | None = None,
                   traceparent: str | None = None, datacontenttype: str = JSON) -> dict[str, str]:
    """The ``ce_*`` headers of an event in binary content mode, in their one order (producers
    of many events take them once and change ``ce_id`` and ``ce_subject`` per event)."""
    headers = {
        "ce_specversion": "1.0",
        "ce_id": id,
        "ce_source": source,
        "ce_type": type,
        "ce_time": (time or datetime.now(UTC)).isoformat(),
        "ce_subject": subject,
        "ce_tenantid": tenant,
        "content-type": datacontenttype,
    }
    if traceparent:
        headers["ce_traceparent"] = traceparent
    return headers


def to_binary(event: CloudEvent[Any], key: bytes | None = None) -> KafkaRecord:
    headers = binary_headers(event.type, source=event.source, tenant=event.tenantid, id=event.id,
                             subject=event.subject, time=event.time, traceparent=event.traceparent,
                             datacontenttype=event.datacontenttype)
    data = event.data.model_dump(mode="json") if isinstance(event.data, BaseModel) else event.data
    value = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return KafkaRecord(key=key or record_key(event.tenantid, event.subject), value=value, headers=headers)


def binary_record(type: str, *, source: str, subject: str, tenant: str, data: dict[str, Any],
                  id: str | None = None, time: datetime | None = None, key: bytes | None = None,
                  traceparent: str | None = None) -> KafkaRecord:
    """``to_binary(new_event(...))`` without building the models: the same headers and value,
    for producers of many events whose attributes and ``data`` are valid by construction (the
    caller's tests check that its records parse with :func:`from_kafka` and :func:`typed`)."""
    headers = binary_headers(type, source=source, tenant=tenant, id=id or str(uuid.uuid4()), subject=subject,
                             time=time, traceparent=traceparent or current_traceparent())  # as new_event
    value = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return KafkaRecord(key=key or record_key(tenant, subject), value=value, headers=headers)


def to_structured(event: CloudEvent[Any]) -> bytes:
    """Structured mode, for clients (and tests) that send the whole event as the value."""
    return json.dumps(event.model_dump(mode="json", exclude_none=True)).encode()


def _decode_headers(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> dict[str, str]:
    decoded = {}
    for name, raw in headers:
        try:
            decoded[name.lower()] = raw.decode() if raw is not None else ""
        except UnicodeDecodeError as error:
            raise EnvelopeError(f"header {name!r} is not UTF-8") from error
    return decoded


def _json(value: bytes, what: str) -> Any:
    try:
        return json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EnvelopeError(f"{what} is not valid JSON: {error}") from error


def from_kafka(value: bytes | None, headers: list[tuple[str, bytes]] | tuple) -> CloudEvent[Any]:
    """Parse a Kafka record in binary or structured content mode into an untyped event."""
    if not value:
        raise EnvelopeError("empty record value")
    h = _decode_headers(headers)
    if h.get("content-type", "").split(";")[0].strip() == STRUCTURED:
        attributes = _json(value, "structured CloudEvent")
        if not isinstance(attributes, dict):
            raise EnvelopeError("structured CloudEvent must be a JSON object")
        if "data_base64" in attributes and "data" not in attributes:
            try:
                attributes["data"] = _json(base64.b64decode(attributes.pop("data_base64")), "data_base64")
            except ValueError as error:
                raise EnvelopeError(f"data_base64 is not base64: {error}") from error
    else:
        attributes = {name[3:]: v for name, v in h.items() if name.startswith("ce_")}
        if not attributes:
            raise EnvelopeError("no ce_* headers and not structured mode: not a CloudEvent")
        attributes["datacontenttype"] = h.get("content-type") or JSON
        attributes["data"] = _json(value, "data")
    missing = [name for name in REQUIRED if not attributes.get(name)]
    if missing:
        raise EnvelopeError(f"missing CloudEvents attributes: {', '.join(missing)}")
    if attributes.get("specversion") != "1.0":
        raise EnvelopeError(f"unsupported specversion {attributes.get('specversion')!r}")
    try:
        return CloudEvent[Any].model_validate(attributes)
    except ValidationError as error:
        raise EnvelopeError(f"invalid CloudEvents attributes: {_brief(error)}") from error


def typed(event: CloudEvent[Any], expected_topic: str | None = None) -> CloudEvent[Contract]:
    """Validate ``data`` against the contract of the event's type."""
    model = _contract(event.type, expected_topic)
    try:
        data = model.model_validate(event.data)
    except ValidationError as error:
        raise EnvelopeError(f"invalid data for {event.type}: {_brief(error)}") from error
    return event.model_copy(update={"data": data})


def parse(value: bytes | None, headers: list[tuple[str, bytes]] | tuple, expected_topic: str | None = None
          ) -> CloudEvent[Contract]:
    """``typed(from_kafka(value, headers), expected_topic)``: the same event or the same error, in
    one pass for a valid record in binary content mode (the consumers' hot path, about twice as
    cheap): its data is validated by its contract straight from the JSON, the event built once.
    Anything else takes the long way, which names the fault."""
    try:
        return _parse_binary(value, headers, expected_topic)
    except EnvelopeError:
        return typed(from_kafka(value, headers), expected_topic)


def _parse_binary(value: bytes | None, headers: list[tuple[str, bytes]] | tuple,
                  expected_topic: str | None) -> CloudEvent[Contract]:
    if not value:
        raise EnvelopeError("empty record value")
    h = _decode_headers(headers)
    if h.get("content-type", "").split(";")[0].strip() == STRUCTURED:
        raise EnvelopeError("structured content mode")
    attributes: dict[str, Any] = {name[3:]: v for name, v in h.items() if name.startswith("ce_")}
    attributes["datacontenttype"] = h.get("content-type") or JSON
    if not all(map(attributes.get, REQUIRED)) or attributes.get("specversion") != "1.0":
        raise EnvelopeError("missing or unsupported CloudEvents attributes")
    model = _contract(attributes["type"], expected_topic)
    try:
        attributes["data"] = model.model_validate_json(value)
        return _typed_event(model).model_validate(attributes)
    except ValidationError as error:
        raise EnvelopeError(str(error)) from error


def _contract(type_: str, expected_topic: str | None) -> type[Contract]:
    known = EVENT_TYPES.get(type_)
    if known is None:
        raise EnvelopeError(f"unknown event type {type_!r}")
    topic, model = known
    if expected_topic is not None and topic.name != expected_topic:
        raise EnvelopeError(f"event type {type_!r} does not belong on topic {expected_topic!r}")
    return model


@functools.cache
def _typed_event(model: type[Contract]) -> type[CloudEvent[Any]]:
    return CloudEvent[model]  # type: ignore[valid-type]


def _brief(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in error.errors()[:10]
    )
