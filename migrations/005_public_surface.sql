-- The public surface holds: test sends within consent, and their trail.

-- Devices an admin marked for test sends (a staff member's own phone): they
-- receive test sends of any campaign of their app without list consent.
ALTER TABLE devices ADD COLUMN test_device boolean NOT NULL DEFAULT false;

-- Every test send, who made it and what it reached: the audit trail of
-- messages that bypass a campaign's audience.
CREATE TABLE campaign_test_sends (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id    bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    actor          text NOT NULL,
    subscriber_ids bigint[] NOT NULL,
    device_ids     bigint[] NOT NULL,
    skipped        jsonb NOT NULL DEFAULT '[]',
    -- What each device's provider said, written after sending; NULL when the
    -- process stopped before (the devices may or may not have it).
    outcomes       jsonb,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaign_test_sends_campaign_idx ON campaign_test_sends (campaign_id, created_at);

-- Which run of a batch holds a claim: a run records and releases only its
-- own, so two runs that overlap (a rescue while the first still records)
-- never write over each other's rows.
ALTER TABLE deliveries ADD COLUMN claim_token bigint;
