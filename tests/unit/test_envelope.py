"""CloudEvents parsing decisions: what is accepted, and the cause given for what is not."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.envelope import EnvelopeError, from_kafka, new_event, to_binary, to_structured, typed
from shared.events import EmployeeDeparted, IntranetContentSubmitted


def departed(**overrides):
    data = {"employee_id": "E1", "effective_at": "2026-03-01T09:00:00+01:00", "version": 4} | overrides
    return new_event("hr.employee.departed", source="hr/workday", subject="E1", tenant="acme", data=data)


def headers(record):
    return [(k, v.encode()) for k, v in record.headers.items()]


def test_binary_mode_round_trip_keeps_attributes_and_typed_data():
    event = departed()
    record = to_binary(event)
    assert record.key == b"acme/E1"
    assert record.headers["ce_type"] == "hr.employee.departed"
    parsed = typed(from_kafka(record.value, headers(record)), "hr.employees.v1")
    assert (parsed.id, parsed.source, parsed.tenantid, parsed.subject) == (event.id, event.source, "acme", "E1")
    assert parsed.data == EmployeeDeparted(employee_id="E1", effective_at=datetime(2026, 3, 1, 8, tzinfo=UTC),
                                           version=4)


def test_structured_mode_is_accepted_including_data_base64():
    event = departed()
    assert typed(from_kafka(to_structured(event), [("content-type", b"application/cloudevents+json")])).id == event.id
    body = json.loads(to_structured(event))
    import base64
    body["data_base64"] = base64.b64encode(json.dumps(body.pop("data")).encode()).decode()
    structured = [("Content-Type", b"application/cloudevents+json; charset=utf-8")]
    parsed = typed(from_kafka(json.dumps(body).encode(), structured))
    assert parsed.data.version == 4


@pytest.mark.parametrize("attribute", ["id", "source", "type", "time", "subject", "tenantid"])
def test_each_required_attribute_is_required(attribute):
    record = to_binary(departed())
    kept = [(k, v) for k, v in headers(record) if k != f"ce_{attribute}"]
    with pytest.raises(EnvelopeError, match=f"missing CloudEvents attributes: {attribute}"):
        from_kafka(record.value, kept)


@pytest.mark.parametrize(("value", "hdrs", "cause"), [
    (b"", [("ce_id", b"1")], "empty record value"),
    (b"{}", [], "not a CloudEvent"),
    (b"not json", [("ce_id", b"1")], "data is not valid JSON"),
    (b"[1]", [("content-type", b"application/cloudevents+json")], "must be a JSON object"),
    (b"{}", [("ce_id", b"\xff")], "is not UTF-8"),
])
def test_malformed_records_have_a_readable_cause(value, hdrs, cause):
    with pytest.raises(EnvelopeError, match=cause):
        from_kafka(value, hdrs)


def test_unknown_type_wrong_topic_and_invalid_data_are_refused():
    with pytest.raises(EnvelopeError, match="unknown event type"):
        typed(new_event("hr.employee.promoted", source="s", subject="x", tenant="t", data={}))
    with pytest.raises(EnvelopeError, match="does not belong on topic"):
        typed(departed(), "intranet.content.v1")
    with pytest.raises(EnvelopeError, match="version"):
        typed(departed(version=-1))


def test_unknown_fields_are_ignored_for_forward_compatibility():
    assert typed(departed(new_optional_field="later")).data.employee_id == "E1"


def test_wrong_specversion_and_tenant_format_are_refused():
    record = to_binary(departed())
    hdrs = [(k, b"0.3" if k == "ce_specversion" else v) for k, v in headers(record)]
    with pytest.raises(EnvelopeError, match="specversion"):
        from_kafka(record.value, hdrs)
    hdrs = [(k, b"acme corp!" if k == "ce_tenantid" else v) for k, v in headers(record)]
    with pytest.raises(EnvelopeError, match="tenantid"):
        from_kafka(record.value, hdrs)


def test_timestamps_without_offset_are_refused():
    with pytest.raises(ValueError, match="time zone"):
        IntranetContentSubmitted(external_id="x", source_system="s", title="t", summary="", url="https://e.com",
                                 language="en", version=1, embargo_until=datetime(2026, 1, 1))
