-- An intranet's version counter may be epoch milliseconds (as SCIM's is): past 2^31 an integer
-- column overflowed. The contract bounds it to a bigint.
ALTER TABLE contents ALTER COLUMN external_version TYPE bigint;
