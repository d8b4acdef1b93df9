//! The store directory as a whole: what is there (a store, nothing, something else) and
//! creating a store where there is none.

use std::fs;
use std::path::Path;

use super::journal;
use super::lock::lock;
use super::options::Options;
use crate::store::StoreError;

/// What `DIR/FORMAT` says for stores this code reads and writes.
const FORMAT: &str = "waygate-store 1";

/// The file a salvage keeps in its new store until the last record is written: a store
/// holding it is half-written, not a store (see [`inspect`], `salvage.rs`).
pub(crate) const SALVAGING: &str = "SALVAGING";

/// What a store directory holds, as far as opening it is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// Nothing at the path.
    Missing,
    /// A directory with nothing in it (or only what an interrupted creation leaves: the lock
    /// file, an empty journal directory, a FORMAT not yet renamed into place).
    Empty,
    /// A store of this format.
    Store,
    /// A non-empty directory that is not a store.
    Other,
}

/// Looks at `dir` without changing anything. A file, a journal without its FORMAT file and a
/// FORMAT of another version are errors.
///
/// It looks without the store's lock, so another process may finish creating the store
/// between the look at FORMAT and the list of what the directory holds: a FORMAT that appears
/// in that list means a store came into being meanwhile, and the look is made again (once
/// more; a third look is not needed unless FORMAT is being deleted and written back).
pub(crate) fn inspect(dir: &Path) -> Result<Found, StoreError> {
    let mut found = look(dir)?;
    for _ in 0..2 {
        if found != Found::Other || !dir.join("FORMAT").exists() {
            break;
        }
        found = look(dir)?;
    }
    Ok(found)
}

/// One look of [`inspect`].
fn look(dir: &Path) -> Result<Found, StoreError> {
    let location = || dir.display().to_string();
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => {
            return Err(StoreError::Io {
                path: dir.to_owned(),
                source: e,
            })
        }
    };
    if !meta.is_dir() {
        return Err(StoreError::NotAStore {
            location: location(),
            why: "is a file, not a store directory".into(),
        });
    }
    let path = dir.join("FORMAT");
    match fs::read_to_string(&path) {
        Ok(found) if found.trim() == FORMAT && dir.join(SALVAGING).exists() => {
            return Err(StoreError::NotAStore {
                location: location(),
                why: "holds a salvage that has not finished: one is running, or one was stopped \
                      part-way and what it wrote is not a whole copy (no record of what was \
                      lost); delete the directory and run `waygate store salvage` again"
                    .into(),
            })
        }
        Ok(found) if found.trim() == FORMAT => return Ok(Found::Store),
        Ok(found) => {
            return Err(StoreError::UnsupportedVersion {
                location: dir.display().to_string(),
                found: found.trim().to_owned(),
                expected: FORMAT.to_owned(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::Io { path, source: e }),
    }
    let journal = dir.join("journal");
    let has_segments = fs::read_dir(&journal).is_ok_and(|mut d| d.next().is_some());
    if has_segments {
        return Err(StoreError::NotAStore {
            location: location(),
            why: format!(
                "holds a waygate journal but its FORMAT file is missing; if it is a waygate \
                 store, write the line back: echo '{FORMAT}' > {}",
                path.display()
            ),
        });
    }
    let leftovers = ["LOCK", "FORMAT.tmp", "journal"];
    let entries = fs::read_dir(dir).map_err(StoreError::io(dir))?;
    for entry in entries {
        let entry = entry.map_err(StoreError::io(dir))?;
        if !leftovers.iter().any(|l| entry.file_name() == *l) {
            return Ok(Found::Other);
        }
    }
    Ok(Found::Empty)
}

pub(crate) fn not_empty(dir: &Path) -> StoreError {
    StoreError::NotAStore {
        location: dir.display().to_string(),
        why: "is a directory that is not a waygate store and is not empty; a store is created \
              only in a missing or empty directory"
            .into(),
    }
}

/// Makes the directory a new store is created in `0700`, as if this process had created it:
/// an empty directory made beforehand (by a script, a container volume) may let others in,
/// and what the store creates inside takes the directory's permissions. One owned by another
/// user is refused: its owner could rename or replace the journal whatever its modes.
fn make_private(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = fs::metadata(dir).map_err(StoreError::io(dir))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(StoreError::NotAStore {
            location: dir.display().to_string(),
            why: format!(
                "belongs to another user (uid {}); a store is created only in a directory of \
                 your own, which its owner cannot tamper with",
                meta.uid()
            ),
        });
    }
    if meta.permissions().mode() & 0o777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(StoreError::io(dir))?;
    }
    Ok(())
}

/// Creates a store in `dir` (missing or empty), under the lock so two creators do not race.
pub(crate) fn create_store(dir: &Path, options: &Options) -> Result<(), StoreError> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(StoreError::io(parent))?;
    }
    // Private to its owner: command output, variables and workflow text live here. What is
    // created inside takes the directory's permissions (`journal::mode_of`).
    {
        use std::os::unix::fs::DirBuilderExt;
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StoreError::io(dir)(e)),
        }
    }
    // Before the lock file, which takes the directory's permissions.
    make_private(dir)?;
    let _lock = lock(dir, options)?;
    // Another process may have created it while we waited for the lock.
    match inspect(dir)? {
        Found::Store => return Ok(()),
        Found::Other => return Err(not_empty(dir)),
        Found::Missing | Found::Empty => {}
    }
    let path = dir.join("FORMAT");
    let tmp = dir.join("FORMAT.tmp");
    journal::create_options(&tmp)
        .write(true)
        .truncate(true)
        .open(&tmp)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, format!("{FORMAT}\n").as_bytes())?;
            f.sync_all()
        })
        .map_err(StoreError::io(&tmp))?;
    journal::create_dir(&dir.join("journal"))?;
    fs::rename(&tmp, &path).map_err(StoreError::io(&path))?;
    journal::sync_dir(dir)
}

/// Whether `path` (which need not exist yet) is `dir` or lies inside it, symlinks and `..`
/// resolved: the longest part of `path` that exists is resolved by the file system, the rest
/// (directories still to be created, so no symlinks) by its names.
pub(super) fn within(path: &Path, dir: &Path) -> Result<bool, StoreError> {
    let dir = fs::canonicalize(dir).map_err(StoreError::io(dir))?;
    for existing in path.ancestors() {
        let at = if existing.as_os_str().is_empty() {
            Path::new(".")
        } else {
            existing
        };
        let Ok(mut resolved) = fs::canonicalize(at) else {
            continue;
        };
        let rest = path.strip_prefix(existing).unwrap_or(Path::new(""));
        for part in rest.components() {
            match part {
                std::path::Component::ParentDir => {
                    resolved.pop();
                }
                std::path::Component::Normal(name) => resolved.push(name),
                _ => {}
            }
        }
        return Ok(resolved.starts_with(&dir));
    }
    Ok(false)
}
