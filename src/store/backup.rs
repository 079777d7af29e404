//! Backups: a consistent copy of the database taken while the daemon runs, with a manifest
//! (what it holds, its schema version, a checksum), restored only into an empty place, and
//! verified by opening everything in it with the keyring.
//!
//! The keyring is not copied unless asked for: a backup without it is sealed data that nobody
//! can read, which is what a backup kept on other media should be. Whoever holds a backup
//! *and* its keyring holds every conversation.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::backend::file::{Contents, contents, copy, latest_schema};
use super::{Store, StoreError};
use crate::crypto::Keyring;
use crate::domain::ThreadId;

/// The manifest's file name in a backup directory.
pub const MANIFEST: &str = "manifest.json";
/// The database copy's file name.
pub const DATABASE: &str = "sealpost.db";
/// The keyring's, when `--with-keyring` put one there.
pub const KEYRING: &str = "keyring";
/// What the manifest says it is.
const FORMAT: &str = "sealpost-backup/1";

/// Why a backup could not be made, restored or verified.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not empty: a backup goes into a new or empty directory")]
    NotEmpty(PathBuf),
    #[error("{0} exists: restore only into a place without a database (nothing is overwritten)")]
    Exists(PathBuf),
    #[error("{path} is not a Sealpost backup: {why}")]
    NotABackup { path: PathBuf, why: String },
    #[error("the database copy does not match its manifest's checksum: the backup is damaged")]
    Checksum,
    #[error(
        "the backup has schema version {backup}, newer than this Sealpost knows ({known}): restore it with the version that made it"
    )]
    NewerSchema { backup: i64, known: i64 },
    #[error("the keyring has no key {0} that the backup's data is wrapped with")]
    MissingKey(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A backup's description, `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub sealpost_version: String,
    pub created_at: String,
    pub database: String,
    pub database_bytes: u64,
    pub database_sha256: String,
    /// Whether the keyring was copied beside the database (`--with-keyring`).
    pub keyring: bool,
    pub contents: Contents,
}

/// The SHA-256 of a file, in hex.
fn sha256_of(path: &Path) -> Result<(String, u64), BackupError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((data_encoding::HEXLOWER.encode(&hasher.finalize()), bytes))
}

/// Writes `bytes` to a new file `path`, readable by its owner only, synced.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Copies a file to a new file readable by its owner only, synced.
fn copy_private(from: &Path, to: &Path) -> Result<(), BackupError> {
    let bytes = std::fs::read(from).map_err(io(from))?;
    write_private(to, &bytes)
}

/// Takes a backup of the database at `database` into `to` (created, or empty), with the
/// keyring at `keyring` beside it when given. Safe while the daemon runs.
pub fn backup(database: &Path, to: &Path, keyring: Option<&Path>) -> Result<Manifest, BackupError> {
    if to.exists() {
        let mut entries = std::fs::read_dir(to).map_err(io(to))?;
        if entries.next().is_some() {
            return Err(BackupError::NotEmpty(to.to_owned()));
        }
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(to)
        .map_err(io(to))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).map_err(io(to))?;
    let db = to.join(DATABASE);
    // The copy is written under a temporary name and renamed once complete, so a backup
    // interrupted half-way leaves no file that looks whole.
    let partial = to.join(format!(".{DATABASE}.partial"));
    {
        // Created 0600 before SQLite writes into it.
        write_private(&partial, b"")?;
    }
    copy(database, &partial)?;
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(io(&partial))?;
    std::fs::rename(&partial, &db).map_err(io(&db))?;
    if let Some(keyring) = keyring {
        copy_private(keyring, &to.join(KEYRING))?;
    }
    let (sha, bytes) = sha256_of(&db)?;
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        sealpost_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: crate::clock::rfc3339(crate::clock::Clock::system().now()),
        database: DATABASE.to_owned(),
        database_bytes: bytes,
        database_sha256: sha,
        keyring: keyring.is_some(),
        contents: contents(&db)?,
    };
    let text = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
    write_private(&to.join(MANIFEST), &text)?;
    std::fs::File::open(to)
        .and_then(|d| d.sync_all())
        .map_err(io(to))?;
    Ok(manifest)
}

/// Reads a backup's manifest and checks the database copy against it.
pub fn check(dir: &Path) -> Result<Manifest, BackupError> {
    let path = dir.join(MANIFEST);
    let not = |why: String| BackupError::NotABackup {
        path: dir.to_owned(),
        why,
    };
    let text = std::fs::read(&path).map_err(|e| not(format!("{MANIFEST}: {e}")))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| not(format!("{MANIFEST}: {e}")))?;
    if manifest.format != FORMAT {
        return Err(not(format!("unknown format {:?}", manifest.format)));
    }
    let (sha, bytes) = sha256_of(&dir.join(DATABASE))?;
    if sha != manifest.database_sha256 || bytes != manifest.database_bytes {
        return Err(BackupError::Checksum);
    }
    if manifest.contents.schema_version > latest_schema() {
        return Err(BackupError::NewerSchema {
            backup: manifest.contents.schema_version,
            known: latest_schema(),
        });
    }
    Ok(manifest)
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub database: PathBuf,
    /// Whether the backup's keyring was put at the configured path (there was none).
    pub keyring_restored: bool,
    pub manifest: Manifest,
}

/// Restores the backup in `from` to the database path `database`, which must not exist
/// (nor its WAL). The backup's keyring, if it has one, goes to `keyring` when nothing is
/// there; a keyring already there must hold every key the backup needs.
pub fn restore(from: &Path, database: &Path, keyring: &Path) -> Result<Restored, BackupError> {
    let manifest = check(from)?;
    for p in [
        database.to_owned(),
        PathBuf::from(format!("{}-wal", database.display())),
    ] {
        if p.exists() {
            return Err(BackupError::Exists(p));
        }
    }
    let mut keyring_restored = false;
    if keyring.exists() {
        let ring = Keyring::load(keyring).map_err(|e| BackupError::NotABackup {
            path: keyring.to_owned(),
            why: e.to_string(),
        })?;
        let have: Vec<i64> = ring
            .key_ids()
            .iter()
            .map(|(id, _)| i64::from(*id))
            .collect();
        if let Some(missing) = manifest.contents.key_ids.iter().find(|k| !have.contains(k)) {
            return Err(BackupError::MissingKey(*missing));
        }
    } else if manifest.keyring {
        if let Some(dir) = keyring.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io(dir))?;
        }
        copy_private(&from.join(KEYRING), keyring)?;
        keyring_restored = true;
    }
    if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
    }
    let partial = PathBuf::from(format!("{}.restoring", database.display()));
    let _ = std::fs::remove_file(&partial);
    copy_private(&from.join(DATABASE), &partial)?;
    // Renamed into place only if still nothing is there (a daemon started meanwhile would
    // have made a database: it is not overwritten).
    std::fs::hard_link(&partial, database).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            BackupError::Exists(database.to_owned())
        } else {
            io(database)(e)
        }
    })?;
    std::fs::remove_file(&partial).map_err(io(&partial))?;
    if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(Restored {
        database: database.to_owned(),
        keyring_restored,
        manifest,
    })
}

/// What verifying a backup found.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub threads: usize,
    pub messages: usize,
    pub people: usize,
    /// What could not be opened (ids and the error; never content).
    pub failures: Vec<String>,
}

/// Opens every thread (subject, names, messages) and every person's sealed entry of the
/// backup in `dir` with `keyring`, on a scratch copy (the backup itself is not touched).
pub async fn verify(dir: &Path, keyring: Arc<Keyring>) -> Result<Verified, BackupError> {
    let manifest = check(dir)?;
    if let Some(missing) = manifest.contents.key_ids.iter().find(|k| {
        !keyring
            .key_ids()
            .iter()
            .any(|(id, _)| i64::from(*id) == **k)
    }) {
        return Err(BackupError::MissingKey(*missing));
    }
    let scratch = std::env::temp_dir().join(format!(
        "sealpost-verify-{}",
        data_encoding::HEXLOWER.encode(&crate::crypto::random_bytes::<8>())
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&scratch)
        .map_err(io(&scratch))?;
    let result = async {
        let copy = scratch.join(DATABASE);
        copy_private(&dir.join(DATABASE), &copy)?;
        let store = Store::open(
            &format!("sqlite://{}", copy.display()),
            keyring,
            crate::clock::Clock::system(),
        )
        .await?;
        let mut found = Verified {
            threads: 0,
            messages: 0,
            people: 0,
            failures: Vec::new(),
        };
        for id in store.backend().thread_ids().await? {
            match store.thread(ThreadId(id)).await {
                Ok(view) => {
                    found.threads += 1;
                    found.messages += view.messages.len();
                }
                Err(e) => found.failures.push(format!("thread {}: {e}", ThreadId(id))),
            }
        }
        match store.people(None).await {
            Ok(people) => found.people = people.len(),
            Err(e) => found.failures.push(format!("people: {e}")),
        }
        store.close().await;
        Ok(found)
    }
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

impl Store {
    /// Where the database of `url` lives (a backup copies that file).
    pub fn database_path(url: &str) -> Result<PathBuf, StoreError> {
        super::backend::file::path_of(url)
    }
}
