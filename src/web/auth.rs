//! Console accounts: password hashing (argon2id), session and CSRF tokens, the lockout rule.

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore as _};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use sha2::{Digest as _, Sha256};
use std::time::Duration;

/// Shortest password `maildlp user add` and `user passwd` accept.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted (argon2 hashes anything, but a megabyte "password" is an attack).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Failed logins in a row before an account locks.
pub const LOCK_AFTER: u32 = 5;
/// First lock; each further failure doubles it, up to [`MAX_LOCK`].
pub const FIRST_LOCK: Duration = Duration::from_secs(30);
pub const MAX_LOCK: Duration = Duration::from_secs(3600);

/// Check a new password against the rules; says what is wrong.
pub fn check_new_password(pw: &str) -> Result<(), String> {
    if pw.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters (a phrase of several words is good)"
        ));
    }
    if pw.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password is too long: at most {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    if pw.trim() != pw {
        return Err("the password starts or ends with a space: remove it".into());
    }
    Ok(())
}

/// An argon2id hash (PHC string) of `pw`, with a random salt.
pub fn hash_password(pw: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password failed: {e}"))
}

/// Does `pw` match the stored hash? A damaged hash never matches.
pub fn verify_password(hash: &str, pw: &str) -> bool {
    if pw.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(pw.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the account does not exist, so that a wrong name takes as
/// long as a wrong password (no telling which names exist).
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("maildlp-no-such-account").unwrap_or_default())
}

/// 32 random bytes, hex: session and CSRF tokens.
pub fn new_token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    hex(&b)
}

/// What the store keeps of a session token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Equal, in time that does not depend on where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    !a.is_empty() && a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// How long an account locks after `failures` in a row (none below [`LOCK_AFTER`]).
pub fn lock_for(failures: u32) -> Option<Duration> {
    if failures < LOCK_AFTER {
        return None;
    }
    let doublings = (failures - LOCK_AFTER).min(16);
    Some((FIRST_LOCK * (1u32 << doublings)).min(MAX_LOCK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash_password("correct horse battery").expect("hash");
        let b = hash_password("correct horse battery").expect("hash");
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password(&a, "correct horse battery"));
        assert!(!verify_password(&a, "correct horse batterY"));
        assert!(!verify_password("not a hash", "x"));
    }

    #[test]
    fn lock_backs_off_to_a_cap() {
        assert_eq!(lock_for(4), None);
        assert_eq!(lock_for(5), Some(Duration::from_secs(30)));
        assert_eq!(lock_for(6), Some(Duration::from_secs(60)));
        assert_eq!(lock_for(100), Some(MAX_LOCK));
    }

    #[test]
    fn tokens() {
        let t = new_token();
        assert_eq!(t.len(), 64);
        assert_ne!(t, new_token());
        assert_eq!(token_hash(&t).len(), 64);
        assert!(same_token(&t, &t.clone()));
        assert!(!same_token(&t, &new_token()));
        assert!(!same_token("", ""));
    }

    #[test]
    fn password_rules() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password(" leading space ok?").is_err());
        assert!(check_new_password("a long enough phrase").is_ok());
    }
}
