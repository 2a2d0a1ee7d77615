-- The holder digest of the person behind an ambassador id (shared.auth.holder_digest), computed at
-- enrolment with the deployment's identity key and sent on ambassadors.v1, so that tracking and
-- reporting recognise the ambassador's own calls without holding HR ids. NULL: no key configured.
ALTER TABLE ambassadors ADD COLUMN holder text;
