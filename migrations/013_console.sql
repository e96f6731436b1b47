-- Deliveries over time, for the chart on a campaign's page. As with
-- campaign_delivery_counts, the figures are kept as outcomes are written,
-- by a statement-level trigger over the statement's transition tables (one
-- small aggregate per slice of 500 rows), never counted from the delivery
-- rows when the page asks. A row is ten seconds of one campaign's outcomes;
-- slot spreads concurrent writers over rows, so that batches recording
-- their slices at the same moment do not queue behind one row lock.
CREATE TABLE campaign_delivery_timeline (
    campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    bucket      timestamptz NOT NULL,
    slot        smallint NOT NULL,
    delivered   bigint NOT NULL DEFAULT 0,
    failed      bigint NOT NULL DEFAULT 0,
    unknown     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, bucket, slot)
);

-- Counts a delivery where it reached its outcome: when it is written with
-- it (a slice's outcomes are inserted), or when it changes (a resend or a
-- retry takes the earlier outcome back out of its ten seconds, and the new
-- one is counted in its own). So each delivery is counted once, at its
-- latest outcome, and a timeline's totals are the campaign's figures.
CREATE FUNCTION herald_delivery_timeline() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO campaign_delivery_timeline AS t (campaign_id, bucket, slot, delivered, failed, unknown)
        SELECT n.campaign_id, date_bin('10 seconds', coalesce(n.finished_at, now()), timestamptz '2000-01-01'),
            pg_backend_pid() % 16,
            count(*) FILTER (WHERE n.status = 'delivered'), count(*) FILTER (WHERE n.status = 'failed'),
            count(*) FILTER (WHERE n.status = 'unknown')
        FROM new_rows n
        WHERE n.status IN ('delivered', 'failed', 'unknown')
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (campaign_id, bucket, slot) DO UPDATE
        SET delivered = t.delivered + excluded.delivered, failed = t.failed + excluded.failed,
            unknown = t.unknown + excluded.unknown;
    ELSE
        INSERT INTO campaign_delivery_timeline AS t (campaign_id, bucket, slot, delivered, failed, unknown)
        SELECT campaign_id, bucket, pg_backend_pid() % 16, sum(delivered), sum(failed), sum(unknown)
        FROM (
            SELECT n.campaign_id, date_bin('10 seconds', coalesce(n.finished_at, now()), timestamptz '2000-01-01') AS bucket,
                (n.status = 'delivered')::int AS delivered, (n.status = 'failed')::int AS failed,
                (n.status = 'unknown')::int AS unknown
            FROM new_rows n JOIN old_rows o ON o.campaign_id = n.campaign_id AND o.device_id = n.device_id
            WHERE n.status IN ('delivered', 'failed', 'unknown')
              AND (o.status IS DISTINCT FROM n.status OR o.finished_at IS DISTINCT FROM n.finished_at)
            UNION ALL
            SELECT o.campaign_id, date_bin('10 seconds', coalesce(o.finished_at, now()), timestamptz '2000-01-01'),
                -(o.status = 'delivered')::int, -(o.status = 'failed')::int, -(o.status = 'unknown')::int
            FROM old_rows o JOIN new_rows n ON n.campaign_id = o.campaign_id AND n.device_id = o.device_id
            WHERE o.status IN ('delivered', 'failed', 'unknown')
              AND (o.status IS DISTINCT FROM n.status OR o.finished_at IS DISTINCT FROM n.finished_at)
        ) d
        GROUP BY 1, 2 HAVING sum(delivered) <> 0 OR sum(failed) <> 0 OR sum(unknown) <> 0 ORDER BY 1, 2
        ON CONFLICT (campaign_id, bucket, slot) DO UPDATE
        SET delivered = t.delivered + excluded.delivered, failed = t.failed + excluded.failed,
            unknown = t.unknown + excluded.unknown;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER deliveries_timeline_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION herald_delivery_timeline();
CREATE TRIGGER deliveries_timeline_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION herald_delivery_timeline();

-- The campaigns that ran before this migration: their outcomes by the time
-- each was recorded, as far as the delivery rows still tell.
INSERT INTO campaign_delivery_timeline (campaign_id, bucket, slot, delivered, failed, unknown)
    SELECT campaign_id, date_bin('10 seconds', finished_at, timestamptz '2000-01-01'), 0,
        count(*) FILTER (WHERE status = 'delivered'), count(*) FILTER (WHERE status = 'failed'),
        count(*) FILTER (WHERE status = 'unknown')
    FROM deliveries WHERE status IN ('delivered', 'failed', 'unknown') AND finished_at IS NOT NULL
    GROUP BY 1, 2;

-- A list's own logo on its pages (else its app's), as an app's is kept.
ALTER TABLE lists
    ADD COLUMN logo      bytea CHECK (octet_length(logo) <= 262144),
    ADD COLUMN logo_type text CHECK (logo_type IN ('image/png', 'image/jpeg', 'image/webp')),
    ADD CONSTRAINT lists_logo_typed CHECK ((logo IS NULL) = (logo_type IS NULL));
