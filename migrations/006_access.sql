-- People and access: users, sessions, invitations, teams, sign-in limits,
-- and the side records every change leaves (audit log, outbox).

-- People who use Herald in the browser. The password is an argon2id PHC
-- string ($argon2id$v=19$m=...,t=...,p=...$salt$hash) so its parameters
-- travel with it and can be raised later. NULL until the person sets one.
CREATE TABLE users (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email               text NOT NULL,
    name                text NOT NULL,
    role                text NOT NULL CHECK (role IN ('admin', 'marketer', 'agent')),
    state               text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'disabled')),
    password_hash       text,
    password_changed_at timestamptz,
    -- The TOTP secret, sealed with HERALD_SECRET; enabled once the person
    -- proved a code. last_step refuses a code used twice.
    totp_secret         bytea,
    totp_enabled_at     timestamptz,
    totp_last_step      bigint NOT NULL DEFAULT 0,
    locale              text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    disabled_at         timestamptz
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- One-time recovery codes for a second factor, stored as SHA-256.
CREATE TABLE user_recovery_codes (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, code_hash)
);

-- Server-side sessions. The browser holds a random id; only its SHA-256 is
-- stored. A session has an idle and an absolute expiry.
CREATE TABLE user_sessions (
    id_hash      bytea PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- full: signed in. second_factor: the password was right and a TOTP or
    -- recovery code is still due. enrol: an admin must set up TOTP (when
    -- require_admin_totp is on) before anything else.
    stage        text NOT NULL DEFAULT 'full' CHECK (stage IN ('full', 'second_factor', 'enrol')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    address      inet,
    user_agent   text NOT NULL DEFAULT ''
);
CREATE INDEX user_sessions_user_idx ON user_sessions (user_id);

-- Links that let a person set a password: an invitation (a new user), a
-- reset an admin asked for, or the first admin's sign-in link. Random,
-- stored as SHA-256, expiring, single use.
CREATE TABLE access_links (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('invitation', 'reset')),
    token_hash  bytea NOT NULL UNIQUE,
    user_id     bigint REFERENCES users (id) ON DELETE CASCADE,
    email       text NOT NULL,
    name        text NOT NULL DEFAULT '',
    role        text NOT NULL CHECK (role IN ('admin', 'marketer', 'agent')),
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX access_links_email_idx ON access_links (lower(email));

-- Failed sign-ins, per account (the lowered email, existing or not) and per
-- client address, shared by every Herald process.
CREATE TABLE sign_in_failures (
    key          text PRIMARY KEY,
    failures     int NOT NULL DEFAULT 0,
    window_start timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz
);

-- Named groups of agents; the inbox routes conversations to them.
CREATE TABLE teams (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX teams_name_key ON teams (lower(name));

CREATE TABLE team_members (
    team_id  bigint NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id  bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user_idx ON team_members (user_id);

-- Settings an admin changes at run time (require_admin_totp, ...).
CREATE TABLE settings (
    key        text PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every state-changing call by a user, an API key or an operator at the
-- command line (herald user create): who, what, when, from
-- where, and a summary of the change without secrets. Written in the
-- transaction of the change; append-only (the trigger below); no foreign
-- keys, so it outlives the users and keys it names.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_type  text NOT NULL CHECK (actor_type IN ('user', 'api_key', 'operator')),
    actor_id    bigint NOT NULL,
    actor_label text NOT NULL DEFAULT '',
    actor_role  text NOT NULL DEFAULT '',
    address     inet,
    action      text NOT NULL,
    object_type text NOT NULL,
    object_id   text NOT NULL DEFAULT '',
    summary     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_type, actor_id, id);
CREATE INDEX audit_log_object_idx ON audit_log (object_type, object_id, id);
CREATE INDEX audit_log_at_idx ON audit_log (at, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Events of every change (by anyone, the system included), for outbound
-- webhooks and live updates. Ids are handed out in commit order (see
-- audit.Record), so a reader that remembers the last id it saw misses
-- nothing.
CREATE TABLE outbox (
    id          bigint PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    object_type text NOT NULL,
    object_id   text NOT NULL DEFAULT '',
    actor       text NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}'
);
CREATE SEQUENCE outbox_id_seq OWNED BY outbox.id;
