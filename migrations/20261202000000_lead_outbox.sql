-- The outbox of `Lead stored` events: a row written by the same statement that stores
-- a lead (only when the function publishes events, EVENT_BUS_NAME), deleted once
-- EventBridge has taken it. The function publishes its own rows right after the commit;
-- the relay (functions/relay) publishes what is left, so an event is never lost to an
-- EventBridge outage, and never held back longer than the relay's schedule.
--
-- detail is the event's detail as published, built from the values being inserted:
-- lead_writer may not read the lead's personal columns back (see
-- 20260115000000_lead_writer_column_select.sql), and does not need to.

CREATE TABLE IF NOT EXISTS public.lead_outbox (
    id          bigserial PRIMARY KEY,
    lead_id     text        NOT NULL,
    detail      jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- The relay takes the oldest rows first.
CREATE INDEX IF NOT EXISTS lead_outbox_recorded_at ON public.lead_outbox (recorded_at);

COMMENT ON TABLE public.lead_outbox IS
    'Lead stored events not yet taken by EventBridge; see docs/events.md';

-- Write a lead's event, read it back to publish (the relay's FOR UPDATE needs UPDATE
-- too), and delete it once published.
GRANT SELECT, INSERT, UPDATE, DELETE ON public.lead_outbox TO lead_writer;
GRANT USAGE ON SEQUENCE public.lead_outbox_id_seq TO lead_writer;
