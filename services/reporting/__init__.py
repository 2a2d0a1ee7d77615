"""Reporting service: KPI rollups from every domain event, and the KPI API."""
