-- What makes a repeat a repeat (shared/src/dedup.rs, shared/src/store.rs): a lead is
-- stored once per platform for the partner's own id, for an Idempotency-Key, and — for a
-- lead with neither, within a retry window — for its exact body. Unique indexes make that
-- race-free: the insert is `ON CONFLICT DO NOTHING`, never check-then-insert.
--
-- Additive and IF NOT EXISTS like the first migration: existing rows keep NULL keys,
-- which no unique index compares, so this applies onto the CRM's table as it is. The
-- unique indexes are built CONCURRENTLY by the migrations after this one.

ALTER TABLE public."mg-digital-leads"
    ADD COLUMN IF NOT EXISTS request_id      text,
    ADD COLUMN IF NOT EXISTS partner_lead_id text,
    ADD COLUMN IF NOT EXISTS idempotency_key text,
    ADD COLUMN IF NOT EXISTS body_sha256     text;

COMMENT ON COLUMN public."mg-digital-leads".request_id IS
    'Lambda request id of the request that brought the lead';
COMMENT ON COLUMN public."mg-digital-leads".partner_lead_id IS
    'The partner''s own id of the lead (Knowlarity uuid/callid/call_uuid, lead_id/id)';
COMMENT ON COLUMN public."mg-digital-leads".idempotency_key IS
    'The Idempotency-Key header of the request';
COMMENT ON COLUMN public."mg-digital-leads".body_sha256 IS
    'SHA-256 of the body while it marks retries (cleared when the window has passed and the same body arrives again)';
