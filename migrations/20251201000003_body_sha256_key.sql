-- no-transaction
-- A body's claim (a lead with no id, within its window) is held by one row per platform.
-- Built CONCURRENTLY, so the CRM keeps writing meanwhile; that must run outside a
-- transaction (the first line tells sqlx) and alone in its file. `migrate` waits for any
-- lock at most lock_timeout, and drops an index an interrupted build left invalid before
-- it runs again (shared/src/store.rs).

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "mg-digital-leads_platform_body_sha256_key"
    ON public."mg-digital-leads" (platform, body_sha256)
    WHERE body_sha256 IS NOT NULL;
