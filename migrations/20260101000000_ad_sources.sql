-- What the ad sources need beside the partners' pushes: one person across sources, the
-- time the ad platform gives a lead, and how far a scheduled pull has read.
--
-- phone_e164: the lead's number in E.164 (shared/src/phone.rs), so one person's leads are
-- found together however each source wrote the number. NULL when the number could not
-- be normalised, and for the rows from before this column: they are not backfilled here,
-- since one UPDATE over the CRM's live table would hold its rows' locks until done.
--
-- meta_created_at: when Meta says the lead was created (created_at stays our arrival).
-- The CRM's table already has this column; this adds it where it is missing.
--
-- Both are nullable without a default, so adding them rewrites no row.
-- lead_writer's INSERT on the lead table is table-wide and so covers both.

ALTER TABLE public."mg-digital-leads"
    ADD COLUMN IF NOT EXISTS phone_e164      text,
    ADD COLUMN IF NOT EXISTS meta_created_at timestamptz;

COMMENT ON COLUMN public."mg-digital-leads".phone_e164 IS
    'The phone number in E.164 (+919876543210); NULL when it could not be normalised';

-- A scheduled pull's watermark: each run reads its source from synced_until on, and moves
-- it forward once what it read is stored.
CREATE TABLE IF NOT EXISTS public.lead_sync_watermarks (
    source       text PRIMARY KEY,
    synced_until timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE ON public.lead_sync_watermarks TO lead_writer;
