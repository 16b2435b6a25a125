-- no-transaction
-- A partner's own id of a lead is stored once per platform.
-- Built CONCURRENTLY, so the CRM keeps writing meanwhile; that must run outside a
-- transaction (the first line tells sqlx) and alone in its file. `migrate` waits for any
-- lock at most lock_timeout, and drops an index an interrupted build left invalid before
-- it runs again (shared/src/store.rs).

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "mg-digital-leads_platform_partner_lead_id_key"
    ON public."mg-digital-leads" (platform, partner_lead_id)
    WHERE partner_lead_id IS NOT NULL;
