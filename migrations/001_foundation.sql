-- Apps are the company's sites and mobile apps. Each holds its own provider
-- credentials, VAPID key pair and identity-verification secret, sealed with
-- HERALD_SECRET in the secrets column.
CREATE TABLE apps (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug             text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name             text NOT NULL,
    vapid_public_key text NOT NULL,
    secrets          bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('admin', 'marketer', 'agent')),
    prefix       text NOT NULL UNIQUE,
    secret_hash  bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);

CREATE TABLE subscribers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_id text UNIQUE,
    email       text,
    locale      text NOT NULL DEFAULT '',
    timezone    text NOT NULL DEFAULT '',
    attributes  jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'blocked', 'erased')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz
);
CREATE INDEX subscribers_email_idx ON subscribers (lower(email)) WHERE email IS NOT NULL;

-- Subscriber tokens identify anonymous web subscribers; only their hash is kept.
CREATE TABLE subscriber_tokens (
    token_hash    bytea PRIMARY KEY,
    subscriber_id bigint NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX subscriber_tokens_subscriber_idx ON subscriber_tokens (subscriber_id);

-- A device is one push address. token is the APNs device token, the FCM
-- registration token or the Web Push endpoint; (app, platform, token) is
-- unique so that re-registering updates and a moved token moves.
CREATE TABLE devices (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscriber_id       bigint NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    app_id              bigint NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    platform            text NOT NULL CHECK (platform IN ('apns', 'fcm', 'webpush')),
    token               text NOT NULL,
    apns_topic          text,
    apns_environment    text CHECK (apns_environment IN ('production', 'sandbox')),
    webpush_p256dh      text,
    webpush_auth        text,
    active              boolean NOT NULL DEFAULT true,
    deactivated_reason  text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deactivated_at      timestamptz,
    UNIQUE (app_id, platform, token)
);
CREATE INDEX devices_subscriber_idx ON devices (subscriber_id);

CREATE TABLE lists (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug            text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    visibility      text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'private')),
    optin           text NOT NULL DEFAULT 'double' CHECK (optin IN ('single', 'double')),
    consent_text    text NOT NULL DEFAULT '',
    consent_version integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Membership is separate from subscriber state: a blocked subscriber keeps
-- their confirmed memberships, and unsubscribing from one list touches no other.
CREATE TABLE memberships (
    list_id         bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    subscriber_id   bigint NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    status          text NOT NULL CHECK (status IN ('pending', 'confirmed', 'unsubscribed')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    pending_at      timestamptz,
    confirmed_at    timestamptz,
    unsubscribed_at timestamptz,
    PRIMARY KEY (list_id, subscriber_id)
);
CREATE INDEX memberships_subscriber_idx ON memberships (subscriber_id);
CREATE INDEX memberships_pending_idx ON memberships (pending_at) WHERE status = 'pending';

-- Consent records are the proof of consent. They are append-only: the trigger
-- below refuses deletes and allows an update only to anonymise (erasure).
CREATE TABLE consent_records (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscriber_id   bigint NOT NULL REFERENCES subscribers (id),
    list_id         bigint,
    list_slug       text NOT NULL DEFAULT '',
    action          text NOT NULL CHECK (action IN ('opt_in_request', 'confirm', 'unsubscribe', 'erase')),
    source          text NOT NULL CHECK (source IN ('web', 'app', 'import', 'admin', 'link', 'system')),
    ip              inet,
    user_agent      text,
    consent_version integer,
    -- detail says where consent was given for imports (the CSV's consent_source).
    detail          text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consent_records_subscriber_idx ON consent_records (subscriber_id);

CREATE FUNCTION consent_records_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'consent_records are append-only';
    END IF;
    IF (NEW.id, NEW.subscriber_id, NEW.list_id, NEW.list_slug, NEW.action, NEW.source, NEW.consent_version, NEW.detail, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.subscriber_id, OLD.list_id, OLD.list_slug, OLD.action, OLD.source, OLD.consent_version, OLD.detail, OLD.created_at)
       OR (NEW.user_agent IS NOT NULL AND NEW.user_agent IS DISTINCT FROM OLD.user_agent)
       OR (NEW.ip IS NOT NULL AND NEW.ip IS DISTINCT FROM OLD.ip AND NOT (NEW.ip <<= OLD.ip OR OLD.ip <<= NEW.ip)) THEN
        RAISE EXCEPTION 'consent_records may only be anonymised';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER consent_records_append_only BEFORE UPDATE OR DELETE ON consent_records
    FOR EACH ROW EXECUTE FUNCTION consent_records_append_only();

-- Opt-in tokens make confirmation links single-use; only the hash is kept.
CREATE TABLE optin_tokens (
    token_hash    bytea PRIMARY KEY,
    subscriber_id bigint NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    list_id       bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz
);
CREATE INDEX optin_tokens_expires_idx ON optin_tokens (expires_at);

-- CSV imports: the upload is kept in chunks until the import job has merged it.
CREATE TABLE imports (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status      text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'finished', 'failed')),
    filename    text NOT NULL DEFAULT '',
    size_bytes  bigint NOT NULL DEFAULT 0,
    rows_read   bigint NOT NULL DEFAULT 0,
    rows_imported bigint NOT NULL DEFAULT 0,
    rows_failed bigint NOT NULL DEFAULT 0,
    row_errors  jsonb NOT NULL DEFAULT '[]',
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz
);

CREATE TABLE import_chunks (
    import_id bigint NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    seq       integer NOT NULL,
    data      bytea NOT NULL,
    PRIMARY KEY (import_id, seq)
);
