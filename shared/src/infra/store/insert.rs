//! The statements of a lead's insert, and how a conflict is settled: a repeat finds the
//! row it repeats, an expired body claim is released, a value the table cannot hold is
//! made to fit.

use std::sync::LazyLock;
use std::time::Duration;

use sqlx::postgres::{PgArguments, PgConnection};
use sqlx::query::QueryScalar;
use sqlx::Postgres;

use super::fit::{
    column_widths, fit, without_nul, NOT_IN_REPERTOIRE, STRING_TOO_LONG, UNTRANSLATABLE,
};
use super::lead::Stored;
use super::sqlstate::sqlstate;
use super::RowId;
use crate::domain::event;
use crate::domain::lead::record::LeadRecord;
use crate::infra::aws::events::Recorded;

/// The insert of every lead, as a literal both statements are built from.
/// `ON CONFLICT DO NOTHING` covers the unique deduplication indexes (see the migrations):
/// a repeat inserts nothing and returns no row, race-free, in the same single round trip
/// as a new lead.
macro_rules! insert_lead {
    () => {
        r#"
INSERT INTO public."mg-digital-leads"
    (platform, name, phone_number, car_model, lead_url, campaign, payload,
     created_at, request_id, partner_lead_id, idempotency_key, body_sha256, body_hash,
     phone_e164, meta_created_at, status)
VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb,
        to_timestamp($8::float8 / 1000), $9, $10, $11, $12, $13,
        $14, to_timestamp($15::float8), coalesce($16, 'new'))
ON CONFLICT DO NOTHING"#
    };
}

/// The insert of every lead, returning the new row's id.
const INSERT_LEAD: &str = concat!(insert_lead!(), "\nRETURNING id::text");

/// [`INSERT_LEAD`] that also records the lead's `Lead stored` event in the outbox, in the
/// same statement (so in the same transaction): a lead is stored with its event or not
/// at all, and a repeat, which inserts no lead, records none. The detail is built from
/// the values being inserted, not read back: the functions' role may not read a lead's
/// personal columns, nor any column of the outbox, so the row's id and token are drawn
/// here and returned from the statement, not from the table. `now()` is the
/// transaction's time, the row's `stored_at`. Each field is cut to what an event
/// carries ([`event::field_chars`]); the lead's row keeps it whole.
static INSERT_LEAD_RECORDING_EVENT: LazyLock<String> = LazyLock::new(|| {
    let cut = |field: &str, value: &str| format!("left({value}, {})", event::field_chars(field));
    format!(
        r#"
WITH stored AS ({insert}
    RETURNING id
), recorded AS (
    SELECT stored.id,
           nextval('public.lead_outbox_id_seq') AS outbox_id,
           gen_random_uuid() AS token,
           jsonb_build_object(
               'id', to_jsonb(stored.id),
               'platform', {platform},
               'name', {name},
               'phone_number', {phone_number},
               'phone_e164', {phone_e164},
               'car_model', {car_model},
               'lead_url', {lead_url},
               'campaign', {campaign},
               'status', coalesce($16, 'new'),
               'created_at', to_jsonb(to_timestamp($8::float8 / 1000)),
               'stored_at', to_jsonb(now()),
               'summary', {summary}) AS detail
    FROM stored
), event AS (
    INSERT INTO public.lead_outbox (id, lead_id, detail, token)
    SELECT outbox_id, id::text, detail, token FROM recorded
)
SELECT id::text, outbox_id, token::text, detail::text FROM recorded"#,
        insert = insert_lead!(),
        platform = cut("platform", "$1::text"),
        name = cut("name", "$2::text"),
        phone_number = cut("phone_number", "$3::text"),
        phone_e164 = cut("phone_e164", "$14::text"),
        car_model = cut("car_model", "$4::text"),
        lead_url = cut("lead_url", "$5::text"),
        campaign = cut("campaign", "$6::text"),
        summary = cut("summary", "$17::text"),
    )
});

/// Binds a record's columns, `$1` to `$16` of both insert statements, to `$query`: one
/// list for both, whose queries differ in what they return (and so in type).
macro_rules! bind_lead {
    ($query:expr, $record:expr, $body_claim:expr) => {{
        let record: &LeadRecord = $record;
        let lead = &record.lead;
        $query
            .bind(record.source.platform)
            .bind(&lead.name)
            .bind(&lead.phone_number)
            .bind(&lead.car_model)
            .bind(&lead.lead_url)
            .bind(&lead.campaign)
            .bind(&record.payload)
            .bind(record.received_at_ms() as f64)
            .bind(&record.request_id)
            .bind(&record.identity.partner_lead_id)
            .bind(&record.identity.idempotency_key)
            .bind($body_claim)
            .bind(&record.identity.body_hash)
            .bind(crate::domain::lead::phone::e164(&lead.phone_number))
            // A queued lead from before times were checked is held to the same range.
            .bind(
                lead.submitted_at
                    .and_then(crate::domain::lead::plausible)
                    .map(|seconds| seconds as f64),
            )
            .bind(lead.test.then_some("test"))
    }};
}

/// [`INSERT_LEAD`] bound to a record, claiming its body only when `body_claim` says so.
/// The one place its parameters are bound (the store runs it; `tools` hands it to the
/// benchmark's floor).
pub(crate) fn insert_query<'q>(
    record: &'q LeadRecord,
    body_claim: Option<&'q str>,
) -> QueryScalar<'q, Postgres, String, PgArguments> {
    bind_lead!(sqlx::query_scalar(INSERT_LEAD), record, body_claim)
}

/// [`INSERT_LEAD_RECORDING_EVENT`] bound to a record: the lead's row id, and its event's
/// outbox row (id, token, detail).
fn insert_recording_event_query<'q>(
    record: &'q LeadRecord,
    body_claim: Option<&'q str>,
    summary: &'q str,
) -> sqlx::query::QueryAs<'q, Postgres, (String, i64, String, String), PgArguments> {
    bind_lead!(
        sqlx::query_as(INSERT_LEAD_RECORDING_EVENT.as_str()),
        record,
        body_claim
    )
    .bind(summary)
}
/// The row a repeat collided with. An id match is always a duplicate, and so is the same
/// body with the same arrival (the same request, stored or drained before); a claimed
/// body only within the retry window, so `age_ms` is the stored row's age at the new
/// lead's arrival.
const FIND_EXISTING: &str = r#"
SELECT id::text,
       coalesce(partner_lead_id = $2 OR idempotency_key = $3
                OR (body_hash = $6 AND created_at = to_timestamp($5::float8 / 1000)),
                false) AS same,
       (extract(epoch FROM to_timestamp($5::float8 / 1000) - created_at) * 1000)::float8
FROM public."mg-digital-leads"
WHERE platform = $1
  AND (partner_lead_id = $2 OR idempotency_key = $3 OR body_sha256 = $4
       OR (body_hash = $6 AND created_at = to_timestamp($5::float8 / 1000)))
ORDER BY 2 DESC
LIMIT 1"#;
/// Frees an expired body claim, so the same body may be stored again as a new lead.
const RELEASE_BODY_CLAIM: &str = r#"
UPDATE public."mg-digital-leads" SET body_sha256 = NULL
WHERE platform = $1 AND body_sha256 = $2 AND id::text = $3"#;
/// Stores a lead once, made to fit when the table cannot hold a value as it is, rather
/// than the lead refused.
pub(super) async fn insert_fitting(
    connection: &mut PgConnection,
    record: &LeadRecord,
    window: Duration,
    record_event: bool,
) -> Result<Option<(Stored, Option<Recorded>)>, sqlx::Error> {
    let error = match insert_once(connection, record, window, record_event).await {
        Err(error) => error,
        stored => return stored,
    };
    let fitted = match sqlstate(&error).as_deref() {
        Some(STRING_TOO_LONG) => fit(record, &column_widths(connection).await?),
        Some(UNTRANSLATABLE | NOT_IN_REPERTOIRE) => without_nul(record),
        _ => None,
    };
    match fitted {
        Some(fitted) => insert_once(connection, &fitted, window, record_event).await,
        None => Err(error),
    }
}
/// Stores a lead once on `connection`: inserts it, or finds the row it repeats; `None`
/// when a conflicting row kept changing under it.
async fn insert_once(
    connection: &mut PgConnection,
    record: &LeadRecord,
    window: Duration,
    record_event: bool,
) -> Result<Option<(Stored, Option<Recorded>)>, sqlx::Error> {
    let received_ms = record.received_at_ms() as f64;
    let window_ms = window.as_millis() as f64;
    let platform = record.source.platform;
    let mut body_claim = record.identity.body_hash.as_deref();
    let summary = record_event.then(|| crate::domain::event::summary(record));
    // A conflict is settled in at most two more rounds: an expired claim released (or
    // a newer one stepped around), then the insert again.
    for _ in 0..3 {
        let inserted = match &summary {
            Some(summary) => insert_recording_event_query(record, body_claim, summary)
                .fetch_optional(&mut *connection)
                .await?
                .map(|(id, event, token, detail)| {
                    (
                        id,
                        Some(Recorded {
                            id: event,
                            detail,
                            token: Some(token),
                        }),
                    )
                }),
            None => insert_query(record, body_claim)
                .fetch_optional(&mut *connection)
                .await?
                .map(|id| (id, None)),
        };
        if let Some((id, recorded)) = inserted {
            return Ok(Some((Stored::Created(RowId::from_text(id)), recorded)));
        }
        let existing: Option<(String, bool, f64)> = sqlx::query_as(FIND_EXISTING)
            .bind(platform)
            .bind(&record.identity.partner_lead_id)
            .bind(&record.identity.idempotency_key)
            .bind(body_claim)
            .bind(received_ms)
            .bind(&record.identity.body_hash)
            .fetch_optional(&mut *connection)
            .await?;
        match existing {
            // Deleted since the conflict: try again.
            None => {}
            Some((id, same, age_ms)) if same || age_ms.abs() < window_ms => {
                return Ok(Some((Stored::Duplicate(RowId::from_text(id)), None)));
            }
            // The same body, accepted longer ago than the window: a new lead. It takes
            // the claim over, so its own retries are recognised.
            Some((id, _, age_ms)) if age_ms > 0.0 => {
                sqlx::query(RELEASE_BODY_CLAIM)
                    .bind(platform)
                    .bind(body_claim)
                    .bind(id)
                    .execute(&mut *connection)
                    .await?;
            }
            // The claim belongs to a lead that arrived more than a window *after* this
            // one (a late drain of the queue), and no row holds this request: a
            // different lead, stored unclaimed (its body and arrival still unique).
            Some(_) => body_claim = None,
        }
    }
    Ok(None)
}
