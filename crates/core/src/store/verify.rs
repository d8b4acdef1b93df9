//! `verify` for the embedded store: every record's checksum and hash, and the chain.
//!
//! Each record carries its own `prev_hash`, so decoding a record and recomputing its hash does
//! not depend on any other record: a segment is split into ranges of records that threads
//! check at once (`std::thread::scope`), each also checking the links inside its range. The
//! links between ranges (and segments) are then a sequential comparison of seq numbers and
//! hash strings. The report is the one a sequential pass gives: the first bad event in journal
//! order, counted the same way, with the same words.

use std::ops::Range;

use super::journal::{self, Decoded, Journal, Pos, HEADER, MAX_PAYLOAD};
use super::{BadEvent, StoreError, VerifyReport};
use crate::event::{Event, GENESIS_HASH};

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
}

/// Checks `buf[offsets[range]]`, records starting at those offsets.
fn check_range(buf: &[u8], offsets: &[usize], range: Range<usize>) -> RangeReport {
    let mut report = RangeReport::default();
    let mut scratch = Vec::with_capacity(1024);
    let mut prev: Option<Link> = None;
    for index in range {
        let event: Event = match journal::decode(&buf[offsets[index]..]) {
            Decoded::Record(record, _) => record.event,
            bad => {
                report.fault = Some((index, Fault::Record(bad)));
                return report;
            }
        };
        let hash_ok = event.hash_matches(&mut scratch);
        match &prev {
            None => {
                report.first = Some((link(&event), hash_ok));
            }
            Some(prev) => {
                let problem = if event.seq != prev.seq + 1 {
                    Some(format!(
                        "sequence gap: expected {}, found {}",
                        prev.seq + 1,
                        event.seq
                    ))
                } else if event.prev_hash != prev.hash {
                    Some("prev_hash does not match the previous event's hash".to_owned())
                } else if !hash_ok {
                    Some("hash mismatch: the event's content was altered".to_owned())
                } else {
                    None
                };
                if let Some(problem) = problem {
                    report.fault = Some((
                        index,
                        Fault::Event {
                            seq: event.seq,
                            problem,
                        },
                    ));
                    return report;
                }
            }
        }
        report.good += 1;
        let here = link(&event);
        report.last = Some(here.clone());
        prev = Some(here);
    }
    report
}

fn link(event: &Event) -> Link {
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

/// The chain as verified so far.
struct Chain {
    next_seq: u64,
    prev_hash: String,
    events: u64,
}

/// Verifies `journal` with `threads` threads per segment.
pub(crate) fn verify(journal: &Journal, threads: usize) -> Result<VerifyReport, StoreError> {
    let segments = journal.segments()?;
    let last = segments.last().copied().unwrap_or(Pos::START.segment);
    let mut chain = Chain {
        next_seq: 1,
        prev_hash: GENESIS_HASH.to_owned(),
        events: 0,
    };
    let threads = threads.max(1);
    for segment in Pos::START.segment..=last {
        let path = journal.segment_path(segment);
        let Some(buf) = journal::read_tail(&path, 0)? else {
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
        let reports: Vec<RangeReport> = std::thread::scope(|scope| {
            let handles: Vec<_> = ranges
                .iter()
                .map(|range| {
                    let (buf, offsets, range) = (&buf, &offsets, range.clone());
                    scope.spawn(move || check_range(buf, offsets, range))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for (range, report) in ranges.iter().zip(reports) {
            if let Some((first, hash_ok)) = &report.first {
                let problem = if first.seq != chain.next_seq {
                    Some(format!(
                        "sequence gap: expected {}, found {}",
                        chain.next_seq, first.seq
                    ))
                } else if first.prev_hash != chain.prev_hash {
                    Some("prev_hash does not match the previous event's hash".to_owned())
                } else if !hash_ok {
                    Some("hash mismatch: the event's content was altered".to_owned())
                } else {
                    None
                };
                if let Some(problem) = problem {
                    let pos = Pos {
                        segment,
                        offset: offsets[range.start] as u64,
                    };
                    return Ok(bad_event(journal, &chain, 1, first.seq, problem, pos));
                }
            }
            chain.events += report.good;
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
                    let at = offsets[index];
                    let pos = Pos {
                        segment,
                        offset: at as u64,
                    };
                    let detail = describe(decoded, &buf[at..], segment >= last);
                    return Ok(bad_record(journal, &mut chain, pos, detail));
                }
            }
        }
        if stop < buf.len() {
            // Hopping stopped at a header that cannot start a complete record.
            let decoded = journal::decode(&buf[stop..]);
            let pos = Pos {
                segment,
                offset: stop as u64,
            };
            let detail = describe(decoded, &buf[stop..], segment >= last);
            return Ok(bad_record(journal, &mut chain, pos, detail));
        }
    }
    Ok(VerifyReport {
        events: chain.events,
        first_bad: None,
    })
}

/// What to say about an undecodable record, as a sequential read of the journal would: a bad
/// write at the very end of the last segment is a torn tail, anything else damage.
fn describe(decoded: Decoded, rest: &[u8], in_last_segment: bool) -> String {
    if in_last_segment && !journal::later_commit_follows(rest) {
        return "the journal's last record is incomplete or fails its checksum".to_owned();
    }
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
    chain: &Chain,
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
    }
}

/// The report for an unreadable record: it would have been the next event.
fn bad_record(journal: &Journal, chain: &mut Chain, pos: Pos, problem: String) -> VerifyReport {
    let seq = chain.next_seq;
    bad_event(journal, chain, 1, seq, problem, pos)
}
