-- Memberships and consent records without per-row foreign key checks.
--
-- A foreign key checks every inserted row on its own, taking a FOR KEY SHARE
-- lock on the referenced row: for an import of a million rows that is a
-- million subscriber rows locked (each lock a write to that row's page) and
-- the one list row locked a million times, and it cost more than the inserts
-- themselves. The same guarantees, held set-wise:
--
-- * Subscribers are never deleted (erasure empties the row and keeps it, so
--   that the consent records keep proving what happened). The trigger below
--   makes that a rule of the database: a membership or consent record can
--   never lose its subscriber. Writers only ever name subscribers they have
--   just read or written.
-- * A list's memberships go with it: the statement trigger below deletes them
--   with the list. Writers of memberships lock the lists they write for
--   (FOR KEY SHARE, once per statement or import), so a list cannot be
--   deleted between their check and their commit, just as the foreign key
--   made sure.
-- * consent_records.list_id never had a foreign key: the log outlives its
--   lists, with their slug.

ALTER TABLE memberships DROP CONSTRAINT memberships_subscriber_id_fkey;
ALTER TABLE memberships DROP CONSTRAINT memberships_list_id_fkey;
ALTER TABLE consent_records DROP CONSTRAINT consent_records_subscriber_id_fkey;

CREATE FUNCTION herald_subscribers_are_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'subscribers are erased, never deleted: their consent records refer to them';
END
$$;
CREATE TRIGGER subscribers_are_kept BEFORE DELETE ON subscribers
    FOR EACH STATEMENT EXECUTE FUNCTION herald_subscribers_are_kept();

CREATE FUNCTION herald_delete_list_memberships() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM memberships m USING old_lists o WHERE m.list_id = o.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER lists_delete_memberships AFTER DELETE ON lists
    REFERENCING OLD TABLE AS old_lists FOR EACH STATEMENT EXECUTE FUNCTION herald_delete_list_memberships();
