//! The read index: each run's record and the journal positions of its events in small files of
//! their own, so `status RUN` and `history RUN` find one run without opening sled (whose open
//! costs in proportion to its whole file). Derived from the journal like sled, and like sled it
//! can be deleted at any time; `docs/storage.md`, "The read index", says what it promises.
//!
//! ```text
//! DIR/index/HEAD                 the journal position the index has taken in, its place in the
//!                                hash chain, and whose it is (boot, journal directory)
//! DIR/index/runs/ab/<sha256>.run the run (definition included), how many events it has, and
//!                                the journal position this file has taken in
//! DIR/index/runs/ab/<sha256>.pos the run's event positions, 12 bytes each, appended to
//! ```
//!
//! A reader never trusts the index further than it can check it: it reads under the store's
//! shared lock (no writer is in the middle of a write), reads the journal past what the index
//! has taken in, and answers from the index only if everything agrees. Anything else (no index,
//! another boot, a copied store, a gap in the chain, damage) makes it return `None`, and the
//! caller reads through sled as before, which names the damage.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write as _;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::EmbeddedError;
use super::journal::{self, Journal, JournalPoint, Pos, Record, RunUpdate, Tail};
use super::witness;
use crate::event::Event;
use crate::run::{Run, RunId};
use crate::store::{ChainCheck, StoreError};

/// The index's layout; an index of another layout is rebuilt.
const LAYOUT: u32 = 1;
/// Bytes per packed journal position in a `.pos` file.
const POS_LEN: usize = 12;
/// Catch-up writes the index out every this many commits, so memory stays bounded.
const CATCH_UP_BATCH: usize = 1024;

/// Where the index stands in the journal, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Head {
    layout: u32,
    /// `/proc/sys/kernel/random/boot_id` when written. The index is written without `fsync`
    /// (like sled, it is derived), so what a crash of the machine leaves of it is not to be
    /// trusted; a process crash leaves every finished write in place. A new boot means the
    /// machine went down since: the index is rebuilt.
    boot: String,
    /// Device and inode of `DIR/journal`: a copy of the store (taken at any moment, possibly
    /// in the middle of a write) is another journal, and rebuilds its index.
    journal: (u64, u64),
    at: JournalPoint,
}

/// One run's `.run` file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunFile {
    /// The run, its pinned definition included.
    run: Run,
    /// How many positions of the `.pos` file are the run's (an append the `.run` file does not
    /// count yet was cut short by a crash and is written over).
    events: u64,
    /// Everything in the journal before `at.pos` that concerns the run is in this file.
    at: JournalPoint,
}

/// The index of the store in `dir`, as a writer (a session, under the exclusive lock) keeps it.
#[derive(Debug)]
pub(crate) struct Index {
    dir: PathBuf,
    /// Where the index stands; `None` once it is known to need a rebuild or a write failed (it
    /// is then left alone until the next session catches it up).
    head: Option<Head>,
}

impl Index {
    /// The index in `dir/index`, if it can be trusted as a starting point.
    pub(crate) fn open(store: &Path) -> Index {
        let dir = store.join("index");
        let mine = whose(store);
        let head = read_head(&dir).ok().flatten().filter(|h| {
            mine.as_ref()
                .is_some_and(|mine| *h == mine.with(h.at.clone()))
        });
        Index { dir, head }
    }

    /// Takes in the journal's finished commits from where the index stands to `end` (the
    /// journal's end after the session's catch-up), rebuilding the index from the start when
    /// it cannot be trusted. A failure is logged: readers then read through sled.
    pub(crate) fn catch_up(&mut self, store: &Path, journal: &Journal, end: Pos) {
        match self.try_catch_up(store, journal, end) {
            Ok(()) => {}
            // Damage in the journal stops the index where it is, as it stops sled: what lies
            // beyond is read through the state, which names the damage.
            Err(Stop::Damage(e)) => {
                tracing::warn!("the read index in {} stops before {e}", self.dir.display());
                self.head = None;
            }
            Err(Stop::Failed(e)) => self.give_up(&e),
        }
    }

    /// After a failed update: readers are sent through sled, and `HEAD` is removed so the next
    /// session rebuilds the index rather than build on files it could not write or read.
    fn give_up(&mut self, why: &str) {
        tracing::warn!(
            "the read index in {} could not be updated ({why}); the next command rebuilds it",
            self.dir.display()
        );
        self.head = None;
        let _ = fs::remove_file(self.dir.join("HEAD"));
    }

    fn try_catch_up(&mut self, store: &Path, journal: &Journal, end: Pos) -> Result<(), Stop> {
        let Some(mine) = whose(store) else {
            // No boot id (no `/proc`): the index cannot be trusted here, so it is not kept;
            // readers, who check the same, read through sled.
            self.head = None;
            return Ok(());
        };
        let usable = self.head.as_ref().is_some_and(|h| {
            h.at.pos <= end
                && journal
                    .segment_len(h.at.pos.segment)
                    .ok()
                    .flatten()
                    .map_or(h.at.pos == Pos::START, |len| len >= h.at.pos.offset)
        });
        if !usable {
            if self.head.is_some() || self.dir.exists() {
                tracing::info!(
                    "rebuilding the read index in {} from the journal",
                    self.dir.display()
                );
            }
            remove(&self.dir).map_err(Stop::io)?;
            self.head = Some(mine.with(JournalPoint::start()));
        }
        let Some(head) = self.head.clone() else {
            return Ok(());
        };
        if head.at.pos == end {
            return Ok(());
        }
        let mut check = ChainCheck::resume(head.at.next_seq, &head.at.last_hash);
        let mut commits: Vec<(Vec<(Pos, Record)>, Pos)> = Vec::new();
        let mut open: Vec<(Pos, Record)> = Vec::new();
        let mut failed = None;
        let tail = journal.read_from(head.at.pos, |pos, record, next| {
            if let Err(e) = check.check(&record.event) {
                failed = Some(e);
                return Ok(false);
            }
            let finished = record.end;
            open.push((pos, record));
            if finished {
                commits.push((std::mem::take(&mut open), next));
                if commits.len() >= CATCH_UP_BATCH {
                    self.apply(&views(&std::mem::take(&mut commits)))
                        .map_err(|e| StoreError::Embedded(EmbeddedError::State(e.to_string())))?;
                }
            }
            Ok(true)
        });
        let tail = tail.map_err(|e| Stop::Failed(e.to_string()))?;
        self.apply(&views(&commits)).map_err(Stop::io)?;
        if let Some(e) = failed {
            // The journal is not the one the index was built from: start again from nothing.
            if head.at.pos != Pos::START {
                self.head = None;
                return self.try_catch_up(store, journal, end);
            }
            return Err(Stop::Damage(e));
        }
        match tail {
            Tail::Corrupt(pos, detail) => Err(Stop::Damage(format!(
                "damage in the journal ({} byte {}: {detail})",
                journal.segment_path(pos.segment).display(),
                pos.offset
            ))),
            // Past an empty segment at the end (a roll that a crash cut short): the next
            // commit goes there, so that is where the index stands.
            Tail::End(at) if open.is_empty() => {
                let Some(head) = self.head.as_mut() else {
                    return Ok(());
                };
                if head.at.pos != at {
                    head.at.pos = at;
                    let sealed = seal(&*head).map_err(Stop::io)?;
                    write_atomically(&self.dir.join("HEAD"), &sealed).map_err(Stop::io)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Takes in `commits` (whole, in journal order), which must start where the index stands.
    /// The run files first, `HEAD` last: a crash in between leaves run files ahead of `HEAD`,
    /// which readers and the next catch-up allow for (each run file says how far it goes).
    pub(crate) fn apply_pending<'a>(
        &mut self,
        commits: impl IntoIterator<Item = (&'a [(Pos, Record)], Pos)>,
    ) {
        let commits: Vec<Commit> = commits
            .into_iter()
            .map(|(records, next)| Commit { records, next })
            .collect();
        if let Err(e) = self.apply(&commits) {
            self.give_up(&e.to_string());
        }
    }

    fn apply(&mut self, commits: &[Commit<'_>]) -> Result<(), std::io::Error> {
        let Some(head) = self.head.as_mut() else {
            return Ok(());
        };
        let (Some(first), Some(last)) = (commits.first(), commits.last()) else {
            return Ok(());
        };
        if first.records.first().map(|(p, _)| *p) != Some(head.at.pos) {
            return Err(other(format!(
                "commits start at {:?}, the index stands at {:?}",
                first.records.first().map(|(p, _)| *p),
                head.at.pos
            )));
        }
        let Some((_, last_record)) = last.records.last() else {
            return Ok(());
        };
        let at = JournalPoint {
            pos: last.next,
            next_seq: last_record.event.seq + 1,
            last_hash: last_record.event.hash.clone(),
        };
        // Each run touched: its file as it stands, and the positions to append.
        let mut touched: HashMap<RunId, Touched> = HashMap::new();
        for commit in commits {
            let Some((start, _)) = commit.records.first() else {
                continue;
            };
            for (pos, record) in commit.records {
                let id = &record.event.run_id;
                if !touched.contains_key(id) {
                    let file = read_run_file(&self.dir, id)?;
                    let done = file.as_ref().map_or(Pos::START, |f| f.at.pos);
                    touched.insert(
                        id.clone(),
                        Touched {
                            file,
                            done,
                            positions: Vec::new(),
                        },
                    );
                }
                let Some(run) = touched.get_mut(id) else {
                    continue;
                };
                // A run file written ahead of HEAD by a session that died before writing
                // HEAD already holds this commit.
                if run.done > *start {
                    continue;
                }
                run.positions.push(*pos);
                match &record.run {
                    Some(RunUpdate::Created(created)) => {
                        run.file = Some(RunFile {
                            run: (**created).clone(),
                            events: 0,
                            at: at.clone(),
                        });
                    }
                    Some(RunUpdate::Changed(change)) => match run.file.as_mut() {
                        Some(f) => change.apply(&mut f.run),
                        None => {
                            return Err(other(format!(
                                "the journal moves run {id}, which the index lacks"
                            )))
                        }
                    },
                    None => {}
                }
            }
        }
        for (
            id,
            Touched {
                file, positions, ..
            },
        ) in touched
        {
            let Some(mut file) = file else {
                // Events of no run (a store's own event): nothing to index.
                continue;
            };
            if positions.is_empty() {
                continue;
            }
            let path = run_path(&self.dir, &id);
            create_dirs(&self.dir, &path)?;
            let mut bytes = Vec::with_capacity(positions.len() * POS_LEN);
            for pos in &positions {
                bytes.extend_from_slice(&pos.pack());
            }
            let pos_file = journal::create_options(&path)
                .truncate(false)
                .write(true)
                .open(path.with_extension("pos"))?;
            // Over whatever an append the `.run` file never counted left behind.
            pos_file.write_all_at(&bytes, file.events * POS_LEN as u64)?;
            file.events += positions.len() as u64;
            file.at = at.clone();
            write_atomically(&path, &seal(&file)?)?;
        }
        head.at = at;
        create_dirs(&self.dir, &self.dir.join("HEAD"))?;
        write_atomically(&self.dir.join("HEAD"), &seal(&*head)?)?;
        Ok(())
    }
}

/// Why catching up stopped.
enum Stop {
    /// Damage in the journal: the index stays where it is, as sled does.
    Damage(String),
    /// The index could not be read or written: rebuilt at the next session.
    Failed(String),
}

impl Stop {
    fn io(e: std::io::Error) -> Stop {
        Stop::Failed(e.to_string())
    }
}

/// A run a batch of commits touches: its file as it stood (then as the commits leave it),
/// where that file stood in the journal, and the positions the batch adds.
struct Touched {
    file: Option<RunFile>,
    done: Pos,
    positions: Vec<Pos>,
}

/// A whole commit: its records with their positions, and the position after it.
#[derive(Debug, Clone, Copy)]
struct Commit<'a> {
    records: &'a [(Pos, Record)],
    next: Pos,
}

fn views(commits: &[(Vec<(Pos, Record)>, Pos)]) -> Vec<Commit<'_>> {
    commits
        .iter()
        .map(|(records, next)| Commit {
            records,
            next: *next,
        })
        .collect()
}

/// Whose an index is: this boot, this journal directory.
struct Whose {
    boot: String,
    journal: (u64, u64),
}

impl Whose {
    fn with(&self, at: JournalPoint) -> Head {
        Head {
            layout: LAYOUT,
            boot: self.boot.clone(),
            journal: self.journal,
            at,
        }
    }
}

fn whose(store: &Path) -> Option<Whose> {
    let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let meta = fs::metadata(store.join("journal")).ok()?;
    Some(Whose {
        boot: boot.trim().to_owned(),
        journal: (meta.dev(), meta.ino()),
    })
}

/// How much of a run a read wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// The run only: its events are left unread (the list comes back empty).
    Run,
    /// The run and all its events.
    RunAndEvents,
}

/// One run out of the index (with its events, as `wanted` says), checked against the journal,
/// or `None` when the index cannot answer for it (the caller then reads through sled). Call
/// under the store's shared lock.
pub(crate) fn read_run(
    store: &Path,
    journal: &Journal,
    id: &RunId,
    wanted: Wanted,
) -> Option<(Run, Vec<Event>)> {
    let dir = store.join("index");
    let head = read_head(&dir).ok()??;
    let mine = whose(store)?;
    if head != mine.with(head.at.clone()) {
        return None;
    }
    let file = read_run_file(&dir, id).ok()??;
    // Read on from whichever has taken in more: the index as a whole, or this run's file.
    let from = if file.at.pos > head.at.pos {
        file.at.clone()
    } else {
        head.at
    };
    // A journal shorter than the index knew it is a loss that only the state path reports.
    let len = journal.segment_len(from.pos.segment).ok()?;
    if len.map_or(from.pos != Pos::START, |len| len < from.pos.offset) {
        return None;
    }
    let mut run = file.run;
    let mut positions = Vec::new();
    if wanted == Wanted::RunAndEvents {
        let count = usize::try_from(file.events).ok()?;
        let mut packed = vec![0; count.checked_mul(POS_LEN)?];
        File::open(run_path(&dir, id).with_extension("pos"))
            .ok()?
            .read_exact_at(&mut packed, 0)
            .ok()?;
        for chunk in packed.chunks(POS_LEN) {
            positions.push(Pos::unpack(chunk)?);
        }
    }
    // The journal past that point: whole commits of this run, checked against the chain.
    let mut check = ChainCheck::resume(from.next_seq, &from.last_hash);
    let mut open: Vec<Record> = Vec::new();
    let mut later: Vec<Event> = Vec::new();
    let mut broken = false;
    // The last event of a finished commit in the journal.
    let mut last = from.next_seq.saturating_sub(1);
    let tail = journal
        .read_from(from.pos, |_, record, _| {
            if check.check(&record.event).is_err() {
                broken = true;
                return Ok(false);
            }
            let finished = record.end;
            if finished {
                last = record.event.seq;
            }
            if record.event.run_id == *id {
                open.push(record);
            }
            if finished {
                for record in open.drain(..) {
                    match record.run {
                        Some(RunUpdate::Changed(change)) => change.apply(&mut run),
                        Some(RunUpdate::Created(_)) => broken = true,
                        None => {}
                    }
                    later.push(record.event);
                }
            }
            Ok(!broken)
        })
        .ok()?;
    // A torn or unfinished write at the end was never acknowledged: left out, as catch-up
    // would cut it off. Damage is for the state path to name.
    if broken || matches!(tail, Tail::Corrupt(..)) {
        return None;
    }
    // sled is the witness of acknowledged events (`docs/storage.md`, "A journal shorter than
    // the state"): if it had applied events the journal no longer has, the state path says so.
    if witness::witnessed(store).is_some_and(|recorded| recorded > last) {
        return None;
    }
    let mut out = Vec::with_capacity(positions.len() + later.len());
    for record in journal.read_many(&positions).ok()? {
        if record.event.run_id != *id
            || out
                .last()
                .is_some_and(|e: &Event| e.seq >= record.event.seq)
        {
            return None;
        }
        out.push(record.event);
    }
    if wanted == Wanted::Run {
        later.clear();
    }
    out.extend(later);
    Some((run, out))
}

fn read_head(dir: &Path) -> Result<Option<Head>, std::io::Error> {
    let Some(bytes) = read_if_there(&dir.join("HEAD"))? else {
        return Ok(None);
    };
    Ok(unseal::<Head>(&bytes).filter(|h| h.layout == LAYOUT))
}

fn read_run_file(dir: &Path, id: &RunId) -> Result<Option<RunFile>, std::io::Error> {
    let Some(bytes) = read_if_there(&run_path(dir, id))? else {
        return Ok(None);
    };
    match unseal::<RunFile>(&bytes) {
        Some(file) if file.run.id == *id => Ok(Some(file)),
        _ => Err(other(format!("the index file of run {id} is damaged"))),
    }
}

fn read_if_there(path: &Path) -> Result<Option<Vec<u8>>, std::io::Error> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `index/runs/<first two hex digits>/<SHA-256 of the id, hex>.run`: any run id makes a
/// short, safe file name, and no directory grows past a few thousand entries per million runs.
fn run_path(dir: &Path, id: &RunId) -> PathBuf {
    let hash = Sha256::digest(id.as_str().as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    dir.join("runs").join(&hex[..2]).join(format!("{hex}.run"))
}

/// `crc32(json) u32 LE ‖ json`.
fn seal<T: Serialize>(value: &T) -> Result<Vec<u8>, std::io::Error> {
    let json = serde_json::to_vec(value).map_err(|e| other(e.to_string()))?;
    let mut out = crc32fast::hash(&json).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    Ok(out)
}

fn unseal<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Option<T> {
    let (crc, json) = bytes.split_at_checked(4)?;
    if crc32fast::hash(json).to_le_bytes() != crc {
        return None;
    }
    serde_json::from_slice(json).ok()
}

/// Replaces `path` whole (write beside it, then rename): a reader or a crash sees the old
/// file or the new one. Not synced: see [`Head::boot`].
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), std::io::Error> {
    let tmp = path.with_extension("tmp");
    let mut file = journal::create_options(&tmp)
        .write(true)
        .truncate(true)
        .open(&tmp)?;
    file.write_all(bytes)?;
    drop(file);
    fs::rename(&tmp, path)
}

/// Creates the index's directories down to `file`'s, each with its parent's permissions (the
/// store's own: private unless an operator opened it up).
fn create_dirs(index: &Path, file: &Path) -> Result<(), std::io::Error> {
    let mut dirs: Vec<&Path> = file
        .ancestors()
        .skip(1)
        .take_while(|d| d.starts_with(index))
        .collect();
    dirs.reverse();
    for dir in dirs {
        if !dir.is_dir() {
            journal::create_dir(dir).map_err(|e| other(e.to_string()))?;
        }
    }
    Ok(())
}

fn remove(dir: &Path) -> Result<(), std::io::Error> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn other(text: String) -> std::io::Error {
    std::io::Error::other(text)
}
