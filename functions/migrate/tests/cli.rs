//! The `migrate` binary as `make dev` and operators run it: against `DATABASE_URL`,
//! twice in a row, leaving the contract's table behind.

use std::process::Command;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[sqlx::test(migrations = false)]
async fn migrate_applies_and_reapplies(_: PgPoolOptions, options: PgConnectOptions) {
    let url = format!(
        "postgres://postgres@{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().expect("test database name")
    );
    for run in 1..=2 {
        let output = Command::new(env!("CARGO_BIN_EXE_migrate"))
            .env("DATABASE_URL", &url)
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .output()
            .expect("run migrate");
        let log = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "run {run}: {log}");
        assert!(log.contains("migrations applied"), "run {run}: {log}");
    }
    let pool = sqlx::PgPool::connect_with(options).await.expect("connect");
    let exists: bool =
        sqlx::query_scalar(r#"SELECT to_regclass('public."mg-digital-leads"') IS NOT NULL"#)
            .fetch_one(&pool)
            .await
            .expect("query");
    assert!(exists);
}

#[test]
fn migrate_without_a_database_says_what_to_set() {
    let output = Command::new(env!("CARGO_BIN_EXE_migrate"))
        .env_remove("DATABASE_URL")
        .env_remove("DB_SECRET_ARN")
        .output()
        .expect("run migrate");
    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(log.contains("DATABASE_URL or DB_SECRET_ARN"), "{log}");
}
