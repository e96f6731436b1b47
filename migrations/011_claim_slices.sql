-- A batch claims its devices a slice at a time, and a slice is one row, not
-- one per device: the row names the devices (in arrays) and is committed
-- before any of them is sent. When the slice's outcomes are known they are
-- written as delivery rows, once each, in the transaction that deletes the
-- slice. So a device costs one delivery row written once, instead of a
-- claimed row and then its update (two row versions, twice the index
-- entries, a dead tuple).
--
-- The guarantees stay: a device is sent only from a committed slice; a
-- slice left by a process that died becomes unknown delivery rows, never a
-- second send (the batch's next run does that before it claims anything);
-- two runs of one batch claim one after the other (an advisory lock per
-- batch), each excluding what the other holds, and whichever run deletes a
-- slice first is the one whose outcomes count.
--
-- Resends, throttled retries and retry rounds claim rows that exist; they
-- keep the row's 'claimed' status and claim_token as before.
CREATE TABLE campaign_slices (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id    bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    batch          integer NOT NULL,
    platform       text NOT NULL,
    token          bigint NOT NULL,
    device_ids     bigint[] NOT NULL,
    subscriber_ids bigint[] NOT NULL,
    claimed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaign_slices_batch_idx ON campaign_slices (campaign_id, batch);
