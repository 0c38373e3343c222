//! Encryption at rest: every held message and its masked findings are sealed with
//! XChaCha20-Poly1305 (RustCrypto) under a 256-bit key kept in a key file. The associated data
//! binds each sealed value to its row and field, so a value copied onto another row does not
//! open.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::io::Write as _;
use std::path::Path;

/// Format version of a sealed value (first byte).
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "key file {path} not found: create one with `maildlp keygen --key-file {path}` (a new store creates it by itself; an existing store needs the key it was created with)"
    )]
    Missing { path: String },
    #[error("key file {path}: {why}")]
    Invalid { path: String, why: String },
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// A sealed value failed to open: a wrong key or a damaged row.
#[derive(Debug, thiserror::Error)]
#[error("cannot decrypt {what}: wrong key or damaged data")]
pub struct OpenError {
    pub what: String,
}

/// The quarantine key. `Debug` never shows it.
#[derive(Clone)]
pub struct Key {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    fn from_bytes(bytes: &[u8; 32]) -> Key {
        Key {
            cipher: XChaCha20Poly1305::new(bytes.into()),
        }
    }

    /// A fresh random key, as the hex text of a key file.
    pub fn generate_text() -> String {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut s = to_hex(key.as_slice());
        s.push('\n');
        s
    }

    /// Read a key file: 64 hex digits (whitespace around them ignored).
    pub fn load(path: &Path) -> Result<Key, KeyError> {
        let p = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyError::Missing { path: p });
            }
            Err(e) => return Err(KeyError::Io { path: p, source: e }),
        };
        let bytes = from_hex(text.trim()).ok_or_else(|| KeyError::Invalid {
            path: p.clone(),
            why: "not a maildlp key (64 hexadecimal digits); make one with `maildlp keygen`".into(),
        })?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Invalid {
            path: p,
            why: "a key is 32 bytes (64 hexadecimal digits); make one with `maildlp keygen`".into(),
        })?;
        Ok(Key::from_bytes(&arr))
    }

    /// Write a new key file, readable by its owner only (0600). Refuses to overwrite one.
    pub fn create(path: &Path) -> Result<Key, KeyError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let p = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| KeyError::Io {
                path: p.clone(),
                source: e,
            })?;
        }
        let text = Key::generate_text();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| KeyError::Io {
                path: p.clone(),
                source: e,
            })?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| KeyError::Io {
                path: p.clone(),
                source: e,
            })?;
        Key::load(path)
    }

    /// Encrypt `plain`, bound to `context` (row id and field).
    pub fn seal(&self, context: &str, plain: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: plain,
            aad: context.as_bytes(),
        };
        // Encryption with a valid key and nonce only fails past 2^38 bytes, which no message
        // reaches (the milter caps messages far below).
        let ct = self.cipher.encrypt(&nonce, payload).unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypt what [`Key::seal`] made with the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let err = || OpenError {
            what: context.to_string(),
        };
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(err());
        }
        let nonce = XNonce::from_slice(&sealed[1..1 + NONCE_LEN]);
        self.cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| err())
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "maildlp-key-{}-{name}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        dir.join("key")
    }

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let path = temp("rt");
        let key = Key::create(&path).expect("create");
        let sealed = key.seal("m1/content", b"SSN 123");
        assert!(!sealed.windows(7).any(|w| w == b"SSN 123"));
        assert_eq!(key.open("m1/content", &sealed).expect("open"), b"SSN 123");
        assert!(key.open("m2/content", &sealed).is_err());
        let mut damaged = sealed.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(key.open("m1/content", &damaged).is_err());
        let other = Key::create(&temp("other")).expect("create");
        assert!(other.open("m1/content", &sealed).is_err());
    }

    #[test]
    fn key_file_is_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt as _;
        let path = temp("perm");
        Key::create(&path).expect("create");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(Key::create(&path).is_err());
    }

    #[test]
    fn bad_key_files_are_clear_errors() {
        let path = temp("bad");
        let missing = Key::load(&path).unwrap_err().to_string();
        assert!(missing.contains("maildlp keygen"), "{missing}");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(&path, "not hex").expect("write");
        assert!(
            Key::load(&path)
                .unwrap_err()
                .to_string()
                .contains("64 hexadecimal")
        );
        std::fs::write(&path, "abcd").expect("write");
        assert!(
            Key::load(&path)
                .unwrap_err()
                .to_string()
                .contains("32 bytes")
        );
        assert!(format!("{:?}", Key::from_bytes(&[7; 32])) == "Key(..)");
    }
}
