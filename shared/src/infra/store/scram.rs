//! The SCRAM-SHA-256 verifier of a password, as PostgreSQL stores it (RFC 5802, RFC 7677):
//! `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64.
//!
//! `migrate` sets the functions' role's password with this instead of the password: a
//! statement may be written to the server's log (`log_statement`,
//! `log_min_error_statement`) or shown in its statistics views, and PostgreSQL stores a
//! verifier it is given as it is. The verifier lets a client prove it knows the password
//! but does not give the password away.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::domain::auth::hmac;

/// PostgreSQL's default (`scram_iterations`).
pub const ITERATIONS: u32 = 4096;

/// The salt's length PostgreSQL draws for a verifier of its own.
const SALT_LEN: usize = 16;

pub use crate::error::SaltError;

/// The verifier of `password`, with a new random salt.
pub fn verifier(password: &str) -> Result<String, SaltError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::getrandom(&mut salt).map_err(SaltError)?;
    Ok(verifier_with(password, &salt, ITERATIONS))
}

/// The verifier of `password` with this salt and iteration count.
pub fn verifier_with(password: &str, salt: &[u8], iterations: u32) -> String {
    // As PostgreSQL does: SASLprep, or the password as it is where SASLprep refuses it,
    // so the role accepts what it would had the server hashed the password itself.
    let prepared = stringprep::saslprep(password).unwrap_or(std::borrow::Cow::Borrowed(password));
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(prepared.as_bytes(), salt, iterations, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        BASE64.encode(salt),
        BASE64.encode(stored_key),
        BASE64.encode(server_key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Verifiers PostgreSQL made itself (`SET password_encryption = 'scram-sha-256'`,
    /// `CREATE ROLE … PASSWORD …`, then `pg_authid.rolpassword`): the same password and
    /// salt give the same verifier here.
    #[test]
    fn matches_the_verifiers_postgresql_makes() {
        for (password, stored) in [
            (
                "pencil",
                "SCRAM-SHA-256$4096:/SO9k5vYFsvzBnHPeqN5cw==$fHDxRnUlu8P8X9wPub+ZubmQj6i6P8JeVfUH/yftQSM=:Me8kGhfw1XrCPl0JrCmXZSpCjp/s/EYilFSKZDtTtRo=",
            ),
            // SASLprep drops the soft hyphen and maps the roman numeral to "IX".
            (
                "I\u{00AD}X\u{2168}",
                "SCRAM-SHA-256$4096:0tPpLj/k116yO0CG0WsE+Q==$fw/9UAe2ZJ5LJfW3saJDyKIva4JZEfcsBrMRN6I60Ik=:hrwYEQyAZzkhfoYfzlUzqT7KzVOo8LgJ1eRAPsAw91U=",
            ),
        ] {
            let salt = stored
                .split(['$', ':'])
                .nth(2)
                .and_then(|salt| BASE64.decode(salt).ok())
                .expect("a salt");
            assert_eq!(verifier_with(password, &salt, ITERATIONS), stored, "{password}");
        }
    }

    #[test]
    fn each_verifier_has_its_own_salt() {
        let first = verifier("pencil").expect("verifier");
        let second = verifier("pencil").expect("verifier");
        assert_ne!(first, second);
        let salt = first.split(['$', ':']).nth(2).expect("a salt");
        assert_eq!(BASE64.decode(salt).expect("base64").len(), SALT_LEN);
        assert!(first.starts_with("SCRAM-SHA-256$4096:"), "{first}");
        assert!(!first.contains("pencil"));
    }
}
