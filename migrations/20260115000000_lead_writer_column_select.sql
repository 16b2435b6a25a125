-- lead_writer reads only what storing a lead once needs, not the leads themselves: a
-- function that is compromised can add leads but not list every customer's name, phone
-- number or payload.
--
-- What the store reads (shared/src/store.rs): `RETURNING id` of the insert; the columns
-- a repeat is found by and compared on (platform, partner_lead_id, idempotency_key,
-- body_sha256, body_hash, created_at); and the same columns in the WHERE of the claim
-- release, since an UPDATE needs SELECT on every column its WHERE reads. The insert's
-- `ON CONFLICT DO NOTHING` names no conflict target, so it reads nothing itself.
--
-- Revoking the table-wide SELECT also revokes its column grants, so the columns are
-- granted after it. The CRM's own users keep whatever they had.

REVOKE SELECT ON public."mg-digital-leads" FROM lead_writer;
GRANT SELECT (id, platform, created_at, partner_lead_id, idempotency_key, body_sha256, body_hash)
    ON public."mg-digital-leads" TO lead_writer;
