-- The lead table of the CRM. Every statement is IF NOT EXISTS / idempotent so this also
-- applies onto the table the CRM already has (id, created_at, platform, name,
-- phone_number, car_model, lead_url, payload, status without default, meta_created_at),
-- keeping its rows and columns.
--
-- The CRM writes to this table while a migration runs: `migrate` waits for any lock at
-- most lock_timeout, so a migration that cannot get its lock fails (and is run again)
-- instead of queueing the CRM's writes behind it. Indexes are built CONCURRENTLY by the
-- migrations after this one.

CREATE TABLE IF NOT EXISTS public."mg-digital-leads" (
    id           bigserial PRIMARY KEY,
    created_at   timestamptz NOT NULL DEFAULT now(),
    platform     text,
    name         text,
    phone_number text,
    car_model    text,
    lead_url     text,
    campaign     text,
    status       text DEFAULT 'new',
    payload      jsonb
);

ALTER TABLE public."mg-digital-leads"
    ADD COLUMN IF NOT EXISTS created_at   timestamptz DEFAULT now(),
    ADD COLUMN IF NOT EXISTS platform     text,
    ADD COLUMN IF NOT EXISTS name         text,
    ADD COLUMN IF NOT EXISTS phone_number text,
    ADD COLUMN IF NOT EXISTS car_model    text,
    ADD COLUMN IF NOT EXISTS lead_url     text,
    ADD COLUMN IF NOT EXISTS campaign     text,
    ADD COLUMN IF NOT EXISTS status       text,
    ADD COLUMN IF NOT EXISTS payload      jsonb;

-- New leads start as 'new'; the CRM moves them along. Existing rows keep their status.
ALTER TABLE public."mg-digital-leads"
    ALTER COLUMN status SET DEFAULT 'new',
    ALTER COLUMN created_at SET DEFAULT now();
