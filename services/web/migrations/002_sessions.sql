-- Signed-in browsers (backend-for-frontend): the cookie holds a random id, this table its SHA-256
-- (a copy of the table gives no usable cookie) and the tokens, which never reach the browser.
CREATE TABLE sessions (
    id_hash           text        PRIMARY KEY,
    kind              text        NOT NULL CHECK (kind IN ('oidc', 'local', 'token')),
    tenant            text        NOT NULL,
    subject           text        NOT NULL,
    csrf_token        text        NOT NULL,   -- sent by the pages in X-CSRF-Token on every change
    access_token      text        NOT NULL,   -- what the proxy sends the services as the bearer
    access_expires_at timestamptz NOT NULL,
    refresh_token     text,
    id_token          text,                   -- the id_token_hint of the RP-initiated logout
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL    -- absolute end, whatever the refreshes
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Sign-ins under way: sent to the identity provider, not back yet. Bound to the browser by a
-- cookie (its SHA-256 here), used once, a few minutes at most.
CREATE TABLE sign_ins (
    id_hash       text        PRIMARY KEY,
    state         text        NOT NULL,
    nonce         text        NOT NULL,
    code_verifier text        NOT NULL,
    return_to     text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_ins_age ON sign_ins (created_at);
