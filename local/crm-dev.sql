-- `make dev`'s CRM: two CREs, their team lead and a round-robin rule for every source, so
-- each lead the development functions store is handed off, assigned, and its text written
-- to the log (and, left untouched, escalated).
INSERT INTO users (username, full_name, role, email, phone_number, status) VALUES
    ('asha', 'Asha Rao', 'CRE', 'asha@example.com', '9876500001', true),
    ('ravi', 'Ravi Kumar', 'CRE', 'ravi@example.com', '9876500002', true),
    ('meena', 'Meena Iyer', 'CRE_TL', 'meena@example.com', '9876500009', true);

INSERT INTO assignment_rules (name, source_id, rule_type, priority)
VALUES ('Every source, in turn', NULL, 'round_robin', 1);

INSERT INTO rule_members (rule_id, user_id, created_at)
SELECT r.id, u.user_id, now() + make_interval(secs => u.user_id)
FROM assignment_rules r CROSS JOIN users u WHERE u.role = 'CRE';
