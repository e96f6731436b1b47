-- A conversation is a subscriber talking with the company: replies to
-- campaigns (quick-reply buttons) land here for support agents.
CREATE TABLE conversations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscriber_id   bigint NOT NULL REFERENCES subscribers (id),
    app_id          bigint REFERENCES apps (id),
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'assigned', 'closed')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    last_message_at timestamptz NOT NULL DEFAULT now()
);
-- One conversation that is not closed per subscriber: new replies join it.
CREATE UNIQUE INDEX conversations_current_idx ON conversations (subscriber_id) WHERE status <> 'closed';
CREATE INDEX conversations_queue_idx ON conversations (status, last_message_at);

CREATE TABLE conversation_messages (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    author          text NOT NULL CHECK (author IN ('subscriber', 'agent', 'system')),
    body            text NOT NULL,
    -- The campaign and action a quick reply came from.
    campaign_id     bigint,
    action          text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversation_messages_conversation_idx ON conversation_messages (conversation_id, id);
