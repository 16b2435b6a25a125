//! The migrations create the contract's table on an empty database, and apply onto the
//! table the CRM already has without losing a row or a column.

mod common;

use shared::source::KNOWLARITY;
use shared::store::MIGRATOR;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

const CONTRACT_COLUMNS: [&str; 10] = [
    "id",
    "created_at",
    "platform",
    "name",
    "phone_number",
    "car_model",
    "lead_url",
    "campaign",
    "status",
    "payload",
];

async fn columns(pool: &PgPool) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT column_name::text, data_type::text, column_default::text
         FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = 'mg-digital-leads'
         ORDER BY ordinal_position",
    )
    .fetch_all(pool)
    .await
    .expect("read columns")
}

async fn index_definitions(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes
         WHERE schemaname = 'public' AND tablename = 'mg-digital-leads' ORDER BY indexname",
    )
    .fetch_all(pool)
    .await
    .expect("read indexes")
}

async fn assert_contract_shape(pool: &PgPool) {
    let columns = columns(pool).await;
    for name in CONTRACT_COLUMNS {
        assert!(
            columns.iter().any(|(c, _, _)| c == name),
            "no column {name}"
        );
    }
    let column = |name: &str| columns.iter().find(|(c, _, _)| c == name).cloned();
    assert_eq!(column("payload").map(|c| c.1).as_deref(), Some("jsonb"));
    assert_eq!(
        column("created_at").map(|c| c.1).as_deref(),
        Some("timestamp with time zone")
    );
    assert_eq!(
        column("status").and_then(|c| c.2).as_deref(),
        Some("'new'::text")
    );
    let indexes = index_definitions(pool).await;
    assert!(
        indexes
            .iter()
            .any(|d| d.contains("(platform, created_at DESC)")),
        "{indexes:?}"
    );
    assert!(
        indexes.iter().any(|d| d.ends_with("(phone_number)")),
        "{indexes:?}"
    );
}

#[sqlx::test(migrations = false)]
async fn an_empty_database_gets_the_contract_table(pool: PgPool) {
    MIGRATOR.run(&pool).await.expect("migrate");
    assert_contract_shape(&pool).await;
    // Applying again is a no-op.
    MIGRATOR.run(&pool).await.expect("migrate twice");
}

#[sqlx::test(migrations = false)]
async fn the_crm_table_is_upgraded_in_place(_: PgPoolOptions, options: PgConnectOptions) {
    let pool = PgPool::connect_with(options.clone())
        .await
        .expect("connect");
    sqlx::raw_sql(
        r#"CREATE TABLE public."mg-digital-leads" (
               id serial PRIMARY KEY,
               created_at timestamptz DEFAULT now(),
               platform text,
               name text,
               phone_number text,
               car_model text,
               lead_url text,
               payload jsonb,
               status text,
               meta_created_at timestamptz
           );
           INSERT INTO public."mg-digital-leads"
               (platform, name, phone_number, payload, status, meta_created_at)
           VALUES ('Facebook', 'Old Lead', '9000000000', '{"a": 1}', 'contacted', '2025-01-01'),
                  ('Knowlarity', 'Unsorted', '9000000009', NULL, NULL, NULL);"#,
    )
    .execute(&pool)
    .await
    .expect("create the CRM's table");

    MIGRATOR
        .run(&pool)
        .await
        .expect("migrate onto the CRM table");
    assert_contract_shape(&pool).await;

    let kept: Vec<(String, Option<String>, bool)> = sqlx::query_as(
        r#"SELECT name, status, meta_created_at IS NOT NULL
           FROM public."mg-digital-leads" ORDER BY id"#,
    )
    .fetch_all(&pool)
    .await
    .expect("read old rows");
    assert_eq!(
        kept,
        [
            ("Old Lead".to_owned(), Some("contacted".to_owned()), true),
            ("Unsorted".to_owned(), None, false),
        ]
    );

    // And the functions write into it.
    let app = common::app(&KNOWLARITY, options);
    let answer = common::call(
        &app,
        common::request(
            Some(&common::dev_key(&KNOWLARITY)),
            None,
            br#"{"caller_id":"+917330995416"}"#.to_vec(),
        ),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let row = common::row(&pool, answer.id()).await;
    assert_eq!(row.status.as_deref(), Some("new"));
    assert_eq!(row.campaign, None);
}
