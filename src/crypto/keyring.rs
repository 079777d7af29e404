//! The keyring: master keys with ids, kept in a 0600 file outside the database.
//!
//! Rotation adds a new current key and keeps the old ones, so tokens already in recipients'
//! mailboxes still verify and thread keys wrapped under an old key still open. The file is
//! written atomically (temporary file, fsync, rename) so a crash never leaves half a keyring.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use data_encoding::BASE64;
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::random_bytes;

/// Identifies one master key; it travels inside tokens and next to wrapped thread keys.
pub type KeyId = u16;

/// What a derived key is for. Each purpose has its own key so one can never stand in for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Signing reply tokens (the `reply+TOKEN@` addresses).
    ReplyToken,
    /// Signing the secure links in content-free notifications.
    LinkToken,
    /// Wrapping per-thread data keys.
    AtRest,
    /// Tagging notification Message-IDs, so Sealpost can tell its own from forged ones without a
    /// database read. Such a tag authorises nothing: it is no reply token.
    MessageId,
    /// Anti-forgery tokens of the web view's forms, derived from the link or session they
    /// belong to (nothing to store).
    WebForm,
    /// The codes of the web view's 24-hour rule, computed from a stored nonce (so no code is
    /// ever stored).
    WebCode,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::ReplyToken => b"sealpost/v1/reply-token",
            Purpose::LinkToken => b"sealpost/v1/link-token",
            Purpose::AtRest => b"sealpost/v1/at-rest-wrap",
            Purpose::MessageId => b"sealpost/v1/message-id",
            Purpose::WebForm => b"sealpost/v1/web-form",
            Purpose::WebCode => b"sealpost/v1/web-code",
        }
    }
}

const FORMAT: &str = "sealpost-keyring/1";
const HKDF_SALT: &[u8] = b"sealpost keyring v1";

/// Why the keyring could not be read or written. Messages name the file, never key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "no keyring at {0}: create one with `sealpost keygen` (or start `sealpost serve` once)"
    )]
    Missing(PathBuf),
    #[error("a keyring already exists at {0}; use `sealpost keygen --rotate` to add a key")]
    Exists(PathBuf),
    #[error("cannot read the keyring {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the keyring {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the keyring {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("the keyring {path} is not valid: {reason}")]
    Malformed { path: PathBuf, reason: String },
}

/// One master key and the keys derived from it.
struct MasterKey {
    created_at: i64,
    secret: Zeroizing<[u8; 32]>,
    reply: Zeroizing<[u8; 32]>,
    link: Zeroizing<[u8; 32]>,
    at_rest: Zeroizing<[u8; 32]>,
    message_id: Zeroizing<[u8; 32]>,
    web_form: Zeroizing<[u8; 32]>,
    web_code: Zeroizing<[u8; 32]>,
}

impl MasterKey {
    fn new(secret: Zeroizing<[u8; 32]>, created_at: i64) -> MasterKey {
        let derive = |p: Purpose| {
            let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), secret.as_slice());
            let mut out = Zeroizing::new([0u8; 32]);
            hk.expand(p.label(), out.as_mut_slice())
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            out
        };
        MasterKey {
            created_at,
            reply: derive(Purpose::ReplyToken),
            link: derive(Purpose::LinkToken),
            at_rest: derive(Purpose::AtRest),
            message_id: derive(Purpose::MessageId),
            web_form: derive(Purpose::WebForm),
            web_code: derive(Purpose::WebCode),
            secret,
        }
    }
}

/// All master keys, by id, and which one is current (used for everything new).
pub struct Keyring {
    keys: BTreeMap<KeyId, MasterKey>,
    current: KeyId,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    format: String,
    current: KeyId,
    keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    id: KeyId,
    created_at: i64,
    secret: String,
}

impl Keyring {
    /// A new keyring with one random key, id 1.
    pub fn generate() -> Keyring {
        let mut keys = BTreeMap::new();
        keys.insert(
            1,
            MasterKey::new(
                Zeroizing::new(random_bytes()),
                crate::clock::Clock::system().now(),
            ),
        );
        Keyring { keys, current: 1 }
    }

    /// Adds a new random key and makes it current; the old keys stay for reading and verifying.
    pub fn rotate(&mut self) -> KeyId {
        let id = self.keys.keys().next_back().copied().unwrap_or(0) + 1;
        self.keys.insert(
            id,
            MasterKey::new(
                Zeroizing::new(random_bytes()),
                crate::clock::Clock::system().now(),
            ),
        );
        self.current = id;
        id
    }

    /// The id of the key used for new tokens and new thread keys.
    pub fn current_id(&self) -> KeyId {
        self.current
    }

    /// Every key id, oldest first, with its creation time.
    pub fn key_ids(&self) -> Vec<(KeyId, i64)> {
        self.keys
            .iter()
            .map(|(id, k)| (*id, k.created_at))
            .collect()
    }

    /// The derived key for `purpose` under master key `id`, if the keyring has that id.
    pub fn derived(&self, id: KeyId, purpose: Purpose) -> Option<&[u8; 32]> {
        let k = self.keys.get(&id)?;
        Some(match purpose {
            Purpose::ReplyToken => &k.reply,
            Purpose::LinkToken => &k.link,
            Purpose::AtRest => &k.at_rest,
            Purpose::MessageId => &k.message_id,
            Purpose::WebForm => &k.web_form,
            Purpose::WebCode => &k.web_code,
        })
    }

    /// Reads a keyring file, refusing one that other users can read.
    pub fn load(path: &Path) -> Result<Keyring, KeyError> {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyError::Missing(path.to_owned()));
            }
            Err(source) => {
                return Err(KeyError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?);
        let malformed = |reason: &str| KeyError::Malformed {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        // serde_json's messages quote input; keep only its position so no secret can leak.
        let mut file: KeyringFile =
            serde_json::from_str(&text).map_err(|e| KeyError::Malformed {
                path: path.to_owned(),
                reason: format!(
                    "not a keyring file (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            })?;
        if file.format != FORMAT {
            return Err(malformed("unknown format"));
        }
        // The parsed file holds every secret as base64 text: wipe it however this ends.
        let entries: Vec<(KeyId, i64, Zeroizing<String>)> = file
            .keys
            .iter_mut()
            .map(|e| {
                (
                    e.id,
                    e.created_at,
                    Zeroizing::new(std::mem::take(&mut e.secret)),
                )
            })
            .collect();
        let mut keys = BTreeMap::new();
        for (id, created_at, secret_b64) in &entries {
            let bytes = Zeroizing::new(
                BASE64
                    .decode(secret_b64.as_bytes())
                    .map_err(|_| malformed("a secret is not base64"))?,
            );
            let mut secret = Zeroizing::new([0u8; 32]);
            if bytes.len() != 32 {
                return Err(malformed("a secret is not 32 bytes"));
            }
            secret.copy_from_slice(&bytes);
            if *id == 0
                || keys
                    .insert(*id, MasterKey::new(secret, *created_at))
                    .is_some()
            {
                return Err(malformed("key ids must be unique and non-zero"));
            }
        }
        if !keys.contains_key(&file.current) {
            return Err(malformed("the current key id is not in the keyring"));
        }
        Ok(Keyring {
            keys,
            current: file.current,
        })
    }

    /// Writes the keyring to a new file; fails if one exists, so a key is never overwritten —
    /// also when two processes create one at the same moment: the finished file is linked into
    /// place, which the kernel refuses when the name exists, instead of renamed over it.
    pub fn create(&self, path: &Path) -> Result<(), KeyError> {
        if path.exists() {
            return Err(KeyError::Exists(path.to_owned()));
        }
        self.install(path, false)
    }

    /// Replaces the keyring file atomically (used after a rotation).
    pub fn write(&self, path: &Path) -> Result<(), KeyError> {
        self.install(path, true)
    }

    /// Writes a complete private temporary file, then puts it at `path`: renamed over an
    /// existing file when `replace`, else linked (failing if `path` exists).
    fn install(&self, path: &Path, replace: bool) -> Result<(), KeyError> {
        let werr = |source| KeyError::Write {
            path: path.to_owned(),
            source,
        };
        let file = KeyringFile {
            format: FORMAT.to_owned(),
            current: self.current,
            keys: self
                .keys
                .iter()
                .map(|(id, k)| KeyEntry {
                    id: *id,
                    created_at: k.created_at,
                    secret: BASE64.encode(k.secret.as_slice()),
                })
                .collect(),
        };
        let mut text = Zeroizing::new(
            serde_json::to_string_pretty(&file).expect("a keyring always serialises"),
        );
        text.push('\n');
        for entry in file.keys {
            drop(Zeroizing::new(entry.secret));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(werr)?;
        }
        // A name of its own per call: two writers never share (or remove) each other's file.
        let suffix = data_encoding::HEXLOWER.encode(&random_bytes::<8>());
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{suffix}.tmp"));
        let tmp = PathBuf::from(tmp);
        let written = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            drop(f);
            if replace {
                fs::rename(&tmp, path)
            } else {
                let linked = fs::hard_link(&tmp, path);
                let _ = fs::remove_file(&tmp);
                linked
            }
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        match written {
            Err(e) if !replace && e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(KeyError::Exists(path.to_owned()));
            }
            other => other.map_err(werr)?,
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_get_distinct_keys() {
        let k = Keyring::generate();
        let id = k.current_id();
        let r = k.derived(id, Purpose::ReplyToken).unwrap();
        let l = k.derived(id, Purpose::LinkToken).unwrap();
        let a = k.derived(id, Purpose::AtRest).unwrap();
        let m = k.derived(id, Purpose::MessageId).unwrap();
        assert_ne!(r, l);
        assert_ne!(r, a);
        assert_ne!(l, a);
        assert!(![r, l, a].contains(&m));
        assert!(k.derived(id + 1, Purpose::AtRest).is_none());
    }

    #[test]
    fn save_load_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring");
        let mut k = Keyring::generate();
        k.create(&path).unwrap();
        assert!(matches!(k.create(&path), Err(KeyError::Exists(_))));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let loaded = Keyring::load(&path).unwrap();
        assert_eq!(
            loaded.derived(1, Purpose::ReplyToken),
            k.derived(1, Purpose::ReplyToken)
        );

        assert_eq!(k.rotate(), 2);
        k.write(&path).unwrap();
        let loaded = Keyring::load(&path).unwrap();
        assert_eq!(loaded.current_id(), 2);
        assert_eq!(
            loaded.derived(1, Purpose::AtRest),
            k.derived(1, Purpose::AtRest)
        );
        assert_eq!(loaded.key_ids().len(), 2);
    }

    /// Regression: two processes creating the keyring at once could each rename their own
    /// file into place, the second replacing the key the first had already started using.
    #[test]
    fn concurrent_creation_never_replaces_a_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("keyring");
            let rings: Vec<Keyring> = (0..8).map(|_| Keyring::generate()).collect();
            let barrier = std::sync::Barrier::new(rings.len());
            let results: Vec<Result<(), KeyError>> = std::thread::scope(|s| {
                let handles: Vec<_> = rings
                    .iter()
                    .map(|k| {
                        let (path, barrier) = (&path, &barrier);
                        s.spawn(move || {
                            barrier.wait();
                            k.create(path)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let winners: Vec<usize> = (0..rings.len()).filter(|i| results[*i].is_ok()).collect();
            assert_eq!(winners.len(), 1, "{results:?}");
            for (i, r) in results.iter().enumerate() {
                if i != winners[0] {
                    assert!(matches!(r, Err(KeyError::Exists(_))), "{r:?}");
                }
            }
            let on_disk = Keyring::load(&path).unwrap();
            assert_eq!(
                on_disk.derived(1, Purpose::AtRest),
                rings[winners[0]].derived(1, Purpose::AtRest)
            );
            let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(left.len(), 1, "temporary files left behind");
        }
    }

    #[test]
    fn refuses_loose_permissions_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring");
        assert!(matches!(Keyring::load(&path), Err(KeyError::Missing(_))));
        Keyring::generate().create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Keyring::load(&path),
            Err(KeyError::Permissions { .. })
        ));
        fs::write(&path, "{\"secret\": \"c2VjcmV0\"}").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = Keyring::load(&path).unwrap_err().to_string();
        assert!(err.contains("not a keyring file"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");
    }

    #[test]
    fn debug_shows_no_key_material() {
        let k = Keyring::generate();
        let secret = BASE64.encode(k.keys[&1].secret.as_slice());
        let dbg = format!("{k:?}");
        assert!(!dbg.contains(&secret));
        assert!(dbg.contains("current"));
    }
}
