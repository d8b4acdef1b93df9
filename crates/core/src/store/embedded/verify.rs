//! `verify` for the embedded store: every record's checksum and hash, and the chain.
//!
//! Each record carries its own `prev_hash`, so decoding a record and recomputing its hash does
//! not depend on any other record: a segment is split into ranges of records that threads
//! check at once (`std::thread::scope`), each also checking the links inside its range. The
//! links between ranges (and segments) are then a sequential comparison of seq numbers and
//! hash strings. The report is the one a sequential pass gives: the first bad event in journal
//! order, counted the same way, with the same words.

use super::error::EmbeddedError;
use std::ops::Range;

use super::journal::{self, Decoded, Journal, Pos, HEADER, MAX_PAYLOAD};
use crate::event::link_fault;

use crate::event::GENESIS_HASH;
use crate::store::{BadEvent, ChainHead, StoreError, VerifyReport};

/// The seq, `prev_hash` and `hash` of a range's first or last event.
#[derive(Debug, Clone)]
struct Link {
    seq: u64,
    prev_hash: String,
    hash: String,
}

/// What went wrong inside a range, at its `index`-th record.
#[derive(Debug)]
enum Fault {
    /// The event does not follow the previous one of the range, or its hash is wrong.
    Event { seq: u64, problem: String },
    /// The record cannot be decoded.
    Record(Decoded),
}

/// What a thread found in its range of records.
#[derive(Debug, Default)]
struct RangeReport {
    /// The first event (checked only for its own hash; its links are checked when stitching).
    first: Option<(Link, bool)>,
    /// The last good event.
    last: Option<Link>,
    /// Records checked before the fault (or all of them).
    good: u64,
    /// The first fault after the first record's links, and where.
    fault: Option<(usize, Fault)>,
    /// The seq of the event whose hash is the one looked for, if in this range.
    found: Option<u64>,
}

/// An event's chain fields and whether its hash is right, as the checks need them.
struct Checked {
    seq: u64,
    prev_hash: String,
    hash: String,
    hash_ok: bool,
}

/// Checks `buf[offsets[range]]`, records starting at those offsets.
/// `expect`: a hash to look for ([`RangeReport::found`]).
fn check_range(
    buf: &[u8],
    offsets: &[usize],
    range: Range<usize>,
    expect: Option<&str>,
) -> RangeReport {
    let mut report = RangeReport::default();
    let mut scratch = Vec::with_capacity(1024);
    let mut prev: Option<Link> = None;
    let mut event = Checked {
        seq: 0,
        prev_hash: String::with_capacity(64),
        hash: String::with_capacity(64),
        hash_ok: false,
    };
    for index in range {
        let rest = &buf[offsets[index]..];
        if !fast_check(rest, &mut event) {
            match journal::decode(rest) {
                Decoded::Record(record, _) => {
                    let full = record.event;
                    event.hash_ok = full.hash_matches(&mut scratch);
                    event.seq = full.seq;
                    event.prev_hash = full.prev_hash;
                    event.hash = full.hash;
                }
                bad => {
                    report.fault = Some((index, Fault::Record(bad)));
                    break;
                }
            }
        }
        match &prev {
            None => {
                report.first = Some((link(&event), event.hash_ok));
            }
            Some(prev) => {
                let problem = link_fault(
                    prev.seq + 1,
                    &prev.hash,
                    event.seq,
                    &event.prev_hash,
                    event.hash_ok,
                );
                if let Some(problem) = problem {
                    report.fault = Some((
                        index,
                        Fault::Event {
                            seq: event.seq,
                            problem,
                        },
                    ));
                    break;
                }
            }
        }
        report.good += 1;
        if report.found.is_none() && expect == Some(event.hash.as_str()) {
            report.found = Some(event.seq);
        }
        match &mut prev {
            Some(link) => {
                link.seq = event.seq;
                link.prev_hash.clone_from(&event.prev_hash);
                link.hash.clone_from(&event.hash);
            }
            None => prev = Some(link(&event)),
        }
    }
    report.last = prev;
    report
}

/// The common case without decoding the record into an [`Event`]: checks the record's
/// checksum, finds the hashed fields in its JSON as the store writes it (`{"event":{"seq":..,
/// "run_id":..,"at":..,"actor":..,"kind":.., ..,"prev_hash":..,"hash":..}..}`, the kind's
/// fields inline) and hashes them as they are. True when all of that worked and the hash
/// matches, with `out` filled in. Anything else (damage, an escaped string, a layout it does
/// not expect, a wrong hash) is left to the full decode, which gives the exact verdict; so
/// this only ever speeds up events that are right.
fn fast_check(rest: &[u8], out: &mut Checked) -> bool {
    let Some(header) = rest.get(..HEADER) else {
        return false;
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let Some(payload) = rest.get(HEADER..HEADER + len) else {
        return false;
    };
    if crc32fast::hash(payload) != crc {
        return false;
    }
    let Some(fields) = hashed_fields(payload) else {
        return false;
    };
    let digest = crate::event::digest_hashed([
        &[fields.prev_hash],
        &[fields.seq],
        &[fields.run_id],
        &[fields.at],
        &[fields.actor],
        &[b"{", fields.kind, b"}"],
    ]);
    let matches = crate::event::hex_matches(&digest, fields.hash);
    let (Ok(seq), Ok(prev_hash), Ok(hash)) = (
        std::str::from_utf8(fields.seq).map(str::parse::<u64>),
        std::str::from_utf8(fields.prev_hash),
        std::str::from_utf8(fields.hash),
    ) else {
        return false;
    };
    let Ok(seq) = seq else {
        return false;
    };
    if !matches {
        return false;
    }
    out.seq = seq;
    out.prev_hash.clear();
    out.prev_hash.push_str(prev_hash);
    out.hash.clear();
    out.hash.push_str(hash);
    out.hash_ok = true;
    true
}

/// The raw bytes the hash covers, found in a record's JSON.
struct Fields<'a> {
    seq: &'a [u8],
    run_id: &'a [u8],
    at: &'a [u8],
    actor: &'a [u8],
    /// The kind's fields without the braces: `"kind":"Name",...`.
    kind: &'a [u8],
    prev_hash: &'a [u8],
    hash: &'a [u8],
}

fn hashed_fields(payload: &[u8]) -> Option<Fields<'_>> {
    let rest = payload.strip_prefix(b"{\"event\":{\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let (seq, rest) = rest.split_at(digits);
    let (run_id, rest) = plain_string(rest.strip_prefix(b",\"run_id\":")?)?;
    let (at, rest) = plain_string(rest.strip_prefix(b",\"at\":")?)?;
    let (actor, rest) = plain_string(rest.strip_prefix(b",\"actor\":")?)?;
    let rest = rest.strip_prefix(b",")?;
    if !rest.starts_with(b"\"kind\":") {
        return None;
    }
    // The kind's fields end where `,"prev_hash":"<64 hex>","hash":"<64 hex>"}` ends the event.
    const PREV: &[u8] = b",\"prev_hash\":\"";
    const HASH: &[u8] = b"\",\"hash\":\"";
    let mut from = 0;
    loop {
        let at_prev = from + find(&rest[from..], PREV)?;
        let tail = &rest[at_prev + PREV.len()..];
        let ok = tail.len() >= 64 + HASH.len() + 64 + 2
            && tail[..64].iter().all(u8::is_ascii_hexdigit)
            && &tail[64..64 + HASH.len()] == HASH
            && tail[64 + HASH.len()..128 + HASH.len()]
                .iter()
                .all(u8::is_ascii_hexdigit)
            && &tail[128 + HASH.len()..130 + HASH.len()] == b"\"}";
        if ok {
            return Some(Fields {
                seq,
                run_id,
                at,
                actor,
                kind: &rest[..at_prev],
                prev_hash: &tail[..64],
                hash: &tail[64 + HASH.len()..128 + HASH.len()],
            });
        }
        from = at_prev + 1;
    }
}

/// A JSON string without escapes at the start of `bytes`: its contents and what follows.
fn plain_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = bytes.strip_prefix(b"\"")?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    if rest[end] != b'"' {
        return None;
    }
    Some((&rest[..end], &rest[end + 1..]))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let mut from = 0;
    while let Some(i) = haystack[from..].iter().position(|&b| b == first) {
        let at = from + i;
        if haystack[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn link(event: &Checked) -> Link {
    Link {
        seq: event.seq,
        prev_hash: event.prev_hash.clone(),
        hash: event.hash.clone(),
    }
}

/// Where record boundaries are, hopping over length headers, up to the first header that
/// cannot start a complete record (where decoding will say what is wrong).
fn record_offsets(buf: &[u8]) -> (Vec<usize>, usize) {
    let mut offsets = Vec::new();
    let mut at = 0;
    while buf.len() - at >= HEADER {
        let len = u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
        if len == 0 || len > MAX_PAYLOAD || buf.len() - at - HEADER < len {
            break;
        }
        offsets.push(at);
        at += HEADER + len;
    }
    (offsets, at)
}

/// The chain as verified so far (the parallel pass's running state).
#[derive(Clone)]
struct Verified {
    next_seq: u64,
    prev_hash: String,
    events: u64,
    /// The seq of the event with the hash looked for, once seen.
    found: Option<u64>,
}

impl Verified {
    /// The report for an intact chain.
    fn report(&self) -> VerifyReport {
        VerifyReport {
            events: self.events,
            first_bad: None,
            head: (self.events > 0).then(|| ChainHead {
                seq: self.next_seq - 1,
                hash: self.prev_hash.clone(),
            }),
            unfinished: None,
            reached: self.found,
        }
    }
}

/// Verifies `journal` with `threads` threads per segment, reading each segment no further
/// than `lengths` says (the journal as it was when it was looked at: appends made since are
/// not judged half-written), and looking for the event whose hash is `expect`.
pub(crate) fn verify(
    journal: &Journal,
    threads: usize,
    lengths: Option<&[(u32, u64)]>,
    expect: Option<&str>,
) -> Result<VerifyReport, StoreError> {
    let segments = match lengths {
        Some(lengths) => lengths.iter().map(|(s, _)| *s).collect(),
        None => journal.segments()?,
    };
    let last = segments.last().copied().unwrap_or(Pos::START.segment);
    let mut chain = Verified {
        next_seq: 1,
        prev_hash: GENESIS_HASH.to_owned(),
        events: 0,
        found: None,
    };
    let threads = threads.max(1);
    let read = |segment: u32| -> Result<Option<Vec<u8>>, StoreError> {
        let mut buf = journal::read_tail(&journal.segment_path(segment), 0)?;
        let limit = lengths.and_then(|l| l.iter().find(|(s, _)| *s == segment));
        if let (Some(buf), Some((_, len))) = (buf.as_mut(), limit) {
            buf.truncate(*len as usize);
        }
        Ok(buf)
    };
    let mut next = read(Pos::START.segment)?;
    for segment in Pos::START.segment..=last {
        let path = journal.segment_path(segment);
        // Where the chain stood before this segment: the head if the whole last segment
        // turns out to be an unfinished commit.
        let before = chain.clone();
        let Some(buf) = next.take() else {
            if segment >= last {
                break;
            }
            let detail = format!("segment {} is missing", path.display());
            let pos = Pos { segment, offset: 0 };
            return Ok(bad_record(journal, &mut chain, pos, detail));
        };
        let (offsets, stop) = record_offsets(&buf);
        let per = offsets.len().div_ceil(threads).max(1);
        let ranges: Vec<Range<usize>> = (0..offsets.len())
            .step_by(per)
            .map(|start| start..(start + per).min(offsets.len()))
            .collect();
        // The threads check this segment while this one reads the next.
        let (reports, prefetched) = std::thread::scope(|scope| {
            let handles: Vec<_> = ranges
                .iter()
                .map(|range| {
                    let (buf, offsets, range) = (&buf, &offsets, range.clone());
                    scope.spawn(move || check_range(buf, offsets, range, expect))
                })
                .collect();
            let prefetched = if segment < last {
                read(segment + 1)
            } else {
                Ok(None)
            };
            let reports = handles
                .into_iter()
                .map(|h| {
                    h.join().map_err(|_| {
                        StoreError::Embedded(EmbeddedError::State(
                            "a verify thread panicked".into(),
                        ))
                    })
                })
                .collect::<Result<Vec<RangeReport>, StoreError>>();
            (reports, prefetched)
        });
        let reports = reports?;
        next = prefetched?;
        // The record after the good ones at `offsets[..good]` cannot be decoded: in the last
        // segment, a write a crash tore (an unfinished commit); anywhere else, damage.
        let undecodable = |chain: &mut Verified, good: usize, decoded: Decoded| {
            let at = offsets.get(good).copied().unwrap_or(stop);
            if segment >= last && is_torn(&buf[at..]) {
                let found = chain.found;
                return unfinished(
                    journal,
                    &before,
                    found,
                    segment,
                    &buf,
                    &offsets[..good],
                    Some(at),
                );
            }
            let pos = Pos {
                segment,
                offset: at as u64,
            };
            bad_record(journal, chain, pos, describe(decoded))
        };
        for (range, report) in ranges.iter().zip(reports) {
            if let Some((first, hash_ok)) = &report.first {
                let problem = link_fault(
                    chain.next_seq,
                    &chain.prev_hash,
                    first.seq,
                    &first.prev_hash,
                    *hash_ok,
                );
                if let Some(problem) = problem {
                    let pos = Pos {
                        segment,
                        offset: offsets[range.start] as u64,
                    };
                    return Ok(bad_event(journal, &chain, 1, first.seq, problem, pos));
                }
            }
            chain.events += report.good;
            chain.found = chain.found.or(report.found);
            if let Some(last) = &report.last {
                chain.next_seq = last.seq + 1;
                chain.prev_hash.clone_from(&last.hash);
            }
            match report.fault {
                None => {}
                Some((index, Fault::Event { seq, problem })) => {
                    let pos = Pos {
                        segment,
                        offset: offsets[index] as u64,
                    };
                    return Ok(bad_event(journal, &chain, 1, seq, problem, pos));
                }
                Some((index, Fault::Record(decoded))) => {
                    return Ok(undecodable(&mut chain, index, decoded));
                }
            }
        }
        if stop < buf.len() {
            // Hopping stopped at a header that cannot start a complete record.
            let decoded = journal::decode(&buf[stop..]);
            return Ok(undecodable(&mut chain, offsets.len(), decoded));
        }
        if segment >= last {
            return Ok(unfinished(
                journal,
                &before,
                chain.found,
                segment,
                &buf,
                &offsets,
                None,
            ));
        }
    }
    Ok(chain.report())
}

/// The report for a last segment whose records at `offsets` all passed, followed by a torn
/// write at `torn` if any: records after the last end-of-commit mark belong to a commit that
/// never finished (never acknowledged), which the next write cuts off. The chain's head is
/// the last finished commit's last event; `before` is the chain before this segment, `found`
/// the seq of the hash looked for, if seen.
fn unfinished(
    journal: &Journal,
    before: &Verified,
    found: Option<u64>,
    segment: u32,
    buf: &[u8],
    offsets: &[usize],
    torn: Option<usize>,
) -> VerifyReport {
    let mut finished = 0;
    let mut head = None;
    for (i, &at) in offsets.iter().enumerate().rev() {
        if let Decoded::Record(record, _) = journal::decode(&buf[at..]) {
            if record.end {
                finished = i + 1;
                head = Some(ChainHead {
                    seq: record.event.seq,
                    hash: record.event.hash,
                });
                break;
            }
        }
    }
    let mut report = match head {
        Some(head) => VerifyReport {
            events: before.events + finished as u64,
            head: Some(head),
            ..VerifyReport::default()
        },
        None => before.report(),
    };
    // The hash looked for counts only in the part that stays.
    let last = report.head.as_ref().map_or(0, |h| h.seq);
    report.reached = found.filter(|seq| *seq <= last);
    let cut = if finished < offsets.len() {
        Some(offsets[finished])
    } else {
        torn
    };
    if let Some(cut) = cut {
        let pos = Pos {
            segment,
            offset: cut as u64,
        };
        report.unfinished = Some(format!(
            "an unfinished write at {} (never acknowledged): the next write cuts it off",
            location(journal, pos)
        ));
    }
    report
}

/// Whether the undecodable record at the start of `rest` (in the last segment) is a torn
/// write: nothing that a later commit was written after, as a sequential read judges it.
fn is_torn(rest: &[u8]) -> bool {
    !journal::later_commit_follows(rest)
}

/// What to say about an undecodable record that is damage, not a torn write.
fn describe(decoded: Decoded) -> String {
    match decoded {
        Decoded::Corrupt(detail) => detail,
        _ => "incomplete record".to_owned(),
    }
}

fn location(journal: &Journal, pos: Pos) -> String {
    format!(
        "{} at byte {}",
        journal.segment_path(pos.segment).display(),
        pos.offset
    )
}

/// The report for a bad event after the chain so far (it counts as one more event checked).
fn bad_event(
    journal: &Journal,
    chain: &Verified,
    extra: u64,
    seq: u64,
    problem: String,
    pos: Pos,
) -> VerifyReport {
    VerifyReport {
        events: chain.events + extra,
        first_bad: Some(BadEvent {
            seq,
            problem,
            location: Some(location(journal, pos)),
        }),
        ..chain.report()
    }
}

/// The report for an unreadable record: it would have been the next event.
fn bad_record(journal: &Journal, chain: &mut Verified, pos: Pos, problem: String) -> VerifyReport {
    let seq = chain.next_seq;
    bad_event(journal, chain, 1, seq, problem, pos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, EventKind, NewEvent};
    use crate::outcome::{GuardResult, Outcome};
    use crate::run::RunId;
    use crate::store::embedded::journal::{encode, Record};

    fn sealed(kind: EventKind, at: &str) -> Vec<u8> {
        let at: jiff::Timestamp = at.parse().expect("time");
        let event = Event::seal(
            42,
            RunId::from("20261126-164501-3f9a"),
            at,
            NewEvent::new("ana", kind),
            GENESIS_HASH,
        );
        encode(&Record {
            event,
            run: None,
            end: true,
        })
        .expect("encode")
    }

    /// The fast path must hash exactly what `Event::compute_hash` hashes, for every shape of
    /// kind (maps, nested guard results with absent optional fields, nulls) and time.
    #[test]
    fn the_fast_path_accepts_what_the_store_writes() {
        let mut vars = std::collections::BTreeMap::new();
        vars.insert("prev_hash".to_owned(), "x".repeat(64));
        vars.insert("region".to_owned(), "eu-west-1".to_owned());
        let kinds = [
            EventKind::RunStarted {
                workflow: "web".into(),
                env: "prod".into(),
                state: "build".into(),
                file: "web.ron".into(),
                definition_hash: "ab".repeat(32),
                vars,
                workdir: None,
                file_path: None,
            },
            EventKind::GuardsEvaluated {
                state: "canary".into(),
                to: "prod".into(),
                passed: false,
                guards: vec![GuardResult {
                    name: "health".into(),
                    outcome: Outcome::Fail,
                    detail: "HTTP 503".into(),
                    evidence: None,
                    duration_ms: 12,
                    attempts: 3,
                    retry_at: Some("2026-11-26T16:45:01Z".parse().expect("timestamp")),
                    incident: false,
                    outputs: Default::default(),
                }],
            },
            EventKind::Transitioned {
                from: "a".into(),
                to: "b".into(),
                cause: crate::event::Cause::Rollback,
                reason: None,
            },
        ];
        for at in [
            "2026-11-26T16:45:01Z",
            "2026-11-26T16:45:01.123456789Z",
            "2026-11-26T16:45:01.5Z",
        ] {
            for kind in &kinds {
                let bytes = sealed(kind.clone(), at);
                let mut out = Checked {
                    seq: 0,
                    prev_hash: String::new(),
                    hash: String::new(),
                    hash_ok: false,
                };
                assert!(fast_check(&bytes, &mut out), "{at} {kind:?}");
                assert_eq!((out.seq, out.prev_hash.as_str()), (42, GENESIS_HASH));
            }
        }
    }

    /// Escaped strings and altered content go to the full decode.
    #[test]
    fn the_fast_path_declines_what_it_cannot_vouch_for() {
        let kind = EventKind::Aborted {
            state: "prod".into(),
            reason: "said \"stop\"".into(),
        };
        let mut out = Checked {
            seq: 0,
            prev_hash: String::new(),
            hash: String::new(),
            hash_ok: false,
        };
        // Quotes inside the kind are fine (the kind is hashed as written)...
        assert!(fast_check(
            &sealed(kind.clone(), "2026-11-26T16:45:01Z"),
            &mut out
        ));
        // ...an altered byte (with a fixed checksum) is not.
        let mut bytes = sealed(kind, "2026-11-26T16:45:01Z");
        let at = bytes.len() - 200;
        bytes[at] ^= 1;
        let crc = crc32fast::hash(&bytes[HEADER..]).to_le_bytes();
        bytes[4..8].copy_from_slice(&crc);
        assert!(!fast_check(&bytes, &mut out));
    }
}
