-- The sales desk is told of a lead once, however often its event arrives (EventBridge
-- and the relay deliver at least once). One row per lead and channel: claimed by the
-- invocation that tells, marked sent once the topic took the message. A claim older than
-- the desk's takeover age with nothing sent is an invocation that stopped between the two
-- (a crash, a timeout): the next delivery takes it over and tells.
--
-- lead_desk (functions/desk) reads and writes this table only; `migrate` sets its
-- password from its own secret (DB_DESK_SECRET_ARN), as it does the other roles'.

CREATE TABLE IF NOT EXISTS public.lead_notices (
    lead_id    text        NOT NULL,
    channel    text        NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz,
    message_id text,
    PRIMARY KEY (lead_id, channel)
);

COMMENT ON TABLE public.lead_notices IS
    'Who was told of which lead, once; see docs/events.md';

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lead_desk') THEN
        CREATE ROLE lead_desk NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO lead_desk;
GRANT SELECT, INSERT, UPDATE ON public.lead_notices TO lead_desk;
