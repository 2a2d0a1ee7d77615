"""Deployment helpers for Portevoix: `deploy.local` runs the stack on one machine without Docker."""
