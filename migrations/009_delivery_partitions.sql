-- Per-device delivery records, partitioned by campaign id range, with a
-- campaign's totals kept as counters beside them.
--
-- Why by campaign range: the primary key (campaign_id, device_id) stays as it
-- is (a time key would have to join it, and the claim's ON CONFLICT needs it
-- whole); campaign ids grow with time, so a range of them is a span of days;
-- every query names its campaign, so it touches one partition; and a range
-- whose campaigns all ended long ago is dropped whole (no DELETE, no dead
-- tuples, no vacuum debt). The width is fixed: 32 campaign ids a partition.

-- Which partitions exist. The retention job drops whole partitions and
-- deletes their row; a campaign that sends into a dropped range (a draft
-- started months later) gets its partition back.
CREATE TABLE delivery_partitions (
    lo         bigint PRIMARY KEY,
    hi         bigint NOT NULL,
    name       text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A campaign's delivery totals by platform, status and outcome ('' while a
-- row is claimed or delivered), kept by the triggers below in the statement
-- that changes the rows, so in the same transaction. Each writing connection
-- adds to its own slot (its backend pid modulo 16), so that concurrent
-- batches of one campaign do not queue on one counter row; a stats call sums
-- at most 16 rows per key, however many devices the campaign had. The totals
-- outlive the rows they count: retention drops partitions without firing
-- a trigger.
CREATE TABLE campaign_delivery_counts (
    campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    platform    text NOT NULL,
    status      text NOT NULL,
    outcome     text NOT NULL,
    slot        smallint NOT NULL,
    n           bigint NOT NULL DEFAULT 0,
    resent      bigint NOT NULL DEFAULT 0,  -- rows with resends > 0
    waiting     bigint NOT NULL DEFAULT 0,  -- rows with a retry time
    PRIMARY KEY (campaign_id, platform, status, outcome, slot)
);

ALTER TABLE deliveries RENAME TO deliveries_unpartitioned;
ALTER TABLE deliveries_unpartitioned RENAME CONSTRAINT deliveries_pkey TO deliveries_unpartitioned_pkey;
DROP INDEX deliveries_batch_idx, deliveries_retryable_idx, deliveries_problems_idx, deliveries_subscriber_idx;

-- No foreign key to campaigns: claims are only ever written by the claim
-- statement of a running campaign, campaigns are never deleted, and the
-- check's per-row FOR KEY SHARE lock on the one campaign row was a cost on
-- every device of every send.
CREATE TABLE deliveries (
    campaign_id   bigint NOT NULL,
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
    resends       integer NOT NULL DEFAULT 0,
    retry_at      timestamptz,
    claim_token   bigint,
    PRIMARY KEY (campaign_id, device_id)
) PARTITION BY RANGE (campaign_id);

-- A delivered row is in the primary key and the subscriber index only; the
-- other indexes hold the rows that still need attention.
CREATE INDEX deliveries_claimed_idx ON deliveries (campaign_id, batch) WHERE status = 'claimed';
CREATE INDEX deliveries_retryable_idx ON deliveries (campaign_id) WHERE status = 'failed' AND outcome IN ('retryable', 'throttled');
CREATE INDEX deliveries_problems_idx ON deliveries (campaign_id, status, device_id) WHERE status IN ('failed', 'unknown');
CREATE INDEX deliveries_subscriber_idx ON deliveries (subscriber_id);

-- herald_delivery_partition makes sure the partition that holds a
-- campaign's deliveries exists, and returns its name. The partition is made
-- empty and attached (which locks the parent less than CREATE ... PARTITION
-- OF), under an advisory lock so that processes racing for it make it once.
CREATE FUNCTION herald_delivery_partition(campaign bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    width CONSTANT bigint := 32;
    p_lo bigint := (campaign / width) * width;
    p_name text := 'deliveries_c' || p_lo;
BEGIN
    IF EXISTS (SELECT 1 FROM delivery_partitions WHERE lo = p_lo) THEN
        RETURN p_name;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.delivery_partitions'));
    IF EXISTS (SELECT 1 FROM delivery_partitions WHERE lo = p_lo) THEN
        RETURN p_name;
    END IF;
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I (LIKE deliveries INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', p_name);
    IF NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = to_regclass(quote_ident(p_name))) THEN
        EXECUTE format('ALTER TABLE deliveries ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', p_name, p_lo, p_lo + width);
    END IF;
    INSERT INTO delivery_partitions (lo, hi, name) VALUES (p_lo, p_lo + width, p_name);
    RETURN p_name;
END
$$;

SELECT herald_delivery_partition(id) FROM (SELECT DISTINCT id / 32 * 32 AS id FROM campaigns) c;
-- The partition after the newest campaign's, made ahead of time.
SELECT herald_delivery_partition(coalesce(max(id), 0) + 32) FROM campaigns;

INSERT INTO deliveries (campaign_id, device_id, subscriber_id, batch, platform, status, outcome, reason, provider_id,
        attempts, claimed_at, finished_at, resends, retry_at, claim_token)
    SELECT campaign_id, device_id, subscriber_id, batch, platform, status, outcome, reason, provider_id,
        attempts, claimed_at, finished_at, resends, retry_at, claim_token
    FROM deliveries_unpartitioned;
DROP TABLE deliveries_unpartitioned;

INSERT INTO campaign_delivery_counts (campaign_id, platform, status, outcome, slot, n, resent, waiting)
    SELECT campaign_id, platform, status, coalesce(outcome, ''), 0, count(*), count(*) FILTER (WHERE resends > 0),
        count(*) FILTER (WHERE retry_at IS NOT NULL)
    FROM deliveries GROUP BY 1, 2, 3, 4;

-- The counting triggers: one statement-level trigger per kind of change,
-- reading the statement's transition tables, so that a slice of 500 rows
-- costs one small aggregate, not 500 counter updates. Groups that net to
-- zero (a row whose counted columns did not change) write nothing.
CREATE FUNCTION herald_count_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO campaign_delivery_counts AS t (campaign_id, platform, status, outcome, slot, n, resent, waiting)
        SELECT campaign_id, platform, status, coalesce(outcome, ''), pg_backend_pid() % 16, count(*),
            count(*) FILTER (WHERE resends > 0), count(*) FILTER (WHERE retry_at IS NOT NULL)
        FROM new_rows GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (campaign_id, platform, status, outcome, slot) DO UPDATE
        SET n = t.n + excluded.n, resent = t.resent + excluded.resent, waiting = t.waiting + excluded.waiting;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO campaign_delivery_counts AS t (campaign_id, platform, status, outcome, slot, n, resent, waiting)
        SELECT campaign_id, platform, status, outcome, pg_backend_pid() % 16, sum(n), sum(resent), sum(waiting)
        FROM (
            SELECT campaign_id, platform, status, coalesce(outcome, '') AS outcome, 1 AS n,
                (resends > 0)::int AS resent, (retry_at IS NOT NULL)::int AS waiting FROM new_rows
            UNION ALL
            SELECT campaign_id, platform, status, coalesce(outcome, ''), -1,
                -(resends > 0)::int, -(retry_at IS NOT NULL)::int FROM old_rows
        ) d
        GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0 OR sum(resent) <> 0 OR sum(waiting) <> 0 ORDER BY 1, 2, 3, 4
        ON CONFLICT (campaign_id, platform, status, outcome, slot) DO UPDATE
        SET n = t.n + excluded.n, resent = t.resent + excluded.resent, waiting = t.waiting + excluded.waiting;
    ELSE
        -- A campaign's own deletion takes its counters with it.
        INSERT INTO campaign_delivery_counts AS t (campaign_id, platform, status, outcome, slot, n, resent, waiting)
        SELECT campaign_id, platform, status, coalesce(outcome, ''), pg_backend_pid() % 16, -count(*),
            -count(*) FILTER (WHERE resends > 0), -count(*) FILTER (WHERE retry_at IS NOT NULL)
        FROM old_rows o WHERE EXISTS (SELECT 1 FROM campaigns c WHERE c.id = o.campaign_id)
        GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (campaign_id, platform, status, outcome, slot) DO UPDATE
        SET n = t.n + excluded.n, resent = t.resent + excluded.resent, waiting = t.waiting + excluded.waiting;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION herald_count_deliveries();
CREATE TRIGGER deliveries_count_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION herald_count_deliveries();
CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION herald_count_deliveries();
