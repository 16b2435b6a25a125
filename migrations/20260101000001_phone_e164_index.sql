-- no-transaction
-- One person's leads across sources, by time.
-- Built CONCURRENTLY, so the CRM keeps writing meanwhile; that must run outside a
-- transaction (the first line tells sqlx) and alone in its file. `migrate` waits for any
-- lock at most lock_timeout, and drops an index an interrupted build left invalid before
-- it runs again (shared/src/store.rs).

CREATE INDEX CONCURRENTLY IF NOT EXISTS "mg-digital-leads_phone_e164_idx"
    ON public."mg-digital-leads" (phone_e164, created_at);
