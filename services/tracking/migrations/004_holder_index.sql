-- "My shares" finds a person's ambassador ids by his holder digest (GET /v1/shares/mine).
CREATE INDEX ambassadors_holder ON ambassadors (tenant, holder);
