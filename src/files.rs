//! Directories the daemon and its tools make for themselves: private to the service user,
//! whatever the umask. A leaf module, so the transports, the store and the daemon's wiring
//! can all use it without depending on each other.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// Creates a directory (and its parents) with mode 0700. An existing directory is left as it is.
pub fn ensure_private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}
