//! The leads feed's reads: one page of the lead table for a [`Filter`], newest first,
//! over the reader role's connection (a [`Store`] logged in as `lead_reader`).
//!
//! Pagination is by keyset on the listing time and the id, never `OFFSET`: a page starts
//! strictly after the previous page's last row, so rows stored meanwhile (which are newer)
//! neither shift a page nor appear twice, and a page deep in the walk costs what the
//! first does. The listing time is [`LISTED_AT`], the expression the feed's indexes are
//! built on (migrations/…_feed_indexes.sql): the two must stay identical.

use sqlx::{Execute, FromRow, Postgres, QueryBuilder};
use tokio::sync::OnceCell;

use crate::domain::lead::record::RowId;
use crate::domain::listing::{self, Cursor, FeedLead, Filter};
use crate::error::{FeedError, StoreError};
use crate::infra::store::Store;

/// Whether the table's `id` is an integer (the table this project creates) or of
/// another type (a legacy table's text or uuid), read from the catalog once.
const ID_IS_INTEGER: &str = r#"
SELECT atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
FROM pg_attribute
WHERE attrelid = 'public."mg-digital-leads"'::regclass AND attname = 'id' AND NOT attisdropped"#;

/// When a row was stored; for rows from before `stored_at` existed, when it arrived; for
/// a row with neither, the epoch (listed last rather than never).
pub const LISTED_AT: &str = "coalesce(stored_at, created_at, 'epoch'::timestamptz)";

/// A row of a page, with the listing time its cursor is made from.
#[derive(Debug, Clone)]
pub struct ListedLead {
    pub lead: FeedLead,
    pub cursor: Cursor,
}

#[derive(FromRow)]
struct Row {
    /// The id as text (an alias of its own: `ORDER BY id` must name the column).
    row_id: String,
    platform: Option<String>,
    name: Option<String>,
    phone_number: Option<String>,
    phone_e164: Option<String>,
    car_model: Option<String>,
    lead_url: Option<String>,
    campaign: Option<String>,
    status: Option<String>,
    created_us: Option<i64>,
    stored_us: Option<i64>,
    meta_created_us: Option<i64>,
    /// None only for a row whose every time is out of range (an infinity): it sorts
    /// before or after the others, and its cursor takes the epoch.
    listed_us: Option<i64>,
    payload: Option<String>,
}

/// The lead table as the feed reads it.
#[derive(Debug)]
pub struct Reader {
    store: Store,
    /// Whether `id` is an integer: then rows are ordered and compared by it as a number,
    /// else as text (the order of a text id; a uuid's text).
    integer_id: OnceCell<bool>,
}

/// A time column as exact Unix microseconds (`extract` is exact numeric since
/// PostgreSQL 14), so times leave the database without a float on the way. A time no
/// year of four digits holds (an infinity, the year 294247 written before times were
/// checked) reads as none: no row can fail a page, and every cursor the feed gives is one
/// it takes back.
fn micros(column: &str) -> String {
    format!(
        "CASE WHEN {column} >= '0001-01-01T00:00:00Z' AND {column} < '10000-01-01T00:00:00Z' \
         THEN (extract(epoch FROM {column}) * 1000000)::int8 END"
    )
}

/// One stored lead, as the CRM hand-off reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLead {
    pub id: String,
    pub platform: String,
    pub name: Option<String>,
    pub phone_number: Option<String>,
    pub car_model: Option<String>,
    /// The platform's own id of the lead, when it sent one.
    pub partner_lead_id: Option<String>,
    pub payload: serde_json::Value,
    /// When it arrived, Unix milliseconds.
    pub created_at_ms: i64,
}

/// The columns the hand-off reads (its role may read these and no other), of the row
/// `WHERE` names.
const ONE_LEAD: &str = r#"
SELECT id::text, coalesce(platform, ''), name, phone_number, car_model, partner_lead_id,
       coalesce(payload::text, 'null'),
       coalesce((extract(epoch FROM created_at) * 1000)::int8, 0)
FROM public."mg-digital-leads" WHERE "#;

impl Reader {
    /// The lead whose row id is `id` (a number's digits, or a legacy table's text).
    pub async fn lead(&self, id: &str) -> Result<Option<StoredLead>, StoreError> {
        type Row = (
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
            i64,
        );
        // An integer id by its index; a number that is no integer id names no row.
        let sql = if self.integer_id().await? {
            if id.parse::<i64>().is_err() {
                return Ok(None);
            }
            format!("{ONE_LEAD}id = $1::int8")
        } else {
            format!("{ONE_LEAD}id::text = $1")
        };
        let id = id.to_owned();
        let row: Option<Row> = self
            .store
            .read(|connection| {
                let (sql, id) = (sql.clone(), id.clone());
                Box::pin(async move {
                    sqlx::query_as(&sql)
                        .bind(id)
                        .fetch_optional(connection)
                        .await
                })
            })
            .await?;
        Ok(row.map(
            |(
                id,
                platform,
                name,
                phone_number,
                car_model,
                partner_lead_id,
                payload,
                created_at_ms,
            )| {
                StoredLead {
                    id,
                    platform,
                    name,
                    phone_number,
                    car_model,
                    partner_lead_id,
                    payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
                    created_at_ms,
                }
            },
        ))
    }

    /// The ids of the leads that arrived from `from_ms` until `until_ms` (Unix
    /// milliseconds), test leads aside, after the row `after`, at most `limit`, in the
    /// order of their ids: a backfill's next page.
    pub async fn ids(
        &self,
        from_ms: i64,
        until_ms: i64,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let (compare, after) = if self.integer_id().await? {
            let after = match after {
                Some(id) => id.parse::<i64>().unwrap_or(i64::MAX),
                None => i64::MIN,
            };
            ("id > $3::int8 ORDER BY id", after.to_string())
        } else {
            (
                "id::text > $3 ORDER BY id::text",
                after.unwrap_or_default().to_owned(),
            )
        };
        let sql = format!(
            // The text under a name of its own: `ORDER BY id` must name the column.
            r#"SELECT id::text AS row_id FROM public."mg-digital-leads"
               WHERE created_at >= to_timestamp($1::float8 / 1000)
                 AND created_at < to_timestamp($2::float8 / 1000)
                 AND coalesce(status, '') <> 'test' AND {compare} LIMIT $4"#
        );
        self.store
            .read(|connection| {
                let (sql, after) = (sql.clone(), after.clone());
                Box::pin(async move {
                    sqlx::query_scalar(&sql)
                        .bind(from_ms as f64)
                        .bind(until_ms as f64)
                        .bind(after)
                        .bind(limit)
                        .fetch_all(connection)
                        .await
                })
            })
            .await
    }

    /// Reads through `store`, which should log in as `lead_reader`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            integer_id: OnceCell::new(),
        }
    }

    async fn integer_id(&self) -> Result<bool, StoreError> {
        self.integer_id
            .get_or_try_init(|| {
                self.store.read(|connection| {
                    Box::pin(async move {
                        sqlx::query_scalar(ID_IS_INTEGER)
                            .fetch_one(connection)
                            .await
                    })
                })
            })
            .await
            .copied()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Up to `filter.limit + 1` rows after the filter's cursor: the extra row says
    /// whether there is a next page.
    pub async fn page(&self, filter: &Filter) -> Result<Vec<ListedLead>, FeedError> {
        let integer_id = self.integer_id().await?;
        // The id as the table compares it: an integer's as a number, another type's as
        // its text. A cursor of the other kind is not one this table's feed gave.
        let id = if integer_id { "id" } else { "id::text" };
        let after = match &filter.after {
            None => None,
            Some(Cursor {
                listed_at_us,
                id: RowId::Number(number),
            }) if integer_id => Some((listing::bound(*listed_at_us), number.to_string())),
            Some(Cursor {
                listed_at_us,
                id: RowId::Text(text),
            }) if !integer_id => Some((listing::bound(*listed_at_us), text.clone())),
            Some(_) => {
                return Err(FeedError::Parameter {
                    parameter: "cursor".into(),
                    reason: "is not a cursor this feed gave".into(),
                })
            }
        };
        let from = filter.from_us.map(listing::bound);
        let until = filter.until_us.map(listing::bound);
        let pattern = filter.search.as_deref().map(listing::like_pattern);
        let mut query = QueryBuilder::<Postgres>::new("");
        {
            query.push(format!(
                "SELECT id::text AS row_id, platform, name, phone_number, phone_e164, \
                     car_model, lead_url, campaign, status, {} AS created_us, \
                     {} AS stored_us, {} AS meta_created_us, {} AS listed_us, {} AS payload \
                     FROM public.\"mg-digital-leads\" WHERE true",
                micros("created_at"),
                micros("stored_at"),
                micros("meta_created_at"),
                micros(LISTED_AT),
                if filter.payload {
                    "payload::text"
                } else {
                    "NULL::text"
                },
            ));
            if !filter.platforms.is_empty() {
                query
                    .push(" AND platform = ANY(")
                    .push_bind(&filter.platforms)
                    .push(")");
            }
            if !filter.statuses.is_empty() {
                query
                    .push(" AND status = ANY(")
                    .push_bind(&filter.statuses)
                    .push(")");
            }
            if let Some(from) = &from {
                query
                    .push(format_args!(" AND {LISTED_AT} >= "))
                    .push_bind(from.as_deref())
                    .push("::timestamptz");
            }
            if let Some(until) = &until {
                query
                    .push(format_args!(" AND {LISTED_AT} < "))
                    .push_bind(until.as_deref())
                    .push("::timestamptz");
            }
            if let Some(phone) = &filter.phone_e164 {
                query.push(" AND phone_e164 = ").push_bind(phone);
            }
            if let Some(pattern) = &pattern {
                // Backslash is ILIKE's default escape: `like_pattern` escapes with it.
                let mut columns = [
                    "name",
                    "phone_number",
                    "phone_e164",
                    "car_model",
                    "campaign",
                ]
                .into_iter()
                .peekable();
                query.push(" AND (");
                while let Some(column) = columns.next() {
                    query
                        .push(format_args!("{column} ILIKE "))
                        .push_bind(pattern);
                    if columns.peek().is_some() {
                        query.push(" OR ");
                    }
                }
                query.push(")");
            }
            if let Some((listed_at, after_id)) = &after {
                query
                    .push(format_args!(" AND ({LISTED_AT}, {id}) < ("))
                    .push_bind(listed_at.as_deref())
                    .push("::timestamptz, ")
                    .push_bind(after_id.clone())
                    .push(if integer_id { "::int8)" } else { "::text)" });
            }
            query
                .push(format_args!(" ORDER BY {LISTED_AT} DESC, {id} DESC LIMIT "))
                .push_bind(i64::from(filter.limit) + 1);
        }
        let sql = query.sql().to_owned();
        let arguments = query
            .build()
            .take_arguments()
            .map_err(|error| StoreError::Rejected(sqlx::Error::Encode(error)))?
            .unwrap_or_default();
        let rows: Vec<Row> = self
            .store
            .read(|connection| {
                let sql = sql.clone();
                let arguments = arguments.clone();
                Box::pin(async move {
                    sqlx::query_as_with::<_, Row, _>(&sql, arguments)
                        .fetch_all(connection)
                        .await
                })
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| listed(row, integer_id))
            .collect())
    }
}

fn listed(row: Row, integer_id: bool) -> ListedLead {
    // A text id stays text, leading zeros and all: its cursor must compare equal.
    let id = if integer_id {
        RowId::from_text(row.row_id)
    } else {
        RowId::Text(row.row_id)
    };
    let time = |micros: Option<i64>| micros.and_then(listing::timestamp);
    // The stored text of a jsonb is JSON; should it ever not be, the lead goes without.
    let payload = row
        .payload
        .and_then(|text| serde_json::value::RawValue::from_string(text).ok());
    ListedLead {
        cursor: Cursor {
            listed_at_us: row.listed_us.unwrap_or_default(),
            id: id.clone(),
        },
        lead: FeedLead {
            id,
            platform: row.platform,
            name: row.name,
            phone_number: row.phone_number,
            phone_e164: row.phone_e164,
            car_model: row.car_model,
            lead_url: row.lead_url,
            campaign: row.campaign,
            status: row.status,
            created_at: time(row.created_us),
            stored_at: time(row.stored_us),
            meta_created_at: time(row.meta_created_us),
            payload,
        },
    }
}
