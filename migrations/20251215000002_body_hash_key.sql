-- no-transaction
-- One request (a body and its arrival) is one row per platform, however late a drain.
-- Built CONCURRENTLY, so the CRM keeps writing meanwhile; that must run outside a
-- transaction (the first line tells sqlx) and alone in its file. `migrate` waits for any
-- lock at most lock_timeout, and drops an index an interrupted build left invalid before
-- it runs again (shared/src/store.rs).

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "mg-digital-leads_platform_body_hash_created_at_key"
    ON public."mg-digital-leads" (platform, body_hash, created_at)
    WHERE body_hash IS NOT NULL;
