-- The group CRM's tables, as its own code reads and writes them (docs/crm.md; the
-- CRM's description, CRM.md): a fixture for `make dev` and the tests, never applied to
-- the CRM itself. Columns the CRM's code does not use are left out; the hand-off inserts
-- by column name, so the real tables' other columns (with their defaults) do not matter.

CREATE TABLE IF NOT EXISTS users (
    user_id      bigserial PRIMARY KEY,
    username     text NOT NULL,
    full_name    text,
    role         text NOT NULL,
    email        text,
    phone_number text,
    status       boolean NOT NULL DEFAULT true
);

CREATE TABLE IF NOT EXISTS sources (
    id                 bigserial PRIMARY KEY,
    display_name       text NOT NULL,
    source_type        text NOT NULL,
    total_leads_count  integer NOT NULL DEFAULT 0,
    todays_leads_count integer NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS leads_master (
    id                      bigserial PRIMARY KEY,
    full_name               text,
    phone_number_normalized text,
    alternate_phone_number  text,
    source_id               bigint REFERENCES sources (id),
    external_lead_id        text,
    assigned_to             bigint REFERENCES users (user_id),
    assigned_at             timestamptz,
    status                  text,
    next_followup_at        timestamptz,
    total_attempts          integer DEFAULT 0,
    is_qualified            boolean DEFAULT false,
    raw_payload             jsonb,
    created_at              timestamptz DEFAULT now(),
    updated_at              timestamptz DEFAULT now()
);

CREATE TABLE IF NOT EXISTS lead_sources_history (
    id          bigserial PRIMARY KEY,
    lead_id     bigint REFERENCES leads_master (id),
    source_id   bigint REFERENCES sources (id),
    external_id text,
    raw_payload jsonb,
    is_primary  boolean DEFAULT false,
    received_at timestamptz DEFAULT now()
);

CREATE TABLE IF NOT EXISTS leads_logs (
    id          bigserial PRIMARY KEY,
    lead_id     bigint REFERENCES leads_master (id),
    old_status  text,
    new_status  text,
    remarks     text,
    attempt_no  integer,
    created_by  bigint REFERENCES users (user_id),
    metadata    jsonb,
    created_at  timestamptz DEFAULT now()
);

CREATE TABLE IF NOT EXISTS assignment_rules (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name               text NOT NULL,
    source_id          bigint REFERENCES sources (id),
    rule_type          text NOT NULL,
    is_active          boolean NOT NULL DEFAULT true,
    priority           integer NOT NULL DEFAULT 100,
    active_from        text,
    active_to          text,
    active_days        integer[],
    fallback_rule_id   uuid REFERENCES assignment_rules (id),
    fallback_to_manual boolean NOT NULL DEFAULT true
);

CREATE TABLE IF NOT EXISTS rule_members (
    id               bigserial PRIMARY KEY,
    rule_id          uuid NOT NULL REFERENCES assignment_rules (id),
    user_id          bigint NOT NULL REFERENCES users (user_id),
    percentage       numeric,
    weight           integer NOT NULL DEFAULT 1,
    is_active        boolean NOT NULL DEFAULT true,
    assigned_count   integer NOT NULL DEFAULT 0,
    last_assigned_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS assignment_pointers (
    rule_id               uuid PRIMARY KEY REFERENCES assignment_rules (id),
    current_index         integer NOT NULL DEFAULT 0,
    last_assigned_user_id bigint,
    total_assignments     integer NOT NULL DEFAULT 0,
    updated_at            timestamptz DEFAULT now()
);

-- What speed to lead's scan reads by (docs/crm.md): the leads assigned lately, and a
-- lead's timeline.
CREATE INDEX IF NOT EXISTS leads_master_assigned_at ON leads_master (assigned_at);
CREATE INDEX IF NOT EXISTS leads_logs_lead_id ON leads_logs (lead_id);
