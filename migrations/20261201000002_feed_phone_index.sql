-- no-transaction
-- One person's leads across sources, newest first, as the feed pages them (its `phone`
-- parameter): the number, then the same listing time and id as the feed's main index.
-- Built CONCURRENTLY, alone in its file, outside a transaction, as the one before it.

CREATE INDEX CONCURRENTLY IF NOT EXISTS "mg-digital-leads_phone_e164_listed_at_id_idx"
    ON public."mg-digital-leads" (phone_e164, (coalesce(stored_at, created_at, 'epoch'::timestamptz)) DESC, id DESC);
