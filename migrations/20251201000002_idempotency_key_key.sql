-- no-transaction
-- An Idempotency-Key is stored once per platform.
-- Built CONCURRENTLY, so the CRM keeps writing meanwhile; that must run outside a
-- transaction (the first line tells sqlx) and alone in its file. `migrate` waits for any
-- lock at most lock_timeout, and drops an index an interrupted build left invalid before
-- it runs again (shared/src/store.rs).

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "mg-digital-leads_platform_idempotency_key_key"
    ON public."mg-digital-leads" (platform, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
