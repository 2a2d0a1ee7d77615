-- Who holds each ambassador id, learnt from ambassadors.v1: the holder digest (an HMAC of the
-- tenant and the person's sign-in subject, shared.auth.holder_digest; never an HR id or e-mail)
-- lets a share be confirmed only by its own ambassador, and an engagement webhook name only an
-- ambassador that exists. active = enrolled, not withdrawn.
CREATE TABLE ambassadors (
    tenant         text        NOT NULL,
    ambassador_id  text        NOT NULL,
    holder         text,
    active         boolean     NOT NULL,
    effective_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant, ambassador_id)
);
