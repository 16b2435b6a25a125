-- The role the source functions and the drain log in as: what storing a lead needs and
-- nothing more. The master user stays with `migrate`, which also sets this role's
-- password from its own secret (DB_WRITER_SECRET_ARN) after every run.
--
-- A role belongs to the whole server, so it is created only when missing (and a run
-- beside another, as in the tests, may find it created meanwhile).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lead_writer') THEN
        CREATE ROLE lead_writer NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO lead_writer;
-- Insert a lead, and read back the row a repeat collided with.
GRANT SELECT, INSERT ON public."mg-digital-leads" TO lead_writer;
-- Release an expired body claim (shared/src/store.rs): that column only.
GRANT UPDATE (body_sha256) ON public."mg-digital-leads" TO lead_writer;

-- The id's sequence, whatever the CRM's table named it (none for a non-serial id).
DO $$
DECLARE
    sequence text := pg_get_serial_sequence('public."mg-digital-leads"', 'id');
BEGIN
    IF sequence IS NOT NULL THEN
        EXECUTE format('GRANT USAGE ON SEQUENCE %s TO lead_writer', sequence);
    END IF;
END
$$;
