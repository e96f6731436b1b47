-- A campaign is one broadcast. content, audience and schedule are validated
-- JSON documents owned by package campaigns.
CREATE TABLE campaigns (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id              bigint NOT NULL REFERENCES apps (id),
    name                text NOT NULL,
    status              text NOT NULL DEFAULT 'draft'
        CHECK (status IN ('draft', 'scheduled', 'running', 'paused', 'finished', 'cancelled', 'failed')),
    content             jsonb NOT NULL,
    audience            jsonb NOT NULL,
    schedule            jsonb NOT NULL DEFAULT '{"mode":"now"}',
    throttle_per_minute integer CHECK (throttle_per_minute > 0),
    -- The audience bound: the highest device id when the campaign started.
    -- Devices registered later are not part of this send.
    audience_bound      bigint,
    audience_size       bigint,
    next_batch          integer NOT NULL DEFAULT 0,
    failure_reason      text,
    clicks              bigint NOT NULL DEFAULT 0,
    action_taps         jsonb NOT NULL DEFAULT '{}',
    replies             bigint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    scheduled_at        timestamptz,
    started_at          timestamptz,
    paused_at           timestamptz,
    finished_at         timestamptz
);
CREATE INDEX campaigns_status_idx ON campaigns (status);

-- A wave is the part of the audience that is sent at one moment: everyone,
-- or for local-time sends and quiet hours, the subscribers of one time zone.
CREATE TABLE campaign_waves (
    campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    wave        integer NOT NULL,
    timezone    text,            -- NULL: every subscriber
    send_at     timestamptz NOT NULL,
    cursor      bigint NOT NULL DEFAULT 0,  -- keyset position (device id) of the fan-out
    fanned_out  boolean NOT NULL DEFAULT false,
    batches     integer NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, wave)
);

-- A batch is a device-id range of one wave, sent by one River job.
CREATE TABLE campaign_batches (
    campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    batch       integer NOT NULL,
    wave        integer NOT NULL,
    -- Each batch holds one platform's devices, so that batches run on that
    -- provider's queue and one provider's outage holds up no other.
    platform    text NOT NULL,
    after_id    bigint NOT NULL,
    upto_id     bigint NOT NULL,
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'cancelled')),
    PRIMARY KEY (campaign_id, batch)
);
CREATE INDEX campaign_batches_pending_idx ON campaign_batches (campaign_id) WHERE state = 'pending';

-- One row per device a campaign was sent (or is being sent) to. A device is
-- claimed before it is sent to; a claim left by a crashed attempt becomes
-- 'unknown', never a second send.
CREATE TABLE deliveries (
    campaign_id   bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    device_id     bigint NOT NULL,
    subscriber_id bigint NOT NULL,
    batch         integer NOT NULL,
    platform      text NOT NULL,
    status        text NOT NULL CHECK (status IN ('claimed', 'delivered', 'failed', 'unknown')),
    outcome       text,
    reason        text,
    provider_id   text,
    attempts      integer NOT NULL DEFAULT 1,
    claimed_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    PRIMARY KEY (campaign_id, device_id)
);
CREATE INDEX deliveries_batch_idx ON deliveries (campaign_id, batch);
CREATE INDEX deliveries_retryable_idx ON deliveries (campaign_id) WHERE status = 'failed' AND outcome IN ('retryable', 'throttled');

-- Fan-out pages through an app's active devices by id; each batch then reads
-- one platform's devices in an id range.
CREATE INDEX devices_app_active_idx ON devices (app_id, id) WHERE active;
CREATE INDEX devices_app_platform_active_idx ON devices (app_id, platform, id) WHERE active;
