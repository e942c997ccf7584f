//! Making the store's files durable. sled 0.34's `flush` writes its log
//! with `pwrite` and `sync_file_range`, which neither flushes the device's
//! write cache nor the file's metadata: a flushed write survives a killed
//! process but not a power loss. [`DirSync`] completes it with
//! `fdatasync` of the log and `fsync` of any file or directory entry
//! created since the last sync.
//!
//! The sync is a trait so tests can inject faults or record the state of
//! the disk at each sync point.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Makes every write the database has issued so far durable.
pub trait FileSync: Send + Sync {
    /// Syncs; an error means the writes may be lost.
    fn sync(&self) -> io::Result<()>;
}

/// Nothing to sync (a temporary database in memory).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSync;

impl FileSync for NoSync {
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Syncs a sled directory: `fdatasync` of the log file `db` (which also
/// commits its size), then `fsync` of any file created in `blobs/` since
/// the last sync (sled writes large values there without syncing them)
/// and of each directory whose entries changed. In the steady state this
/// is one `fdatasync` per call.
pub struct DirSync {
    dir: PathBuf,
    state: Mutex<DirState>,
}

#[derive(Default)]
struct DirState {
    log: Option<File>,
    top: HashSet<OsString>,
    blobs: HashSet<OsString>,
}

impl DirSync {
    /// A sync of the sled database in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            state: Mutex::new(DirState::default()),
        }
    }
}

fn entries(dir: &Path) -> io::Result<HashSet<OsString>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.map(|e| e.file_name())).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl FileSync for DirSync {
    fn sync(&self) -> io::Result<()> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| io::Error::other("the sync state is poisoned"))?;
        if state.log.is_none() {
            state.log = Some(File::open(self.dir.join("db"))?);
        }
        if let Some(log) = &state.log {
            log.sync_data()?;
        }
        let blobs_dir = self.dir.join("blobs");
        let blobs = entries(&blobs_dir)?;
        if blobs != state.blobs {
            for name in blobs.difference(&state.blobs) {
                match File::open(blobs_dir.join(name)) {
                    Ok(f) => f.sync_all()?,
                    // Removed by sled's garbage collection in the meantime.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            sync_dir(&blobs_dir)?;
            state.blobs = blobs;
        }
        let top = entries(&self.dir)?;
        if top != state.top {
            sync_dir(&self.dir)?;
            state.top = top;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_a_directory_and_notices_new_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let s = DirSync::new(dir.path());
        // No log yet: the sync fails rather than pretend.
        assert!(s.sync().is_err());
        std::fs::write(dir.path().join("db"), b"log").unwrap();
        s.sync().unwrap();
        std::fs::create_dir(dir.path().join("blobs")).unwrap();
        std::fs::write(dir.path().join("blobs/7"), b"blob").unwrap();
        s.sync().unwrap();
        let seen = s.state.lock().unwrap().blobs.clone();
        assert!(seen.contains(&OsString::from("7")));
    }
}
