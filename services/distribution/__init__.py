"""Distribution service: the ambassador directory (fed by HR), enrolment and consent, audience
targeting, notifications and their tracked links."""
