-- The role the CRM hand-off (functions/crm) logs in as: it reads the columns of a lead
-- it hands to the CRM, and writes nothing in the lead table; its ledger of notices (who
-- was texted of which lead, once) it reads and writes. `migrate` sets its password from
-- its own secret (DB_CRM_SECRET_ARN), as it does the other roles'.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lead_crm') THEN
        CREATE ROLE lead_crm NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO lead_crm;
GRANT SELECT (id, platform, name, phone_number, car_model, partner_lead_id, payload, created_at, status)
    ON public."mg-digital-leads" TO lead_crm;
GRANT SELECT, INSERT, UPDATE ON public.lead_notices TO lead_crm;
