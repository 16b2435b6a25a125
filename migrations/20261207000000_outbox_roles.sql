-- The outbox's detail holds names and phones, so only the relay reads it.
--
-- lead_writer (every internet-facing function) may insert a lead's event and delete the
-- one it has just published, nothing more: it names the row by a token only the
-- inserting statement knows (lead_outbox_published below), and reads no outbox column.
--
-- lead_relay (functions/relay) reads the outbox, holds what it publishes (FOR UPDATE
-- needs UPDATE) and deletes what EventBridge took. `migrate` sets its password from its
-- own secret (DB_RELAY_SECRET_ARN), as it does the other roles'.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lead_relay') THEN
        CREATE ROLE lead_relay NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

ALTER TABLE public.lead_outbox ADD COLUMN IF NOT EXISTS token uuid;

REVOKE SELECT, UPDATE, DELETE ON public.lead_outbox FROM lead_writer;
GRANT INSERT ON public.lead_outbox TO lead_writer;

GRANT USAGE ON SCHEMA public TO lead_relay;
GRANT SELECT, UPDATE, DELETE ON public.lead_outbox TO lead_relay;

-- Deletes the writer's own row once EventBridge took it: the row's id and the token the
-- insert drew, which no other session knows. Runs as the table's owner, so the writer
-- needs no DELETE; a fixed search_path, so no other schema's objects are called.
CREATE OR REPLACE FUNCTION public.lead_outbox_published(outbox_id bigint, outbox_token uuid)
RETURNS boolean
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM public.lead_outbox WHERE id = outbox_id AND token = outbox_token
        RETURNING 1
    )
    SELECT count(*) > 0 FROM gone
$$;

REVOKE ALL ON FUNCTION public.lead_outbox_published(bigint, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.lead_outbox_published(bigint, uuid) TO lead_writer;

-- The events EventBridge refused for themselves (a detail it cannot take), moved out of
-- the outbox by the relay with the reason, so they never hold back the others; kept for
-- an operator (docs/operations.md, "An event set aside") and alarmed.
CREATE TABLE IF NOT EXISTS public.lead_outbox_refused (
    id          bigint      PRIMARY KEY,
    lead_id     text        NOT NULL,
    detail      jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL,
    reason      text        NOT NULL,
    refused_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE public.lead_outbox_refused IS
    'Lead stored events EventBridge refused, set aside by the relay; see docs/operations.md';

GRANT INSERT ON public.lead_outbox_refused TO lead_relay;
