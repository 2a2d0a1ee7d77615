"""Portevoix's own library: mechanisms shared by every service, never business rules."""
