-- Two columns the arrival time alone cannot give.
--
-- stored_at: when the row was written. created_at stays the lead's arrival, also for a
-- lead queued during an outage and stored later, so a CRM that polls "newer than my last
-- look" polls stored_at. Rows from before this column have none (NULL).
--
-- body_hash: the SHA-256 of the body of a lead identified by its body alone, kept for
-- good (body_sha256 is only the claim on it, released when the window has passed and a
-- new lead brings the same body). With the arrival time it names one request, so a
-- drain that comes late still finds the row its lead was stored in.

ALTER TABLE public."mg-digital-leads"
    ADD COLUMN IF NOT EXISTS stored_at timestamptz,
    ADD COLUMN IF NOT EXISTS body_hash text;
ALTER TABLE public."mg-digital-leads"
    ALTER COLUMN stored_at SET DEFAULT now();

COMMENT ON COLUMN public."mg-digital-leads".stored_at IS
    'When the row was written (created_at is when the lead arrived); poll this one';
COMMENT ON COLUMN public."mg-digital-leads".body_hash IS
    'SHA-256 of the body of a lead identified by its body alone, never cleared';
