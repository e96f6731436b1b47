-- Outbound webhooks: endpoints admins manage, one delivery row per event and
-- endpoint with its log, and the dispatcher's place in the outbox.

CREATE TABLE webhook_endpoints (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url                   text NOT NULL,
    description           text NOT NULL DEFAULT '',
    -- Event types sent; empty sends every type.
    events                text[] NOT NULL DEFAULT '{}',
    -- Signing secrets, sealed with HERALD_SECRET. During a rotation the
    -- previous secret signs too, until previous_secret_until.
    secret                bytea NOT NULL,
    previous_secret       bytea,
    previous_secret_until timestamptz,
    enabled               boolean NOT NULL DEFAULT true,
    disabled_reason       text NOT NULL DEFAULT '',
    -- Since when every delivery has failed; a day of it disables the endpoint.
    failing_since         timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id      bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         bigint NOT NULL,
    event_type       text NOT NULL,
    -- The person an event is about, so that an erasure removes it.
    subscriber_id    bigint,
    payload          jsonb NOT NULL,
    event_at         timestamptz NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    response_status  integer,
    latency_ms       integer,
    response_excerpt text NOT NULL DEFAULT '',
    error            text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz
);
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_subscriber_idx ON webhook_deliveries (subscriber_id) WHERE subscriber_id IS NOT NULL;

-- Where the dispatcher stands in the outbox (audit.Position). It starts at
-- the events of this migration's time: events before webhooks existed are
-- nobody's to send.
CREATE TABLE webhook_cursor (
    id    boolean PRIMARY KEY DEFAULT true CHECK (id),
    tx    bigint NOT NULL,
    event bigint NOT NULL
);
INSERT INTO webhook_cursor (tx, event)
SELECT coalesce(max(tx)::text::bigint, 0), coalesce(max(id), 0) FROM outbox;
