//! The leads feed's reads: one page of the lead table for a [`Filter`], newest first,
//! over the reader role's connection (a [`Store`] logged in as `lead_reader`).
//!
//! Pagination is by keyset on the listing time and the id, never `OFFSET`: a page starts
//! strictly after the previous page's last row, so rows stored meanwhile (which are newer)
//! neither shift a page nor appear twice, and a page deep in the walk costs what the
//! first does. The listing time is [`LISTED_AT`], the expression the feed's indexes are
//! built on (migrations/…_feed_indexes.sql): the two must stay identical.

use sqlx::{Execute, FromRow, Postgres, QueryBuilder};

use crate::domain::feed::{self, Cursor, FeedLead, Filter};
use crate::error::StoreError;
use crate::infra::store::Store;

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
    id: i64,
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
    listed_us: i64,
    payload: Option<String>,
}

/// The lead table as the feed reads it.
#[derive(Debug)]
pub struct Reader {
    store: Store,
}

/// A time column as exact Unix microseconds (`extract` is exact numeric since
/// PostgreSQL 14), so times leave the database without a float on the way.
fn micros(column: &str) -> String {
    format!("(extract(epoch FROM {column}) * 1000000)::int8")
}

impl Reader {
    /// Reads through `store`, which should log in as `lead_reader`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Up to `filter.limit + 1` rows after the filter's cursor: the extra row says
    /// whether there is a next page.
    pub async fn page(&self, filter: &Filter) -> Result<Vec<ListedLead>, StoreError> {
        let from = filter.from_us.map(feed::bound);
        let until = filter.until_us.map(feed::bound);
        let after = filter
            .after
            .map(|cursor| (feed::bound(cursor.listed_at_us), cursor.id));
        let pattern = filter.search.as_deref().map(feed::like_pattern);
        let mut query = QueryBuilder::<Postgres>::new("");
        {
            query.push(format!(
                "SELECT id::int8 AS id, platform, name, phone_number, phone_e164, \
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
            if let Some((listed_at, id)) = &after {
                query
                    .push(format_args!(" AND ({LISTED_AT}, id) < ("))
                    .push_bind(listed_at.as_deref())
                    .push("::timestamptz, ")
                    .push_bind(*id)
                    .push("::int8)");
            }
            query
                .push(format_args!(" ORDER BY {LISTED_AT} DESC, id DESC LIMIT "))
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
        Ok(rows.into_iter().map(listed).collect())
    }
}

fn listed(row: Row) -> ListedLead {
    let time = |micros: Option<i64>| micros.and_then(feed::timestamp);
    // The stored text of a jsonb is JSON; should it ever not be, the lead goes without.
    let payload = row
        .payload
        .and_then(|text| serde_json::value::RawValue::from_string(text).ok());
    ListedLead {
        cursor: Cursor {
            listed_at_us: row.listed_us,
            id: row.id,
        },
        lead: FeedLead {
            id: row.id,
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
