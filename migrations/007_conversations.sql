-- Two-way conversations: subscribers write, agents answer, receipts come
-- back; events are read in commit order without a lock shared by writers.

-- The outbox orders events by the id of the transaction that wrote them:
-- a reader takes only events of transactions older than every transaction
-- still running (pg_snapshot_xmin), so it never skips one that commits
-- late, and writers need no common lock (see audit.EventsAfter).
ALTER TABLE outbox ADD COLUMN tx xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX outbox_position_idx ON outbox (tx, id);
-- The outbox is a queue: events older than a few days are purged.
CREATE INDEX outbox_at_idx ON outbox (at);
-- An erasure removes the events that carried a person's messages.
CREATE INDEX outbox_subscriber_idx ON outbox ((payload->>'subscriber_id')) WHERE payload ? 'subscriber_id';

-- Agents say whether they take new conversations, and how many at once.
ALTER TABLE users
    ADD COLUMN available boolean NOT NULL DEFAULT false,
    ADD COLUMN capacity  integer NOT NULL DEFAULT 10 CHECK (capacity BETWEEN 0 AND 1000),
    ADD COLUMN last_assigned_at timestamptz;

-- A team may hand new conversations to its available agents by itself.
ALTER TABLE teams ADD COLUMN auto_assign boolean NOT NULL DEFAULT false;

-- New conversations of an app land in its inbox team, if it has one.
ALTER TABLE apps ADD COLUMN inbox_team_id bigint REFERENCES teams (id) ON DELETE SET NULL;

-- A subscriber may refuse service messages (transactional messages from
-- the company's systems) while staying on lists, and the other way round.
ALTER TABLE subscribers ADD COLUMN service_messages boolean NOT NULL DEFAULT true;

-- Keyword rules per list: {"stop": [...], "start": [...], "help": [...],
-- "help_text": "...", "stop_text": "...", "start_text": "..."}; absent keys
-- take Herald's defaults.
ALTER TABLE lists ADD COLUMN keywords jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(keywords) = 'object');

-- Conversations: one per subscriber and app, reopened by a new message.
DROP INDEX conversations_current_idx;
DROP INDEX conversations_queue_idx;
ALTER TABLE conversations DROP CONSTRAINT conversations_status_check;
UPDATE conversations SET status = CASE status WHEN 'closed' THEN 'resolved' ELSE 'open' END;
ALTER TABLE conversations
    ADD CONSTRAINT conversations_status_check CHECK (status IN ('open', 'pending', 'snoozed', 'resolved')),
    ADD COLUMN assignee_id   bigint REFERENCES users (id) ON DELETE SET NULL,
    ADD COLUMN team_id       bigint REFERENCES teams (id) ON DELETE SET NULL,
    ADD COLUMN labels        text[] NOT NULL DEFAULT '{}',
    ADD COLUMN snoozed_until timestamptz,
    -- The oldest subscriber message no agent has answered yet: the inbox's
    -- "oldest waiting first" order. NULL when nobody is waiting.
    ADD COLUMN waiting_since timestamptz,
    -- Subscriber messages staff have not read, kept as a counter.
    ADD COLUMN unread        integer NOT NULL DEFAULT 0,
    ADD COLUMN last_message_id bigint,
    ADD COLUMN resolved_at   timestamptz;
CREATE UNIQUE INDEX conversations_subscriber_app_key ON conversations (subscriber_id, app_id) NULLS NOT DISTINCT;
CREATE INDEX conversations_inbox_idx ON conversations (status, (coalesce(waiting_since, 'infinity')), id);
CREATE INDEX conversations_assignee_idx ON conversations (assignee_id, status) WHERE assignee_id IS NOT NULL;
CREATE INDEX conversations_team_idx ON conversations (team_id, status) WHERE team_id IS NOT NULL;
CREATE INDEX conversations_labels_idx ON conversations USING gin (labels);
CREATE INDEX conversations_activity_idx ON conversations (last_message_at DESC, id DESC);

ALTER TABLE conversation_messages DROP CONSTRAINT conversation_messages_author_check;
ALTER TABLE conversation_messages
    ADD CONSTRAINT conversation_messages_author_check CHECK (author IN ('subscriber', 'agent', 'bot', 'system')),
    -- Notes are for staff only; the subscriber never sees them.
    ADD COLUMN private         boolean NOT NULL DEFAULT false,
    ADD COLUMN author_user_id  bigint REFERENCES users (id) ON DELETE SET NULL,
    ADD COLUMN author_key_id   bigint REFERENCES api_keys (id) ON DELETE SET NULL,
    -- The name shown to the subscriber, as it was when the message was written.
    ADD COLUMN author_name     text NOT NULL DEFAULT '',
    -- The sender's idempotency key: a retried POST finds its message.
    ADD COLUMN client_key      text,
    -- transactional: sent by the company's systems; keyword: an automatic answer.
    ADD COLUMN origin          text NOT NULL DEFAULT 'conversation'
        CHECK (origin IN ('conversation', 'campaign', 'transactional', 'keyword')),
    ADD COLUMN buttons         jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(buttons) = 'array'),
    ADD COLUMN attachment_id   bigint,
    -- The message a reply or a tapped button answers.
    ADD COLUMN reply_to        bigint,
    ADD COLUMN expires_at      timestamptz,
    -- Receipts reported by the subscriber's app or service worker.
    ADD COLUMN delivered_at    timestamptz,
    ADD COLUMN read_at         timestamptz,
    ADD COLUMN search          tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED;
CREATE UNIQUE INDEX conversation_messages_client_key ON conversation_messages (conversation_id, client_key) WHERE client_key IS NOT NULL;
CREATE INDEX conversation_messages_search_idx ON conversation_messages USING gin (search);

-- Where each message to a subscriber went: one row per device, claimed
-- before the send (status sending), so that a crash leaves "unknown",
-- never a second push.
CREATE TABLE message_deliveries (
    message_id  bigint NOT NULL REFERENCES conversation_messages (id) ON DELETE CASCADE,
    device_id   bigint NOT NULL,
    platform    text NOT NULL,
    status      text NOT NULL CHECK (status IN ('pending', 'sending', 'delivered', 'failed', 'unknown')),
    outcome     text,
    reason      text,
    provider_id text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (message_id, device_id)
);

-- Attachments: metadata here, bytes behind attachments.Storage.
CREATE TABLE attachments (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscriber_id   bigint NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    conversation_id bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    storage_key     text NOT NULL UNIQUE,
    content_type    text NOT NULL,
    size            integer NOT NULL,
    sha256          bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attachments_subscriber_idx ON attachments (subscriber_id);
CREATE TABLE attachment_blobs (
    storage_key text PRIMARY KEY,
    data        bytea NOT NULL
);

-- Canned responses: short texts with placeholders ({{subscriber.name}}).
CREATE TABLE canned_responses (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    short_code text NOT NULL CHECK (short_code ~ '^[a-z0-9][a-z0-9_-]{0,39}$'),
    title      text NOT NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX canned_responses_code_key ON canned_responses (short_code);

-- Who is looking at a conversation right now (refreshed by the console).
CREATE TABLE conversation_viewers (
    conversation_id bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    seen_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, user_id)
);

-- Campaign receipts are counts, never per person: the service worker or
-- app reports them with a per-campaign token.
ALTER TABLE campaigns
    ADD COLUMN confirmed_deliveries bigint NOT NULL DEFAULT 0,
    ADD COLUMN opens                bigint NOT NULL DEFAULT 0;
-- Receipts are counted once per device without naming it: the key is a
-- keyed digest of campaign and device, which the table cannot be read back to.
CREATE TABLE campaign_receipts (
    campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('delivered', 'read')),
    digest      bytea NOT NULL,
    PRIMARY KEY (campaign_id, kind, digest)
);

-- An agent sees which campaigns a subscriber received.
CREATE INDEX deliveries_subscriber_idx ON deliveries (subscriber_id);

-- STOP and START written in a conversation change memberships too.
ALTER TABLE consent_records DROP CONSTRAINT consent_records_source_check;
ALTER TABLE consent_records ADD CONSTRAINT consent_records_source_check
    CHECK (source IN ('web', 'app', 'import', 'admin', 'link', 'system', 'keyword'));
