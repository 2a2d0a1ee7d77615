"""Content service: content items, their approval workflow and their publication events."""
