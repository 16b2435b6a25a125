-- A scheduled pull's listing in progress, per row (a form's): the filter it lists with
-- (pass_since), when it began (pass_started, where synced_until moves once the listing
-- is done) and the cursor of the next page to store (pass_after). All NULL while no
-- listing is in progress. The existing grant to lead_writer covers these columns.
ALTER TABLE public.lead_sync_watermarks
    ADD COLUMN IF NOT EXISTS pass_since   timestamptz,
    ADD COLUMN IF NOT EXISTS pass_started timestamptz,
    ADD COLUMN IF NOT EXISTS pass_after   text;
