//! The migrations create the contract's table on an empty database, and apply onto the
//! table the CRM already has without losing a row or a column.

mod common;

use shared::domain::auth::ApiKeys;
use shared::domain::source::KNOWLARITY;
use shared::error::StoreError;
use shared::infra::secrets::DbCredentials;
use shared::infra::store::{Store, StoreSettings, Stored, MIGRATOR};
use shared::App;
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

    // The ad sources' columns, beside whatever the CRM's table had.
    assert_eq!(column("phone_e164").map(|c| c.1).as_deref(), Some("text"));
    assert_eq!(
        column("meta_created_at").map(|c| c.1).as_deref(),
        Some("timestamp with time zone")
    );
    assert!(
        indexes
            .iter()
            .any(|d| d.contains("\"mg-digital-leads_phone_e164_idx\"")
                && d.ends_with("(phone_e164, created_at)")),
        "{indexes:?}"
    );
    let watermarks: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text, is_nullable::text
         FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = 'lead_sync_watermarks'
         ORDER BY ordinal_position",
    )
    .fetch_all(pool)
    .await
    .expect("read the watermarks' columns");
    let watermark_column = |name: &str, kind: &str, nullable: &str| {
        (name.to_owned(), kind.to_owned(), nullable.to_owned())
    };
    assert_eq!(
        watermarks,
        [
            watermark_column("source", "text", "NO"),
            watermark_column("synced_until", "timestamp with time zone", "NO"),
            watermark_column("updated_at", "timestamp with time zone", "NO"),
            watermark_column("pass_since", "timestamp with time zone", "YES"),
            watermark_column("pass_started", "timestamp with time zone", "YES"),
            watermark_column("pass_after", "text", "YES"),
        ]
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

/// A Knowlarity lead as the store gets it, arriving at `received_at`.
fn knowlarity_record(
    body: &[u8],
    idempotency_key: Option<&[u8]>,
    received_at: std::time::SystemTime,
) -> shared::domain::lead::record::LeadRecord {
    shared::pipeline::keyed::prepare(
        &KNOWLARITY,
        &ApiKeys::new(["k"]),
        &shared::pipeline::request::Incoming {
            signature: None,
            api_key: Some(b"k"),
            content_type: None,
            idempotency_key,
            body,
            query: None,
            request_id: "r",
            received_at,
        },
    )
    .expect("a lead")
}

/// The functions' own role may store leads, find the row a repeat collided with by each
/// of its keys, release a body's claim, and keep a scheduled pull's watermark, and
/// nothing more: it reads no lead's name, phone or payload. A function whose grants are
/// missing is told apart from a database that is down (a configuration fault, never
/// queued).
#[sqlx::test(migrations = "../migrations")]
async fn the_functions_role_may_store_leads_and_nothing_more(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let admin = Store::new(options.clone(), StoreSettings::default());
    let writer = DbCredentials::from_secret(r#"{"username":"lead_writer","password":"pw"}"#)
        .expect("credentials");
    admin.grant_login(&writer).await.expect("grant login");
    let as_writer = options.clone().username("lead_writer").password("pw");
    let short_window = StoreSettings {
        dedup_window: std::time::Duration::from_millis(200),
        ..StoreSettings::default()
    };
    let app = App::new(
        &KNOWLARITY,
        ApiKeys::new([common::dev_key(&KNOWLARITY)]),
        Store::new(as_writer.clone(), short_window.clone()),
    );
    let lead = || {
        common::request(
            Some(&common::dev_key(&KNOWLARITY)),
            None,
            br#"{"caller_id":"+917330995416"}"#.to_vec(),
        )
    };
    let first = common::call(&app, lead()).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(common::call(&app, lead()).await.status, 200);
    // After the window the same body is a new lead, which releases the old claim.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(common::call(&app, lead()).await.status, 201);

    // Every key a repeat is found by, through the store as the functions use it.
    let store = Store::new(as_writer.clone(), short_window);
    let now = std::time::SystemTime::now();
    let by_partner_id =
        knowlarity_record(br#"{"caller_id":"+917330995401","uuid":"K-1"}"#, None, now);
    let Stored::Created(partner_row) = store.insert(&by_partner_id).await.expect("insert") else {
        panic!("a new lead")
    };
    let same_partner_id =
        knowlarity_record(br#"{"caller_id":"+917330995402","uuid":"K-1"}"#, None, now);
    assert_eq!(
        store
            .insert(&same_partner_id)
            .await
            .expect("repeat by partner id"),
        Stored::Duplicate(partner_row.clone())
    );
    assert_eq!(
        store
            .find_all(
                KNOWLARITY.platform,
                &["K-1", "K-none"],
                std::time::Duration::from_secs(3)
            )
            .await
            .expect("find by partner id")
            .into_iter()
            .collect::<Vec<_>>(),
        [("K-1".to_owned(), partner_row)]
    );
    let keyed = knowlarity_record(br#"{"caller_id":"+917330995403"}"#, Some(b"idem-1"), now);
    let Stored::Created(keyed_row) = store.insert(&keyed).await.expect("insert") else {
        panic!("a new lead")
    };
    let same_key = knowlarity_record(br#"{"caller_id":"+917330995404"}"#, Some(b"idem-1"), now);
    assert_eq!(
        store
            .insert(&same_key)
            .await
            .expect("repeat by idempotency key"),
        Stored::Duplicate(keyed_row)
    );
    // The same request again after the window (a late drain): its body and arrival.
    let body_only = knowlarity_record(br#"{"caller_id":"+917330995405"}"#, None, now);
    let Stored::Created(body_row) = store.insert(&body_only).await.expect("insert") else {
        panic!("a new lead")
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        store
            .insert(&body_only)
            .await
            .expect("repeat of the same request"),
        Stored::Duplicate(body_row)
    );
    store
        .set_watermark("probe", 1_767_225_600)
        .await
        .expect("set watermark");
    store
        .set_watermark("probe", 1_767_225_000)
        .await
        .expect("keep watermark");
    assert_eq!(
        store.watermark("probe").await.expect("read watermark"),
        Some(1_767_225_600)
    );

    let writer_pool = PgPool::connect_with(as_writer)
        .await
        .expect("connect as writer");
    // The ad sources' columns come with the table-wide INSERT grant.
    let id: String = sqlx::query_scalar(
        r#"INSERT INTO public."mg-digital-leads" (platform, phone_e164, meta_created_at)
           VALUES ('Meta', '+919876543210', '2026-01-01T10:00:00+05:30')
           RETURNING id::text"#,
    )
    .fetch_one(&writer_pool)
    .await
    .expect("insert the ad sources' columns");
    let pool = common::pool(&options).await;
    let stored: (Option<String>, bool) = sqlx::query_as(
        r#"SELECT phone_e164, meta_created_at IS NOT NULL
           FROM public."mg-digital-leads" WHERE id::text = $1"#,
    )
    .bind(&id)
    .fetch_one(&pool)
    .await
    .expect("read the ad sources' columns");
    assert_eq!(stored, (Some("+919876543210".to_owned()), true));

    // A scheduled pull reads its watermark and moves it on.
    for until in ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"] {
        sqlx::query(
            "INSERT INTO public.lead_sync_watermarks (source, synced_until)
             VALUES ('meta', $1::timestamptz)
             ON CONFLICT (source) DO UPDATE
             SET synced_until = excluded.synced_until, updated_at = now()",
        )
        .bind(until)
        .execute(&writer_pool)
        .await
        .expect("move the watermark");
    }
    let until: String = sqlx::query_scalar(
        "SELECT to_char(synced_until AT TIME ZONE 'UTC', 'YYYY-MM-DD')
         FROM public.lead_sync_watermarks WHERE source = 'meta'",
    )
    .fetch_one(&writer_pool)
    .await
    .expect("read the watermark");
    assert_eq!(until, "2026-01-02");
    // And records, then clears, a listing in progress.
    for after in [Some("QVFI000002=="), None] {
        sqlx::query(
            "UPDATE public.lead_sync_watermarks
             SET pass_since = now(), pass_started = now(), pass_after = $1, updated_at = now()
             WHERE source = 'meta'",
        )
        .bind(after)
        .execute(&writer_pool)
        .await
        .expect("record a listing's progress");
    }

    for forbidden in [
        // The leads themselves: a compromised function lists no customer.
        r#"SELECT name FROM public."mg-digital-leads""#,
        r#"SELECT phone_number FROM public."mg-digital-leads""#,
        r#"SELECT phone_e164 FROM public."mg-digital-leads""#,
        r#"SELECT payload FROM public."mg-digital-leads""#,
        r#"SELECT * FROM public."mg-digital-leads""#,
        r#"UPDATE public."mg-digital-leads" SET body_sha256 = NULL WHERE name = 'x'"#,
        r#"INSERT INTO public."mg-digital-leads" (platform) VALUES ('x') RETURNING name"#,
        r#"DELETE FROM public."mg-digital-leads""#,
        r#"UPDATE public."mg-digital-leads" SET name = 'x'"#,
        r#"UPDATE public."mg-digital-leads" SET phone_e164 = NULL"#,
        r#"TRUNCATE public."mg-digital-leads""#,
        r#"CREATE TABLE public.other (id int)"#,
        "DELETE FROM public.lead_sync_watermarks",
        "TRUNCATE public.lead_sync_watermarks",
    ] {
        let error = sqlx::query(forbidden)
            .execute(&writer_pool)
            .await
            .expect_err(forbidden);
        let code = error.as_database_error().and_then(|e| e.code());
        assert_eq!(code.as_deref(), Some("42501"), "{forbidden}: {error}");
    }

    // Its grants gone, the store says so rather than "unavailable".
    sqlx::query(r#"REVOKE INSERT ON public."mg-digital-leads" FROM lead_writer"#)
        .execute(&pool)
        .await
        .expect("revoke");
    let record = knowlarity_record(
        br#"{"caller_id":"+917330995499"}"#,
        None,
        std::time::SystemTime::now(),
    );
    let error = app
        .store()
        .insert(&record)
        .await
        .expect_err("no insert grant");
    assert!(matches!(error, StoreError::Denied(_)), "{error}");
    assert!(!error.is_unavailable());
}

/// The server's log from byte `from` on (the throwaway cluster of `scripts/pg.sh` writes
/// it to `server.log` in its data folder), and the position of its end.
async fn server_log(pool: &PgPool, from: i64) -> (String, i64) {
    let (path, size): (String, i64) = sqlx::query_as(
        "SELECT path, (pg_stat_file(path)).size
         FROM coalesce(pg_current_logfile(), 'server.log') AS path",
    )
    .fetch_one(pool)
    .await
    .expect("the server's log (the cluster of scripts/with-db.sh writes one)");
    let text: String = sqlx::query_scalar("SELECT pg_read_file($1, $2, $3)")
        .bind(&path)
        .bind(from)
        .bind(size - from)
        .fetch_one(pool)
        .await
        .expect("read the server's log");
    (text, size)
}

/// `migrate` sets the functions' role's password as its SCRAM verifier: with every
/// statement logged, and with a statement that fails (logged by default), the server's
/// log holds the verifier and never the password; and the role keeps the verifier of
/// that very password, so it logs in with it.
#[sqlx::test(migrations = false)]
async fn the_writers_password_never_reaches_the_server_log(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = common::pool(&options).await;
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch")
        .as_nanos();
    let role = format!("password_probe_{nonce}");
    sqlx::query(&format!("CREATE ROLE {role} NOLOGIN"))
        .execute(&pool)
        .await
        .expect("create the role");
    let (_, start) = server_log(&pool, 0).await;

    // A session that logs every statement, as log_statement = 'all' would for all.
    let logged = options.clone().options([("log_statement", "all")]);
    let admin = Store::new(logged, StoreSettings::default());
    let password = format!("Secret-{nonce}-Pw");
    let credentials = |username: &str, password: &str| {
        DbCredentials::from_secret(
            &serde_json::json!({ "username": username, "password": password }).to_string(),
        )
        .expect("credentials")
    };
    admin
        .grant_login(&credentials(&role, &password))
        .await
        .expect("grant login");
    // A role that is missing: the failing statement is logged (log_min_error_statement).
    let missing_password = format!("Missing-{nonce}-Pw");
    admin
        .grant_login(&credentials(&format!("{role}_missing"), &missing_password))
        .await
        .expect_err("no such role");

    let (log, _) = server_log(&pool, start).await;
    let stored: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(&role)
        .fetch_one(&pool)
        .await
        .expect("the role's password");
    sqlx::query(&format!("DROP ROLE {role}"))
        .execute(&pool)
        .await
        .expect("drop the role");
    assert!(log.contains(&role), "the statements were logged: {log}");
    assert!(
        !log.contains(&password),
        "the password is in the log: {log}"
    );
    assert!(
        !log.contains(&missing_password),
        "a failed statement's password is in the log: {log}"
    );
    assert!(log.contains(&stored), "the verifier was sent: {log}");

    // The stored verifier is this password's, made as PostgreSQL makes it (a string it
    // took for a password would have been hashed again, its keys unlike these).
    let salt: Vec<u8> =
        sqlx::query_scalar("SELECT decode(split_part(split_part($1, '$', 2), ':', 2), 'base64')")
            .bind(&stored)
            .fetch_one(&pool)
            .await
            .expect("decode the salt");
    assert_eq!(
        shared::infra::store::scram::verifier_with(
            &password,
            &salt,
            shared::infra::store::scram::ITERATIONS
        ),
        stored
    );
}

/// An index build that was interrupted leaves an invalid index behind; the next run of
/// the migrations drops it and builds it anew.
#[sqlx::test(migrations = false)]
async fn an_interrupted_index_build_is_built_again(_: PgPoolOptions, options: PgConnectOptions) {
    let store = Store::new(options.clone(), StoreSettings::default());
    store.migrate().await.expect("migrate");
    let pool = common::pool(&options).await;
    // The unique index on the partner id, as a build that failed half-way leaves it:
    // rows it cannot hold make CREATE INDEX CONCURRENTLY fail, and the index invalid.
    sqlx::raw_sql(
        r#"DROP INDEX "mg-digital-leads_platform_partner_lead_id_key";
           DELETE FROM _sqlx_migrations WHERE version = 20251201000001;
           INSERT INTO public."mg-digital-leads" (platform, partner_lead_id)
           VALUES ('CarDekho', 'CD-1'), ('CarDekho', 'CD-1');"#,
    )
    .execute(&pool)
    .await
    .expect("undo the index");
    let failed = store.migrate().await;
    assert!(failed.is_err(), "duplicates cannot be indexed uniquely");
    let valid = |pool: PgPool| async move {
        sqlx::query_scalar::<_, bool>(
            r#"SELECT indisvalid FROM pg_index
               WHERE indexrelid = '"mg-digital-leads_platform_partner_lead_id_key"'::regclass"#,
        )
        .fetch_one(&pool)
        .await
        .expect("the index exists")
    };
    assert!(!valid(pool.clone()).await, "an invalid index is left");

    sqlx::query(r#"DELETE FROM public."mg-digital-leads" WHERE ctid = (SELECT max(ctid) FROM public."mg-digital-leads")"#)
        .execute(&pool)
        .await
        .expect("remove the duplicate");
    store.migrate().await.expect("migrate again");
    assert!(valid(pool).await, "built anew");
}

/// Roles belong to the whole server: two migrations setting the same role's password at
/// once (two operators, or a deploy beside a manual run) both end with the role able to
/// log in, neither failing on the other's catalog update.
#[sqlx::test(migrations = "../migrations")]
async fn a_role_given_its_login_twice_at_once_gets_it(_: PgPoolOptions, options: PgConnectOptions) {
    let pool = common::pool(&options).await;
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let role = format!("concurrent_login_{nonce}");
    sqlx::query(&format!("CREATE ROLE {role} NOLOGIN"))
        .execute(&pool)
        .await
        .expect("create the role");
    let credentials = DbCredentials::from_secret(
        &serde_json::json!({ "username": role, "password": "pw" }).to_string(),
    )
    .expect("credentials");
    let admins: Vec<Store> = (0..8)
        .map(|_| Store::new(options.clone(), StoreSettings::default()))
        .collect();
    for round in 0..10 {
        let grants = admins.iter().map(|admin| admin.grant_login(&credentials));
        for result in futures_util::future::join_all(grants).await {
            result.unwrap_or_else(|error| panic!("round {round}: {error}"));
        }
    }
    let login: bool = sqlx::query_scalar("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1")
        .bind(&role)
        .fetch_one(&pool)
        .await
        .expect("the role");
    sqlx::query(&format!("DROP ROLE {role}"))
        .execute(&pool)
        .await
        .expect("drop the role");
    assert!(login, "{role} may log in");
}
