"""Tracking service: the tracked-link redirector and the engagements it records."""
