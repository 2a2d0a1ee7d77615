"""The fault suite: ``python -m deploy.reliability`` (part of ``make reliability``).

Starts its own Kafka and PostgreSQL (a dedicated run dir, free ports: a developer's stack is
never touched), the four services as processes, a webhook receiver and an SMTP server on
loopback, and a steady load through the public APIs (HR events on Kafka, enrolments, published
contents, clicks, signed engagement webhooks). Then, one after the other and under that load:
kill -9 of each service (restarted), the Kafka broker stopped and restarted, PostgreSQL stopped
and restarted, the webhook target answering 500 then recovering, the SMTP server down then up.
After each, a reconciliation from outside (plain Kafka and PostgreSQL clients, the KPI API):
every accepted input in Kafka exactly once, every KPI as the inputs imply, no notification
received twice, no consumer stuck. Prints the table, writes bench/results/reliability.md and
.json; exits 1 when anything was lost or duplicated or did not reconcile.
"""
