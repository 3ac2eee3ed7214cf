//! File permissions for secrets at rest: the database files and the master key file are
//! readable by their owner only (`0600`). A wider file found at start is narrowed, with a
//! warning naming it.

use std::io;
use std::path::Path;

/// Narrows `path` to `0600` if group or others have any access; a missing file is fine.
/// Returns whether it changed anything.
///
/// # Errors
/// When the file's mode cannot be read or changed.
pub fn restrict_to_owner(path: &Path) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            tracing::warn!(
                file = %path.display(),
                was = format!("{mode:04o}"),
                "file holding secrets was readable by others; narrowed to 0600"
            );
            return Ok(true);
        }
        Ok(false)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(false)
    }
}

/// Creates `path` empty with mode `0600` unless it exists (so SQLite, which gives its WAL
/// and shared-memory files the database file's mode, never creates them wider).
///
/// # Errors
/// When the file cannot be created.
pub fn create_owner_only(path: &Path) -> io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
