//! Keys and database credentials from Secrets Manager, through the real AWS SDK against a
//! local Secrets Manager (`moto_server` on 127.0.0.1, started and stopped by each test):
//! a rotation where both keys work and then only the new one, the TTL cache, an
//! unreadable secret answered with a 500 and retried, and the database reached with the
//! RDS-style credentials secret.

mod common;

use common::local_aws::LocalAws;
use shared::domain::source::{Source, CARDEKHO, CARWALE, GOOGLE, KNOWLARITY};
use shared::infra::config::intake::SourceConfig;
use shared::infra::config::MigrateConfig;
use shared::infra::parts::Parts;
use shared::App;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tracing::level_filters::LevelFilter;

struct Fixture {
    config: aws_config::SdkConfig,
    _aws: LocalAws,
    admin: aws_sdk_secretsmanager::Client,
}

impl Fixture {
    async fn start() -> Self {
        let aws = LocalAws::start();
        let config = aws.sdk_config().await;
        Self {
            admin: aws_sdk_secretsmanager::Client::new(&config),
            config,
            _aws: aws,
        }
    }

    async fn create(&self, name: &str, value: &str) -> String {
        self.admin
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .expect("create secret")
            .arn
            .expect("secret ARN")
    }

    async fn put(&self, arn: &str, value: &str) {
        self.admin
            .put_secret_value()
            .secret_id(arn)
            .secret_string(value)
            .send()
            .await
            .expect("put secret value");
    }

    /// An app configured the way the deployment configures it, with `vars` on top.
    async fn app(&self, source: &'static Source, vars: &[(&str, String)]) -> App {
        let config = SourceConfig::from_lookup(source, |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
        })
        .expect("valid configuration");
        let parts = Parts::new(Some(self.config.clone()), config.base.secrets_ttl);
        let app = App::build(source, config, &parts).expect("app");
        app.warm_up().await;
        app
    }
}

fn database_url(options: &PgConnectOptions) -> String {
    format!(
        "postgres://postgres@{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().expect("test database name")
    )
}

/// The status of a new lead (never a repeat of an earlier one) sent with `key`.
async fn status(app: &App, key: &str) -> u16 {
    static SENT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let body = format!(r#"{{"phone_number":"98765{n:05}","customer_name":"A","mobile":"1"}}"#);
    common::call(app, common::request(Some(key), None, body.into_bytes()))
        .await
        .status
}

#[sqlx::test(migrations = "../migrations")]
async fn keys_rotate_without_a_redeploy(_: PgPoolOptions, options: PgConnectOptions) {
    let aws = Fixture::start().await;
    let arn = aws.create("leads/knowlarity/api-keys", "key-one").await;
    let app = aws
        .app(
            &KNOWLARITY,
            &[
                ("API_KEYS_SECRET_ARN", arn.clone()),
                ("DATABASE_URL", database_url(&options)),
                ("SECRETS_TTL_SECONDS", "0".into()),
            ],
        )
        .await;
    assert_eq!(status(&app, "key-one").await, 201);
    assert_eq!(status(&app, "key-two").await, 403);

    // During the rotation both keys are active.
    aws.put(&arn, r#"["key-one", "key-two"]"#).await;
    assert_eq!(status(&app, "key-one").await, 201);
    assert_eq!(status(&app, "key-two").await, 201);

    // After it, only the new one.
    aws.put(&arn, "key-two").await;
    assert_eq!(status(&app, "key-one").await, 403);
    assert_eq!(status(&app, "key-two").await, 201);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_secret_is_read_once_per_ttl(_: PgPoolOptions, options: PgConnectOptions) {
    let aws = Fixture::start().await;
    let arn = aws.create("leads/carwale/api-keys", "key-one").await;
    let app = aws
        .app(
            &CARWALE,
            &[
                ("API_KEYS_SECRET_ARN", arn.clone()),
                ("DATABASE_URL", database_url(&options)),
            ],
        )
        .await;
    assert_eq!(status(&app, "key-one").await, 201);
    aws.put(&arn, "key-two").await;
    // Within the default TTL the container keeps the key it read at start.
    assert_eq!(status(&app, "key-one").await, 201);
    assert_eq!(status(&app, "key-two").await, 403);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_unreadable_secret_is_a_500_and_retried(_: PgPoolOptions, options: PgConnectOptions) {
    let aws = Fixture::start().await;
    let app = aws
        .app(
            &KNOWLARITY,
            &[
                ("API_KEYS_SECRET_ARN", "leads/knowlarity/not-yet".into()),
                ("DATABASE_URL", database_url(&options)),
            ],
        )
        .await;
    let key = "key-created-later";
    let answer = common::call(
        &app,
        common::request(Some(key), None, br#"{"phone":"1"}"#.to_vec()),
    )
    .await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.body, r#"{"error":"Internal server error"}"#);
    // A missing key is still the partner's 401, whatever the secrets do.
    assert_eq!(
        common::call(&app, common::request(None, None, b"{}".to_vec()))
            .await
            .status,
        401
    );

    // So is Google's, whose key travels in the body.
    let google = aws
        .app(
            &GOOGLE,
            &[
                ("API_KEYS_SECRET_ARN", "leads/google/not-yet".into()),
                ("DATABASE_URL", database_url(&options)),
            ],
        )
        .await;
    let keyless = br#"{"lead_id":"g-1","user_column_data":[]}"#.to_vec();
    let answer = common::call(&google, common::request(None, None, keyless)).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (401, r#"{"error":"Missing API key"}"#)
    );

    // The secret appears: the same container serves without a restart.
    aws.create("leads/knowlarity/not-yet", key).await;
    assert_eq!(status(&app, key).await, 201);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_database_is_reached_with_the_rds_secret(_: PgPoolOptions, options: PgConnectOptions) {
    let aws = Fixture::start().await;
    let keys = aws.create("leads/cardekho/api-keys", "dekho-key").await;
    let db = aws
        .create(
            "leads/db",
            r#"{"username":"postgres","password":"unused-by-trust-auth","engine":"postgres"}"#,
        )
        .await;
    let app = aws
        .app(
            &shared::domain::source::CARDEKHO,
            &[
                ("API_KEYS_SECRET_ARN", keys),
                ("DB_SECRET_ARN", db),
                ("DB_HOST", options.get_host().to_owned()),
                ("DB_PORT", options.get_port().to_string()),
                ("DB_NAME", options.get_database().expect("name").to_owned()),
                // The throwaway cluster has no TLS; on AWS the default is `require`.
                ("DB_SSLMODE", "disable".into()),
            ],
        )
        .await;
    let answer = common::call(
        &app,
        common::request(
            Some("dekho-key"),
            None,
            br#"{"name":"Ravi","phone_number":"9876543210"}"#.to_vec(),
        ),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let pool = sqlx::PgPool::connect_with(options).await.expect("connect");
    let row = common::row(&pool, answer.id()).await;
    assert_eq!(row.platform.as_deref(), Some("CarDekho"));
}

/// A key secret typed in the console's key/value form (or with quotes) is no key: every
/// request is a 500 whose log line names the secret and what is wrong with it, never
/// the value, and the partner's key works as soon as the secret is fixed.
#[sqlx::test(migrations = "../migrations")]
async fn a_malformed_key_secret_is_a_loud_500(_: PgPoolOptions, options: PgConnectOptions) {
    let aws = Fixture::start().await;
    let arn = aws
        .create("leads/cardekho/api-keys", r#"{"api_key":"key-one"}"#)
        .await;
    let app = aws
        .app(
            &CARDEKHO,
            &[
                ("API_KEYS_SECRET_ARN", arn.clone()),
                ("DATABASE_URL", database_url(&options)),
                ("SECRETS_TTL_SECONDS", "0".into()),
            ],
        )
        .await;
    let captured = common::Captured::default();
    let answer = {
        let _installed = captured.install(LevelFilter::TRACE);
        let body = br#"{"name":"Asha","mobile":"9800000001"}"#.to_vec();
        common::call(&app, common::request(Some("key-one"), None, body)).await
    };
    assert_eq!(answer.status, 500, "{}", answer.body);
    assert_eq!(answer.body, r#"{"error":"Internal server error"}"#);
    let log = captured.text();
    assert!(log.contains(&arn), "the log names the secret: {log}");
    assert!(log.contains("is a JSON object"), "and the reason: {log}");
    assert!(log.contains("secret_unavailable"), "{log}");
    assert!(!log.contains("key-one"), "the log holds the key: {log}");

    aws.put(&arn, "key-one").await;
    assert_eq!(status(&app, "key-one").await, 201);
}

/// `migrate` sets each role's password from its own secret, and refuses, before setting
/// any, a secret naming the master user or another function's role: the feed would
/// otherwise log in as the writer, or as the master.
#[sqlx::test(migrations = false)]
async fn migrate_refuses_a_secret_naming_another_role(_: PgPoolOptions, options: PgConnectOptions) {
    let aws = Fixture::start().await;
    // The user database_url logs in as.
    let master = "postgres".to_owned();
    let secret =
        |user: &str| format!(r#"{{"username":"{user}","password":"pw-{user}-0123456789"}}"#);
    let writer = aws.create("writer", &secret("lead_writer")).await;
    let relay = aws.create("relay", &secret("lead_relay")).await;
    let migration = |reader: String| {
        let config = MigrateConfig::from_lookup(|name| match name {
            "DATABASE_URL" => Some(database_url(&options)),
            "DB_WRITER_SECRET_ARN" => Some(writer.clone()),
            "DB_READER_SECRET_ARN" => Some(reader.clone()),
            "DB_RELAY_SECRET_ARN" => Some(relay.clone()),
            _ => None,
        })
        .expect("config");
        let parts = Parts::new(Some(aws.config.clone()), config.base.secrets_ttl);
        shared::pipeline::migrate::Migration::build(config, &parts).expect("migration")
    };

    for (name, user, message) in [
        (
            "reader-as-writer",
            "lead_writer",
            "DB_READER_SECRET_ARN names the role lead_writer; it must name lead_reader".to_owned(),
        ),
        (
            "reader-as-master",
            master.as_str(),
            format!(
                "DB_READER_SECRET_ARN names the master user {master}; it must name lead_reader"
            ),
        ),
    ] {
        let reader = aws.create(name, &secret(user)).await;
        let error = migration(reader).run().await.expect_err(name);
        assert!(error.to_string().starts_with(&message), "{name}: {error}");
    }
    // Refused before anything ran: no migration applied, no role given a login.
    let pool = common::pool(&options).await;
    let applied: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('public._sqlx_migrations')::text")
            .fetch_one(&pool)
            .await
            .expect("query");
    assert_eq!(applied, None);

    let reader = aws.create("reader", &secret("lead_reader")).await;
    migration(reader).run().await.expect("migrate");
    for role in ["lead_writer", "lead_reader", "lead_relay"] {
        let login = options
            .clone()
            .username(role)
            .password(&format!("pw-{role}-0123456789"));
        sqlx::PgPool::connect_with(login)
            .await
            .unwrap_or_else(|error| panic!("{role} logs in with its secret's password: {error}"));
    }
}
