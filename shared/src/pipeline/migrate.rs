//! The `migrate` function: applies `migrations/` (embedded at build time) to the
//! configured database, then lets each function's own role log in with the password of
//! its secret. On Lambda (inside the VPC, next to a private database) each invocation
//! does both and answers with the applied versions; run by hand it does the same once
//! and exits. Configuration is the functions' database part — `DATABASE_URL`, or
//! `DB_SECRET_ARN` (the master user) with `DB_HOST`/`DB_PORT`/`DB_NAME` — and one
//! secret per role: `DB_WRITER_SECRET_ARN` (the functions'), `DB_READER_SECRET_ARN` (the
//! feed's), `DB_RELAY_SECRET_ARN` (the relay's), `DB_DESK_SECRET_ARN` (the sales desk's),
//! `DB_CRM_SECRET_ARN` (the CRM hand-off's).

use crate::error::{ConfigError, GrantError};
use crate::infra::config::MigrateConfig;
use crate::infra::parts::Parts;
use crate::infra::secrets::{DbCredentials, Refreshing};
use crate::infra::store::Store;

/// A role a migration creates for a function, and the variable naming its secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    /// The role's name, as its migration creates it.
    pub name: &'static str,
    /// The variable holding its secret's ARN.
    pub secret: &'static str,
    /// Who logs in as it, for the log.
    pub function: &'static str,
}

/// Every function role the migrations create.
pub const ROLES: [Role; 5] = [
    Role {
        name: "lead_writer",
        secret: "DB_WRITER_SECRET_ARN",
        function: "the source functions, the drain and the pulls",
    },
    Role {
        name: "lead_reader",
        secret: "DB_READER_SECRET_ARN",
        function: "the leads feed",
    },
    Role {
        name: "lead_relay",
        secret: "DB_RELAY_SECRET_ARN",
        function: "the outbox relay",
    },
    Role {
        name: "lead_desk",
        secret: "DB_DESK_SECRET_ARN",
        function: "the sales desk",
    },
    Role {
        name: "lead_crm",
        secret: "DB_CRM_SECRET_ARN",
        function: "the CRM hand-off",
    },
];

/// What `migrate` works with: the database as the master user, and each role's secret.
#[derive(Debug)]
pub struct Migration {
    store: Store,
    roles: Vec<(Role, Refreshing<DbCredentials>)>,
}

impl Migration {
    /// The migration the environment configures, with no statement limit (a migration
    /// may rewrite a table).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = MigrateConfig::from_env()?;
        let parts = Parts::load(config.needs_aws(), config.base.secrets_ttl).await;
        Self::build(config, &parts)
    }

    /// The migration of `config`: its store and its roles' secrets.
    pub fn build(config: MigrateConfig, parts: &Parts) -> Result<Self, ConfigError> {
        const NAMES: [&str; 5] = [
            "DB_WRITER_SECRET_ARN",
            "DB_READER_SECRET_ARN",
            "DB_RELAY_SECRET_ARN",
            "DB_DESK_SECRET_ARN",
            "DB_CRM_SECRET_ARN",
        ];
        let mut roles = Vec::new();
        for ((role, arn), name) in ROLES.into_iter().zip(config.role_arns()).zip(NAMES) {
            if let Some(arn) = arn {
                roles.push((role, parts.credentials(arn, name)?));
            }
        }
        Ok(Self {
            store: parts.store(config.base.database)?,
            roles,
        })
    }

    /// Applies what is pending, then sets each configured role's password; returns every
    /// version now applied. A secret that names another user than its role (the master
    /// user, another function's role) is refused before any password is set: a function
    /// would otherwise log in with more than it may do.
    pub async fn run(&self) -> Result<Vec<i64>, lambda_runtime::Error> {
        let master = self.store.user().await?;
        let mut logins = Vec::with_capacity(self.roles.len());
        for (role, secret) in &self.roles {
            let credentials = secret.get().await?;
            check(role, &credentials.username, &master)?;
            logins.push((role, credentials));
        }
        let versions = self.store.migrate().await?;
        for (role, credentials) in logins {
            self.store.grant_login(&credentials).await?;
            tracing::info!(
                role = role.name,
                function = role.function,
                "the role may log in"
            );
        }
        Ok(versions)
    }
}

/// Whether `named` (a secret's user) is `role`'s own, the master user being `master`.
pub fn check(role: &Role, named: &str, master: &str) -> Result<(), GrantError> {
    if named == role.name {
        return Ok(());
    }
    if named == master {
        return Err(GrantError::MasterUser {
            secret: role.secret,
            named: named.to_owned(),
            expected: role.name,
        });
    }
    Err(GrantError::OtherRole {
        secret: role.secret,
        named: named.to_owned(),
        expected: role.name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_secret_must_name_its_own_role() {
        let [writer, reader, relay, _, _] = ROLES;
        assert!(check(&writer, "lead_writer", "postgres").is_ok());
        assert!(check(&relay, "lead_relay", "postgres").is_ok());
        let master = check(&reader, "postgres", "postgres").unwrap_err();
        assert!(matches!(master, GrantError::MasterUser { .. }), "{master}");
        assert_eq!(
            master.to_string(),
            "DB_READER_SECRET_ARN names the master user postgres; it must name lead_reader, the role its function logs in as"
        );
        let other = check(&reader, "lead_writer", "postgres").unwrap_err();
        assert_eq!(
            other.to_string(),
            "DB_READER_SECRET_ARN names the role lead_writer; it must name lead_reader, the role its function logs in as"
        );
        assert!(matches!(
            check(&relay, "lead_reader", "postgres"),
            Err(GrantError::OtherRole { .. })
        ));
    }

    #[test]
    fn the_roles_are_the_migrations_own() {
        let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
            .expect("the migrations")
            .map(|entry| std::fs::read_to_string(entry.expect("an entry").path()).expect("read"))
            .collect::<String>();
        for role in ROLES {
            assert!(
                migrations.contains(&format!("CREATE ROLE {} NOLOGIN", role.name)),
                "no migration creates {}",
                role.name
            );
        }
    }
}
