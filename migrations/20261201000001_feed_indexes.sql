-- no-transaction
-- The leads feed lists by the time a row was stored, newest first, ties by id; rows from
-- before stored_at existed by their arrival (shared/src/infra/reader.rs, LISTED_AT: the
-- expression here must stay identical to it for the index to serve the query).
-- Built CONCURRENTLY, so the CRM keeps writing meanwhile; that must run outside a
-- transaction (the first line tells sqlx) and alone in its file. `migrate` waits for any
-- lock at most lock_timeout, and drops an index an interrupted build left invalid before
-- it runs again (shared/src/infra/store.rs).

CREATE INDEX CONCURRENTLY IF NOT EXISTS "mg-digital-leads_listed_at_id_idx"
    ON public."mg-digital-leads" ((coalesce(stored_at, created_at, 'epoch'::timestamptz)) DESC, id DESC);
