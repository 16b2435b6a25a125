-- The role the leads feed logs in as: it reads the lead table and does nothing else. The
-- master user stays with `migrate`, which also sets this role's password from its own
-- secret (DB_READER_SECRET_ARN) after every run, as it does lead_writer's.
--
-- A role belongs to the whole server, so it is created only when missing (and a run
-- beside another, as in the tests, may find it created meanwhile).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lead_reader') THEN
        CREATE ROLE lead_reader NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO lead_reader;
-- Every column (the dashboard shows names, numbers and, when asked, the payload); no
-- INSERT, UPDATE, DELETE or TRUNCATE, and nothing on any other table.
GRANT SELECT ON public."mg-digital-leads" TO lead_reader;
