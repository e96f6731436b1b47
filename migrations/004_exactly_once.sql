-- Exactly once on every path: resends of unknown outcomes, throttled retries
-- inside the campaign, parked batches, a campaign-wide throttle, retry rounds
-- that can be parked and reconciled, idempotent quick replies and the
-- identities of worker processes.

-- resend_unknown: devices whose outcome is unknown (a crash, an expired
-- shutdown grace period, a request cut after it was written) are sent again
-- with the same collapse key, so a device that had it shows one notification.
-- throttle_next_at: the campaign-wide throttle's next free moment, shared by
-- every batch in every process.
ALTER TABLE campaigns
    ADD COLUMN resend_unknown   boolean NOT NULL DEFAULT true,
    ADD COLUMN throttle_next_at timestamptz,
    ADD COLUMN mended           integer NOT NULL DEFAULT 0;

-- A batch is parked while its campaign is paused (its job ended; resume
-- queues a new generation of the job). requeues counts the reconciler's
-- re-queues of a batch whose job had ended while the batch was still pending.
ALTER TABLE campaign_batches DROP CONSTRAINT campaign_batches_state_check;
ALTER TABLE campaign_batches
    ADD CONSTRAINT campaign_batches_state_check CHECK (state IN ('pending', 'parked', 'done', 'cancelled')),
    ADD COLUMN generation integer NOT NULL DEFAULT 0,
    ADD COLUMN requeues   integer NOT NULL DEFAULT 0;
DROP INDEX campaign_batches_pending_idx;
CREATE INDEX campaign_batches_open_idx ON campaign_batches (campaign_id) WHERE state IN ('pending', 'parked');

-- A wave's fan-out is parked the same way while its campaign is paused.
ALTER TABLE campaign_waves
    ADD COLUMN parked     boolean NOT NULL DEFAULT false,
    ADD COLUMN generation integer NOT NULL DEFAULT 0;

-- resends: how often an unknown outcome was sent again. retry_at: when a
-- throttled delivery is tried again inside the campaign (NULL: not again).
ALTER TABLE deliveries
    ADD COLUMN resends  integer NOT NULL DEFAULT 0,
    ADD COLUMN retry_at timestamptz;
-- Operators page through the problems of a campaign by status and reason.
CREATE INDEX deliveries_problems_idx ON deliveries (campaign_id, status, device_id) WHERE status IN ('failed', 'unknown');

-- A retry-failed round, so that it can be parked, resumed and reconciled like
-- a batch. Its deliveries carry batch = -round.
CREATE TABLE campaign_retries (
    campaign_id     bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    round           integer NOT NULL,
    include_unknown boolean NOT NULL DEFAULT false,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'parked', 'done', 'cancelled')),
    generation      integer NOT NULL DEFAULT 0,
    requeues        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, round)
);

-- One quick reply per person, campaign and button: a reply posted twice (a
-- service worker's retry) lands and counts once.
CREATE TABLE campaign_replies (
    campaign_id   bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    subscriber_id bigint NOT NULL,
    action        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, subscriber_id, action)
);
CREATE INDEX campaign_replies_subscriber_idx ON campaign_replies (subscriber_id);

-- Worker identities: a stable River client id per host (or configured),
-- held through a session advisory lock while the process lives. The row is
-- for operators and for the reconciler's view of who is alive.
CREATE TABLE herald_workers (
    id           text PRIMARY KEY,
    hostname     text NOT NULL,
    pid          integer NOT NULL,
    version      text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
