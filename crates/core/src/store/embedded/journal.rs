//! The journal: the embedded store's source of truth.
//!
//! Segment files `journal/00000001.seg`, `00000002.seg`, ... hold records back to back. A record
//! is `len: u32 LE ‖ crc32(payload): u32 LE ‖ payload`, the payload being the JSON of one
//! [`Record`]: one event, plus, on the last record of a commit, the run's new state and an
//! end-of-commit mark. A commit never spans two segments. Nothing here knows about sled; the
//! embedded store derives its state from what this module reads back.

use super::error::EmbeddedError;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::{Event, GENESIS_HASH};
use crate::run::{Run, RunStatus};
use crate::store::StoreError;

/// Bytes before a record's payload: length and CRC-32.
pub(crate) const HEADER: usize = 8;
/// By default, a segment is closed once the next commit would take it past this size.
pub(crate) const SEGMENT_LIMIT: u64 = 64 << 20;
/// The largest payload accepted (events carry bounded evidence; anything bigger is a bug).
pub(crate) const MAX_PAYLOAD: usize = 16 << 20;

/// A place in the journal: segment number and byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Pos {
    pub segment: u32,
    pub offset: u64,
}

impl Pos {
    pub(crate) const START: Pos = Pos {
        segment: 1,
        offset: 0,
    };

    /// 12 bytes, big-endian, so packed lists are compact and byte order is journal order.
    pub(crate) fn pack(self) -> [u8; 12] {
        let mut out = [0; 12];
        out[..4].copy_from_slice(&self.segment.to_be_bytes());
        out[4..].copy_from_slice(&self.offset.to_be_bytes());
        out
    }

    pub(crate) fn unpack(bytes: &[u8]) -> Option<Pos> {
        let segment = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
        let offset = u64::from_be_bytes(bytes.get(4..12)?.try_into().ok()?);
        Some(Pos { segment, offset })
    }
}

/// A place in the journal with the hash chain as it stands there: everything before `pos` is
/// taken in, the next event is `next_seq`, chained to `last_hash`. What sled's state and the
/// read index each record of how far they have read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JournalPoint {
    pub pos: Pos,
    pub next_seq: u64,
    pub last_hash: String,
}

impl JournalPoint {
    /// The journal's start: nothing read, the chain at its genesis.
    pub(crate) fn start() -> JournalPoint {
        JournalPoint {
            pos: Pos::START,
            next_seq: 1,
            last_hash: GENESIS_HASH.to_owned(),
        }
    }
}

/// One journal record's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The event, with its seq and hashes.
    pub event: Event,
    /// On a commit's last record: what the commit did to the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunUpdate>,
    /// True on a commit's last record. Records of a commit without its end mark at the
    /// journal's tail were never acknowledged and are cut off on open.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub end: bool,
}

/// What a commit did to its run, so sled's run records can be rebuilt from the journal alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RunUpdate {
    /// The run was created: the whole record, pinned definition included.
    Created(Box<Run>),
    /// The run moved: its new mutable fields.
    Changed(RunMove),
}

/// The fields a commit may change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RunMove {
    pub state: String,
    pub status: RunStatus,
    pub version: u64,
    pub state_entered_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
    pub ended_at: Option<jiff::Timestamp>,
}

impl RunMove {
    pub(crate) fn of(run: &Run) -> RunMove {
        RunMove {
            state: run.state.clone(),
            status: run.status,
            version: run.version,
            state_entered_at: run.state_entered_at,
            updated_at: run.updated_at,
            ended_at: run.ended_at,
        }
    }

    pub(crate) fn apply(&self, run: &mut Run) {
        run.state.clone_from(&self.state);
        run.status = self.status;
        run.version = self.version;
        run.state_entered_at = self.state_entered_at;
        run.updated_at = self.updated_at;
        run.ended_at = self.ended_at;
    }
}

/// Writes whole commits into a new journal about 1 MiB at a time (a salvage, an import): one
/// `append` (and one sync) per batch, a commit never split between two.
pub(crate) struct BulkAppend<'a> {
    journal: &'a Journal,
    writer: Option<(u32, File)>,
    tail: Pos,
    batch: Vec<Vec<u8>>,
    bytes: usize,
}

impl<'a> BulkAppend<'a> {
    /// Appends to `journal`, which is empty.
    pub(crate) fn new(journal: &'a Journal) -> BulkAppend<'a> {
        BulkAppend {
            journal,
            writer: None,
            tail: Pos::START,
            batch: Vec::new(),
            bytes: 0,
        }
    }

    /// Adds `record`; writes the batch when it ends a commit and the batch is big enough.
    pub(crate) fn push(&mut self, record: &Record) -> Result<(), StoreError> {
        let bytes = encode(record)?;
        self.bytes += bytes.len();
        self.batch.push(bytes);
        if record.end && self.bytes >= 1 << 20 {
            let batch = std::mem::take(&mut self.batch);
            self.tail = self.journal.append(self.tail, &batch, &mut self.writer)?.1;
            self.bytes = 0;
        }
        Ok(())
    }

    /// Writes what is left.
    pub(crate) fn finish(mut self) -> Result<(), StoreError> {
        if !self.batch.is_empty() {
            self.journal
                .append(self.tail, &self.batch, &mut self.writer)?;
        }
        Ok(())
    }
}

/// Encodes a record: header and payload.
pub(crate) fn encode(record: &Record) -> Result<Vec<u8>, StoreError> {
    let payload = serde_json::to_vec(record)
        .map_err(|e| StoreError::Invalid(format!("event cannot be encoded: {e}")))?;
    if payload.len() > MAX_PAYLOAD {
        return Err(StoreError::Invalid(format!(
            "event {} is {} bytes; the limit is {MAX_PAYLOAD}",
            record.event.seq,
            payload.len()
        )));
    }
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// What is at one position of a segment's bytes.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A good record and its encoded length.
    Record(Box<Record>, u64),
    /// Nothing more: the end of the bytes.
    End,
    /// A record that cannot be a completed write: cut short, or a bad last record, or zeros
    /// to the end. Never acknowledged, so safe to cut off.
    Torn,
    /// A bad record with more data after it: damage, not a torn write.
    Corrupt(String),
}

/// Decodes the record at the start of `buf`, which runs to the end of its segment.
pub(crate) fn decode(buf: &[u8]) -> Decoded {
    if buf.is_empty() {
        return Decoded::End;
    }
    if buf.len() < HEADER || buf.iter().all(|&b| b == 0) {
        return Decoded::Torn;
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let end = HEADER.saturating_add(len);
    if len == 0 || len > MAX_PAYLOAD {
        return Decoded::Corrupt(format!("impossible record length {len}"));
    }
    if end > buf.len() {
        return Decoded::Torn;
    }
    let payload = &buf[HEADER..end];
    if crc32fast::hash(payload) != crc {
        if end == buf.len() {
            return Decoded::Torn;
        }
        return Decoded::Corrupt("checksum mismatch".into());
    }
    match serde_json::from_slice::<Record>(payload) {
        Ok(record) => Decoded::Record(Box::new(record), end as u64),
        Err(e) => Decoded::Corrupt(format!("unreadable record: {e}")),
    }
}

/// How a sequential read ended.
#[derive(Debug)]
pub(crate) enum Tail {
    /// At the journal's end, which is here.
    End(Pos),
    /// At a torn write starting here (in the last segment).
    Torn(Pos),
    /// At a damaged record here.
    Corrupt(Pos, String),
    /// The callback asked to stop.
    Stopped,
}

/// The journal directory.
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    dir: PathBuf,
    segment_limit: u64,
}

impl Journal {
    pub(crate) fn open(dir: &Path, segment_limit: u64) -> Result<Journal, StoreError> {
        create_dir(dir)?;
        Ok(Journal {
            dir: dir.to_owned(),
            segment_limit,
        })
    }

    /// The store directory the journal is in.
    pub(crate) fn store_dir(&self) -> PathBuf {
        self.dir.parent().map_or_else(PathBuf::new, Path::to_owned)
    }

    /// The journal in `dir`, for reading only: creates nothing.
    pub(crate) fn at(dir: &Path, segment_limit: u64) -> Journal {
        Journal {
            dir: dir.to_owned(),
            segment_limit,
        }
    }

    /// Every segment and its length now, ascending (none for a journal directory that is not
    /// there).
    pub(crate) fn lengths(&self) -> Result<Vec<(u32, u64)>, StoreError> {
        if !self.dir.exists() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for segment in self.segments()? {
            if let Some(len) = self.segment_len(segment)? {
                out.push((segment, len));
            }
        }
        Ok(out)
    }

    pub(crate) fn segment_path(&self, segment: u32) -> PathBuf {
        self.dir.join(format!("{segment:08}.seg"))
    }

    /// Segment numbers present, ascending.
    pub(crate) fn segments(&self) -> Result<Vec<u32>, StoreError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(StoreError::io(&self.dir))? {
            let entry = entry.map_err(StoreError::io(&self.dir))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
                continue;
            };
            if let Ok(n) = stem.parse::<u32>() {
                out.push(n);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// The length of `segment`'s file, or `None` if it does not exist.
    pub(crate) fn segment_len(&self, segment: u32) -> Result<Option<u64>, StoreError> {
        let path = self.segment_path(segment);
        match fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io { path, source: e }),
        }
    }

    /// Reads records from `from` to the journal's end, handing each with its position and the
    /// position after it to `visit` (which returns `false` to stop).
    pub(crate) fn read_from(
        &self,
        from: Pos,
        mut visit: impl FnMut(Pos, Record, Pos) -> Result<bool, StoreError>,
    ) -> Result<Tail, StoreError> {
        let segments = self.segments()?;
        let last = segments.last().copied().unwrap_or(from.segment);
        let mut pos = from;
        loop {
            let path = self.segment_path(pos.segment);
            let Some(mut reader) = Window::open(&path, pos.offset)? else {
                if pos.segment >= last {
                    return Ok(Tail::End(pos));
                }
                return Ok(Tail::Corrupt(
                    pos,
                    format!("segment {} is missing", path.display()),
                ));
            };
            let mut at = 0usize;
            loop {
                match decode(&reader.buf[at..]) {
                    Decoded::Record(record, len) => {
                        let here = Pos {
                            segment: pos.segment,
                            offset: reader.base + at as u64,
                        };
                        at += len as usize;
                        let next = Pos {
                            segment: pos.segment,
                            offset: reader.base + at as u64,
                        };
                        if !visit(here, *record, next)? {
                            return Ok(Tail::Stopped);
                        }
                    }
                    // Not decodable from what is in memory: read on (to the end of the
                    // segment, if need be) before saying why.
                    _ if !reader.eof => {
                        reader.more(at)?;
                        at = 0;
                    }
                    Decoded::End => break,
                    bad => {
                        let here = Pos {
                            segment: pos.segment,
                            offset: reader.base + at as u64,
                        };
                        let detail = match bad {
                            Decoded::Corrupt(detail) => detail,
                            _ => "incomplete record".to_owned(),
                        };
                        // Only the last commit's write can be torn (every earlier one was
                        // fdatasynced before the next began), so damage with a later commit
                        // after it is corruption, never something to cut off.
                        if pos.segment >= last && !later_commit_follows(&reader.buf[at..]) {
                            return Ok(Tail::Torn(here));
                        }
                        return Ok(Tail::Corrupt(here, detail));
                    }
                }
            }
            let pos_end = reader.base + at as u64;
            let end = Pos {
                segment: pos.segment,
                offset: pos_end,
            };
            if pos.segment >= last {
                return Ok(Tail::End(end));
            }
            pos = Pos {
                segment: pos.segment + 1,
                offset: 0,
            };
        }
    }

    /// Reads the records at `positions` (random access, for a run's events), keeping one
    /// file open per segment and one buffer for all of them.
    pub(crate) fn read_many(&self, positions: &[Pos]) -> Result<Vec<Record>, StoreError> {
        let mut files: Vec<(u32, File)> = Vec::new();
        let mut out = Vec::with_capacity(positions.len());
        let mut buf = Vec::new();
        for &pos in positions {
            let index = match files
                .iter()
                .position(|(segment, _)| *segment == pos.segment)
            {
                Some(index) => index,
                None => {
                    let path = self.segment_path(pos.segment);
                    files.push((
                        pos.segment,
                        File::open(&path).map_err(StoreError::io(&path))?,
                    ));
                    files.len() - 1
                }
            };
            out.push(self.read_at(&files[index].1, pos, &mut buf)?);
        }
        Ok(out)
    }

    /// Reads the record at `pos` with positioned reads (no seek), through `buf`.
    fn read_at(&self, file: &File, pos: Pos, buf: &mut Vec<u8>) -> Result<Record, StoreError> {
        let corrupt = |detail: String| {
            StoreError::Embedded(EmbeddedError::Corrupt {
                segment: self.segment_path(pos.segment).display().to_string(),
                offset: pos.offset,
                seq: None,
                detail,
            })
        };
        let mut header = [0u8; HEADER];
        file.read_exact_at(&mut header, pos.offset)
            .map_err(|e| corrupt(format!("cannot read header: {e}")))?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len == 0 || len > MAX_PAYLOAD {
            return Err(corrupt(format!("impossible record length {len}")));
        }
        buf.clear();
        buf.extend_from_slice(&header);
        buf.resize(HEADER + len, 0);
        file.read_exact_at(&mut buf[HEADER..], pos.offset + HEADER as u64)
            .map_err(|e| corrupt(format!("short record: {e}")))?;
        // The record is complete, so the decoder's "bad last record is torn" rule must not
        // apply: one more byte makes a bad checksum read as corruption.
        buf.push(0xff);
        match decode(buf) {
            Decoded::Record(record, _) => Ok(*record),
            Decoded::Corrupt(detail) => Err(corrupt(detail)),
            Decoded::End | Decoded::Torn => Err(corrupt("torn record".into())),
        }
    }

    /// Cuts the journal back to `pos`: shortens its segment and removes later ones.
    pub(crate) fn truncate(&self, pos: Pos) -> Result<(), StoreError> {
        for segment in self.segments()? {
            if segment > pos.segment {
                let path = self.segment_path(segment);
                fs::remove_file(&path).map_err(StoreError::io(&path))?;
            }
        }
        let path = self.segment_path(pos.segment);
        if let Some(len) = self.segment_len(pos.segment)? {
            if len > pos.offset {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(StoreError::io(&path))?;
                file.set_len(pos.offset).map_err(StoreError::io(&path))?;
                file.sync_all().map_err(StoreError::io(&path))?;
            }
        }
        sync_dir(&self.dir)
    }

    /// Appends encoded records (one or more whole commits) after `tail` and fdatasyncs: the
    /// durability point. Returns each record's position and the new tail. On failure the
    /// journal is cut back to `tail`, so a failed write leaves nothing behind.
    ///
    /// `writer` caches the open tail segment between calls of one session (the session holds
    /// the lock, so no one else appends meanwhile): a commit then costs one `pwrite` and one
    /// `fdatasync`, plus an `fstat` that checks the file ends where the state says it does.
    pub(crate) fn append(
        &self,
        tail: Pos,
        records: &[Vec<u8>],
        writer: &mut Option<(u32, File)>,
    ) -> Result<(Vec<Pos>, Pos), StoreError> {
        let total: u64 = records.iter().map(|r| r.len() as u64).sum();
        let start = if tail.offset > 0 && tail.offset + total > self.segment_limit {
            Pos {
                segment: tail.segment + 1,
                offset: 0,
            }
        } else {
            tail
        };
        let path = self.segment_path(start.segment);
        if writer
            .as_ref()
            .is_none_or(|(segment, _)| *segment != start.segment)
        {
            *writer = None;
            let created = self.segment_len(start.segment)?.is_none();
            let file = create_options(&path)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(StoreError::io(&path))?;
            if created {
                sync_dir(&self.dir)?;
            }
            *writer = Some((start.segment, file));
        }
        let Some((_, file)) = writer.as_mut() else {
            return Err(StoreError::Embedded(EmbeddedError::State(
                "journal writer missing".into(),
            )));
        };
        let mut buf = Vec::with_capacity(total as usize);
        let mut positions = Vec::with_capacity(records.len());
        for record in records {
            positions.push(Pos {
                segment: start.segment,
                offset: start.offset + buf.len() as u64,
            });
            buf.extend_from_slice(record);
        }
        let len = file.metadata().map_err(StoreError::io(&path))?.len();
        if len != start.offset {
            // Open replays and cuts the tail under the lock, so this is a bug, not a crash:
            // refuse rather than overwrite or cut anything.
            return Err(StoreError::Embedded(EmbeddedError::State(format!(
                "{} is {len} bytes but the state says it ends at {}",
                path.display(),
                start.offset
            ))));
        }
        let written = file
            .write_all_at(&buf, start.offset)
            .and_then(|()| file.sync_data());
        if let Err(source) = written {
            // Best effort: the records were never acknowledged; open cuts them off anyway.
            let _ = file.set_len(start.offset);
            *writer = None;
            return Err(StoreError::Io { path, source });
        }
        Ok((
            positions,
            Pos {
                segment: start.segment,
                offset: start.offset + total,
            },
        ))
    }
}

/// After a bad record at the start of `buf`: whether a complete commit is followed by more
/// records somewhere after it, i.e. whether a later commit was written after the damage.
/// Scans byte by byte; only runs on a damaged journal.
pub(crate) fn later_commit_follows(buf: &[u8]) -> bool {
    let mut at = 1;
    let mut seen_end = false;
    while at < buf.len() {
        match decode(&buf[at..]) {
            Decoded::Record(record, len) => {
                if seen_end {
                    return true;
                }
                seen_end = record.end;
                at += len as usize;
            }
            _ => at += 1,
        }
    }
    false
}

/// A segment read a window at a time, so a read that stops early (a time range, a scan from a
/// sparse index entry) does not pull the rest of a 64 MiB segment into memory.
struct Window {
    path: PathBuf,
    file: File,
    /// The segment offset of `buf[0]`.
    base: u64,
    buf: Vec<u8>,
    /// Whether `buf` reaches the end of the segment.
    eof: bool,
}

impl Window {
    const SIZE: u64 = 1 << 20;

    /// Opens `path` at `offset` with the first window read; `None` if the file does not exist.
    fn open(path: &Path, offset: u64) -> Result<Option<Window>, StoreError> {
        let Some(file) = open_at(path, offset)? else {
            return Ok(None);
        };
        let mut window = Window {
            path: path.to_owned(),
            file,
            base: offset,
            buf: Vec::new(),
            eof: false,
        };
        window.read()?;
        Ok(Some(window))
    }

    /// Drops the first `consumed` bytes and reads the next window after what is left.
    fn more(&mut self, consumed: usize) -> Result<(), StoreError> {
        self.buf.drain(..consumed);
        self.base += consumed as u64;
        self.read()
    }

    fn read(&mut self) -> Result<(), StoreError> {
        let n = (&mut self.file)
            .take(Window::SIZE)
            .read_to_end(&mut self.buf)
            .map_err(StoreError::io(&self.path))?;
        self.eof = (n as u64) < Window::SIZE;
        Ok(())
    }
}

/// Reads `path` from `offset` to its end; `None` if the file does not exist.
pub(crate) fn read_tail(path: &Path, offset: u64) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(mut file) = open_at(path, offset)? else {
        return Ok(None);
    };
    let mut buf = Vec::new();
    file.read_to_end(&mut buf).map_err(StoreError::io(path))?;
    Ok(Some(buf))
}

/// `path` opened for reading at `offset`; `None` if the file does not exist.
fn open_at(path: &Path, offset: u64) -> Result<Option<File>, StoreError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source: e,
            })
        }
    };
    file.seek(SeekFrom::Start(offset))
        .map_err(StoreError::io(path))?;
    Ok(Some(file))
}

/// The permission bits of `dir` (0700 if it cannot be read). What the store creates inside a
/// directory gets that directory's permissions (files without execute): a store created
/// private (0700) stays private whatever the umask, and read access an operator grants on a
/// store (`chmod -R g+rX`) extends to the segments and state written later.
pub(crate) fn mode_of(dir: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(dir).map_or(0o700, |m| m.permissions().mode() & 0o777)
}

/// Creates directory `path` (its parent must exist) with its parent's permissions; an
/// existing one is left as it is.
pub(crate) fn create_dir(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    let parent = path.parent().unwrap_or(Path::new("."));
    match fs::DirBuilder::new().mode(mode_of(parent)).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(StoreError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}

/// Options that create a file with the permissions of the directory `path` is in, without
/// execute (see [`mode_of`]).
pub(crate) fn create_options(path: &Path) -> OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let parent = path.parent().unwrap_or(Path::new("."));
    let mut options = OpenOptions::new();
    options.create(true).mode(mode_of(parent) & 0o666);
    options
}

/// Takes away from what sled created in `dir` (its files, and one level of directories) any
/// permission `dir` itself does not give: sled creates files with the process umask.
pub(crate) fn tighten(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let allowed = mode_of(dir);
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        let want = if meta.is_dir() {
            tighten(&entry.path());
            mode & allowed
        } else {
            mode & allowed & 0o666
        };
        if want != mode {
            // Best effort: a file sled replaced meanwhile is tightened at the next open.
            let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(want));
        }
    }
}

/// fsyncs a directory, so a created or removed file's entry is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io(dir))
}
