"""Kafka security settings: plaintext by default; SASL (SCRAM) with or without TLS, as the Helm chart
sets it for each service's own Kafka user; a SASL protocol without credentials refuses to start."""

from __future__ import annotations

import pytest
from faststream.security import SASLScram512

from shared.kafka import create_broker, kafka_security
from shared.settings import ServiceSettings


def test_plaintext_is_the_default():
    assert ServiceSettings().kafka_security_protocol == "PLAINTEXT"
    assert kafka_security(ServiceSettings()) is None


def test_sasl_ssl_uses_the_services_scram_user_over_tls():
    settings = ServiceSettings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="portevoix-tracking",
                               kafka_sasl_password="secret")
    security = kafka_security(settings)
    assert isinstance(security, SASLScram512) and security.use_ssl and security.ssl_context is not None
    connection = create_broker(settings, client_id="t")._connection_kwargs
    assert connection["security_protocol"] == "SASL_SSL" and connection["sasl_mechanism"] == "SCRAM-SHA-512"
    assert connection["sasl_plain_username"] == "portevoix-tracking"


def test_sasl_plaintext_has_no_tls():
    settings = ServiceSettings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u",
                               kafka_sasl_password="p", kafka_sasl_mechanism="SCRAM-SHA-256")
    assert create_broker(settings, client_id="t")._connection_kwargs["security_protocol"] == "SASL_PLAINTEXT"


def test_a_sasl_protocol_without_credentials_is_refused():
    with pytest.raises(ValueError, match="PORTEVOIX_KAFKA_SASL_USERNAME"):
        kafka_security(ServiceSettings(kafka_security_protocol="SASL_SSL"))
