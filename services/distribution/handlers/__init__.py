"""Distribution use cases, one module per use case family: parse, decide (domain), write
(repository) — in that order.

- ``directory``: HR events into the directory, departures, erasure, the retention/consent sweep
- ``enrolment``: consent, opt-out, preferences, connected networks (the employee himself only)
- ``fanout``: content published/retired into notifications, and the feed
- ``scim``: the SCIM 2.0 server (its changes become HR events: one truth)
- ``admin``: org tree, consent texts, SCIM tokens, groups, headcount
- ``ambassadors``: what every family shares: ambassadors.v1 events and withdrawals
"""
