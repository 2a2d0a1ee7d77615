"""The four Portevoix services. Each owns its PostgreSQL schema and talks to the others only
through Kafka events; none imports another."""
