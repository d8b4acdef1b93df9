//! Validation findings with their place in the source.
//!
//! A [`Diagnostic`] carries a byte span into the workflow text and the 1-based line and column
//! `waygate validate` prints; it implements [`miette::Diagnostic`] so the CLI renders it with
//! the offending line and a caret, and it serialises to the JSON shape `docs/cli.md` gives.

use std::fmt;
use std::ops::Range;

use serde::Serialize;

use crate::line_index::LineIndex;

/// Error or warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The workflow cannot be used.
    Error,
    /// The workflow works but probably not as meant.
    Warning,
}

/// Every code a diagnostic can have: the one list (docs/workflow-format.md, "Diagnostics"),
/// written in files and JSON as its kebab-case name (`undeclared-var`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// The file cannot be read (whole file).
    Unreadable,
    /// The file is larger than a workflow may be (whole file).
    TooLarge,
    /// Malformed RON, or a value of the wrong kind.
    Syntax,
    /// A value the field cannot take.
    Type,
    /// A field the construct does not have.
    UnknownField,
    /// An enum value that does not exist.
    UnknownVariant,
    /// A required field left out.
    MissingField,
    /// A field written twice in one construct.
    DuplicateField,
    /// A key written twice in one map.
    DuplicateKey,
    /// Two guards of one transition with one name, or two Approval guards of one name out of
    /// one state.
    DuplicateGuard,
    /// Two transitions with the same `from` and `to`.
    DuplicateTransition,
    /// A name breaking the name rule.
    InvalidName,
    /// Two names that look the same but are written differently.
    LookalikeName,
    /// A state name that is not in `states`.
    UnknownState,
    /// A `${var}` not declared in `vars`.
    UndeclaredVar,
    /// An environment sets a var not declared in `vars`.
    UndeclaredEnvVar,
    /// A transition leaving a terminal state.
    TransitionFromTerminal,
    /// A state from which no terminal state can be reached.
    NoPathToTerminal,
    /// No state is terminal.
    NoTerminal,
    /// A duration that does not parse, or zero where a length of time is needed.
    BadDuration,
    /// Not an IANA time zone.
    BadTimezone,
    /// Not an RFC 6901 JSON pointer.
    BadPointer,
    /// Not a time of day.
    BadTime,
    /// A malformed `${..}`.
    BadTemplate,
    /// A value of the right type that makes no sense.
    BadValue,
    /// A state no run can get to (warning).
    UnreachableState,
    /// A var nothing uses (warning).
    UnusedVar,
    /// A `${var}` pasted into shell code (warning).
    ShellInterpolation,
    /// A secret var in a command's arguments (warning).
    SecretInArgv,
    /// Actions with no way to handle their failure (warning).
    MissingFailurePath,
    /// An `on_failure` from the rollback path back into the rollback state (warning).
    RollbackLoop,
    /// A `${steps.NAME.KEY}` naming no step that publishes values, or a key it does not publish.
    UnknownOutput,
    /// A `${steps.NAME.KEY}` used where a path reaches it without running its step.
    UnpublishedOutput,
    /// Two steps that publish values with one name.
    DuplicateStep,
    /// A policy's `PassesThrough` rule broken: a path to the state skips the other one.
    PolicyPassesThrough,
    /// A policy's `GuardedBy` rule broken: a way into the state without the guard.
    PolicyGuardedBy,
    /// A policy's `CanReach` rule broken: a state from which the target cannot be reached.
    PolicyCanReach,
    /// A policy's `FailurePath` rule broken: a state with no failure path.
    PolicyFailurePath,
    /// A policy's `DeadlineAtMost` rule broken: no deadline, or a longer one.
    PolicyDeadline,
}

impl Code {
    /// Every code, in the order of the docs' tables.
    pub const ALL: [Code; 39] = [
        Code::Unreadable,
        Code::TooLarge,
        Code::Syntax,
        Code::Type,
        Code::UnknownField,
        Code::UnknownVariant,
        Code::MissingField,
        Code::DuplicateField,
        Code::DuplicateKey,
        Code::DuplicateGuard,
        Code::DuplicateTransition,
        Code::InvalidName,
        Code::LookalikeName,
        Code::UnknownState,
        Code::UndeclaredVar,
        Code::UndeclaredEnvVar,
        Code::TransitionFromTerminal,
        Code::NoPathToTerminal,
        Code::NoTerminal,
        Code::BadDuration,
        Code::BadTimezone,
        Code::BadPointer,
        Code::BadTime,
        Code::BadTemplate,
        Code::BadValue,
        Code::UnreachableState,
        Code::UnusedVar,
        Code::ShellInterpolation,
        Code::SecretInArgv,
        Code::MissingFailurePath,
        Code::RollbackLoop,
        Code::UnknownOutput,
        Code::UnpublishedOutput,
        Code::DuplicateStep,
        Code::PolicyPassesThrough,
        Code::PolicyGuardedBy,
        Code::PolicyCanReach,
        Code::PolicyFailurePath,
        Code::PolicyDeadline,
    ];

    /// The stable kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unreadable => "unreadable",
            Code::TooLarge => "too-large",
            Code::Syntax => "syntax",
            Code::Type => "type",
            Code::UnknownField => "unknown-field",
            Code::UnknownVariant => "unknown-variant",
            Code::MissingField => "missing-field",
            Code::DuplicateField => "duplicate-field",
            Code::DuplicateKey => "duplicate-key",
            Code::DuplicateGuard => "duplicate-guard",
            Code::DuplicateTransition => "duplicate-transition",
            Code::InvalidName => "invalid-name",
            Code::LookalikeName => "lookalike-name",
            Code::UnknownState => "unknown-state",
            Code::UndeclaredVar => "undeclared-var",
            Code::UndeclaredEnvVar => "undeclared-env-var",
            Code::TransitionFromTerminal => "transition-from-terminal",
            Code::NoPathToTerminal => "no-path-to-terminal",
            Code::NoTerminal => "no-terminal",
            Code::BadDuration => "bad-duration",
            Code::BadTimezone => "bad-timezone",
            Code::BadPointer => "bad-pointer",
            Code::BadTime => "bad-time",
            Code::BadTemplate => "bad-template",
            Code::BadValue => "bad-value",
            Code::UnreachableState => "unreachable-state",
            Code::UnusedVar => "unused-var",
            Code::ShellInterpolation => "shell-interpolation",
            Code::SecretInArgv => "secret-in-argv",
            Code::MissingFailurePath => "missing-failure-path",
            Code::RollbackLoop => "rollback-loop",
            Code::UnknownOutput => "unknown-output",
            Code::UnpublishedOutput => "unpublished-output",
            Code::DuplicateStep => "duplicate-step",
            Code::PolicyPassesThrough => "policy-passes-through",
            Code::PolicyGuardedBy => "policy-guarded-by",
            Code::PolicyCanReach => "policy-can-reach",
            Code::PolicyFailurePath => "policy-failure-path",
            Code::PolicyDeadline => "policy-deadline",
        }
    }

    /// Whether a finding of this code refuses the workflow (an error) or only points at
    /// something probably not meant (a warning): docs/workflow-format.md lists each under
    /// "Errors" or "Warnings". A run's pinned definition reads some errors as warnings
    /// (`validate::pinned`).
    pub fn severity(self) -> Severity {
        match self {
            Code::UnreachableState
            | Code::UnusedVar
            | Code::ShellInterpolation
            | Code::SecretInArgv
            | Code::MissingFailurePath
            | Code::RollbackLoop => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// The short label under the caret: what the marked text is.
    pub fn label(self) -> &'static str {
        match self {
            // Whole-file findings show no text; the label is for completeness.
            Code::Unreadable => "cannot be read",
            Code::TooLarge => "too large",
            Code::Syntax => "the parser stopped here",
            Code::Type => "a value of the wrong kind",
            Code::UnknownField => "no such field",
            Code::UnknownVariant => "not one of the choices",
            Code::MissingField => "a required field is missing",
            Code::DuplicateField
            | Code::DuplicateKey
            | Code::DuplicateGuard
            | Code::DuplicateTransition => "defined again here",
            Code::InvalidName => "not a valid name",
            Code::LookalikeName => "looks like another name",
            Code::UnknownState => "no such state",
            Code::UndeclaredVar => "not declared",
            Code::UndeclaredEnvVar => "not a declared var",
            Code::TransitionFromTerminal => "terminal state",
            Code::NoPathToTerminal => "cannot finish",
            Code::NoTerminal => "no terminal state among these",
            Code::BadDuration => "not a duration",
            Code::BadTimezone => "unknown time zone",
            Code::BadPointer => "not a JSON pointer",
            Code::BadTime => "not HH:MM",
            Code::BadTemplate => "a malformed `${..}`",
            Code::BadValue => "a value this field cannot take",
            Code::UnreachableState => "unreachable",
            Code::UnusedVar => "never used",
            Code::ShellInterpolation => "pasted into shell code",
            Code::SecretInArgv => "visible to every local user",
            Code::MissingFailurePath => "no failure path",
            Code::RollbackLoop => "fails back into the rollback",
            Code::UnknownOutput => "no such published value",
            Code::UnpublishedOutput => "may not be published yet",
            Code::DuplicateStep => "defined again here",
            Code::PolicyPassesThrough => "reached without the required state",
            Code::PolicyGuardedBy => "a way in without the required guard",
            Code::PolicyCanReach => "cannot reach the required state",
            Code::PolicyFailurePath => "no failure path",
            Code::PolicyDeadline => "deadline missing or too long",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One finding of validation.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    /// The file as named on the command line.
    pub file: String,
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Error or warning.
    pub severity: Severity,
    /// What kind of problem it is; serialised as its kebab-case name, e.g. `undeclared-var`.
    pub code: Code,
    /// What is wrong, naming the things involved.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Byte range of the offending text.
    #[serde(skip)]
    pub span: Range<usize>,
    /// The short label under the caret.
    #[serde(skip)]
    pub label: String,
    /// Other places involved (the first of two duplicates, say).
    #[serde(skip)]
    pub related: Vec<(Range<usize>, String)>,
    /// For a policy violation: the states of a path that breaks the rule, from the initial
    /// state (docs/policies.md).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub counterexample: Vec<String>,
}

impl Diagnostic {
    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// A finding of `code` (with its severity and label) at byte range `span` of `text`, the
    /// file `file` whose lines are indexed in `lines`.
    pub fn at(
        file: &str,
        text: &str,
        lines: &LineIndex,
        code: Code,
        span: Range<usize>,
        message: String,
    ) -> Self {
        let (line, column) = lines.position(text, span.start);
        Diagnostic {
            file: file.to_owned(),
            line,
            column,
            severity: code.severity(),
            code,
            label: code.label().to_owned(),
            message,
            help: None,
            span,
            related: Vec::new(),
            counterexample: Vec::new(),
        }
    }

    /// A finding about the file as a whole (it cannot be read, it is too large): line and
    /// column are 0 and nothing of its text is shown.
    pub fn whole_file(file: &str, code: Code, message: String) -> Self {
        Diagnostic {
            file: file.to_owned(),
            line: 0,
            column: 0,
            severity: Severity::Error,
            code,
            message,
            help: None,
            span: 0..0,
            label: code.label().to_owned(),
            related: Vec::new(),
            counterexample: Vec::new(),
        }
    }

    /// Whether this is about the file as a whole, with no place in its text.
    pub fn is_whole_file(&self) -> bool {
        self.line == 0
    }

    /// Pairs the diagnostic with the lines of `source` it points at, for rendering with
    /// miette. Costs the size of those lines, not of the file.
    pub fn with_source(&self, source: &Source) -> Rendered {
        let mut spans = vec![self.span.clone()];
        spans.extend(self.related.iter().map(|(span, _)| span.clone()));
        let (excerpt, spans) = if self.is_whole_file() {
            (None, spans)
        } else {
            let (excerpt, spans) = Excerpt::new(source, &spans);
            (Some(excerpt), spans)
        };
        Rendered {
            diagnostic: self.clone(),
            excerpt,
            spans,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_whole_file() {
            return write!(f, "{}: {}", self.file, self.message);
        }
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// A workflow's text, its lines indexed once for rendering all of its diagnostics.
#[derive(Debug)]
pub struct Source {
    name: String,
    text: String,
    lines: LineIndex,
}

impl Source {
    /// The file `name` with text `text`.
    pub fn new(name: &str, text: &str) -> Self {
        Source {
            name: name.to_owned(),
            text: text.to_owned(),
            lines: LineIndex::new(text),
        }
    }
}

/// Bytes of a source line shown before it is cut around the place pointed at: a 200 KB line
/// in a diagnostic helps nobody.
const LINE_SHOWN: usize = 160;

/// Bytes shown before the first place pointed at on a cut line.
const LINE_LEAD: usize = 40;

/// The marker where a shown line is cut.
const CUT: &str = "…";

/// One shown line of an [`Excerpt`].
#[derive(Debug, Clone)]
struct ShownLine {
    /// Byte range in the excerpt, without the line break.
    range: Range<usize>,
    /// 0-based line in the file.
    line: usize,
    /// Bytes of the cut marker at its start (0 if not cut there).
    marker: usize,
    /// Characters of the file's line left out before the shown part.
    skipped: usize,
    /// Which run of consecutive file lines it belongs to.
    block: usize,
}

/// The lines around a diagnostic's places, long lines cut around them: what miette reads
/// instead of the whole file (reading the whole file for every diagnostic made rendering a
/// file with many findings quadratic; docs/performance.md).
#[derive(Debug, Clone)]
struct Excerpt {
    name: String,
    text: String,
    lines: Vec<ShownLine>,
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl Excerpt {
    /// The excerpt for `spans` (byte ranges in the file) and those spans in the excerpt.
    fn new(source: &Source, spans: &[Range<usize>]) -> (Excerpt, Vec<Range<usize>>) {
        let text = source.text.as_str();
        let index = &source.lines;
        let last_line = index.len().saturating_sub(1);
        let clamp = |o: usize| floor_boundary(text, o);
        let line_span = |span: &Range<usize>| {
            let start = clamp(span.start);
            let end = clamp(span.end.max(span.start + 1) - 1).max(start);
            (index.line_of(start), index.line_of(end))
        };
        // Lines to show: one of context either side of each span, runs merged.
        let mut runs: Vec<(usize, usize)> = spans
            .iter()
            .map(|s| {
                let (first, last) = line_span(s);
                (first.saturating_sub(1), (last + 1).min(last_line))
            })
            .collect();
        runs.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for (first, last) in runs {
            match merged.last_mut() {
                Some(prev) if first <= prev.1 + 1 => prev.1 = prev.1.max(last),
                _ => merged.push((first, last)),
            }
        }
        let mut out = String::new();
        let mut lines = Vec::new();
        // Per shown line: the file's bytes shown.
        let mut windows: Vec<Range<usize>> = Vec::new();
        for (block, &(first, last)) in merged.iter().enumerate() {
            for line in first..=last {
                let range = index.line_range(text, line);
                let window = if range.len() <= LINE_SHOWN {
                    range.clone()
                } else {
                    let anchor = spans
                        .iter()
                        .map(|s| clamp(s.start))
                        .filter(|o| range.contains(o))
                        .min()
                        .unwrap_or(range.start);
                    let start = clamp(anchor.saturating_sub(LINE_LEAD).max(range.start));
                    let end = clamp((start + LINE_SHOWN).min(range.end));
                    start..end
                };
                let begin = out.len();
                let marker = if window.start > range.start {
                    out.push_str(CUT);
                    CUT.len()
                } else {
                    0
                };
                out.push_str(&text[window.clone()]);
                let end = out.len();
                if window.end < range.end {
                    out.push_str(CUT);
                }
                lines.push(ShownLine {
                    range: begin..end,
                    line,
                    marker,
                    skipped: index.chars_between(range.start, window.start),
                    block,
                });
                windows.push(window);
                out.push('\n');
            }
        }
        // A file offset in the excerpt: on its shown line, clamped to the part shown.
        let map = |offset: usize| -> usize {
            let offset = clamp(offset);
            let line = index.line_of(offset);
            let Some(i) = lines.iter().position(|l| l.line == line) else {
                return 0;
            };
            let w = &windows[i];
            let within = offset.clamp(w.start, w.end) - w.start;
            lines[i].range.start + lines[i].marker + within
        };
        let mapped = spans
            .iter()
            .map(|s| {
                let start = map(s.start);
                let end = if s.end > s.start {
                    map(s.end).max(start)
                } else {
                    start
                };
                start..end
            })
            .collect();
        (
            Excerpt {
                name: source.name.clone(),
                text: out,
                lines,
            },
            mapped,
        )
    }

    /// Index of the shown line holding excerpt offset `offset`.
    fn shown_line(&self, offset: usize) -> usize {
        self.lines
            .partition_point(|l| l.range.start <= offset)
            .saturating_sub(1)
    }
}

impl miette::SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let first = self.shown_line(span.offset());
        let last = self.shown_line(span.offset() + span.len().saturating_sub(1));
        let block = self.lines[first].block;
        if self.lines[last].block != block {
            // Two places far apart are shown as two snippets, not with the file between them.
            return Err(miette::MietteError::OutOfBounds);
        }
        let mut from = first;
        while from > 0 && first - from < before && self.lines[from - 1].block == block {
            from -= 1;
        }
        let mut to = last;
        while to + 1 < self.lines.len() && to - last < after && self.lines[to + 1].block == block {
            to += 1;
        }
        let start = self.lines[from].range.start;
        let end = self.lines[to].range.end;
        let shown = &self.lines[first];
        let content_start = shown.range.start + shown.marker;
        let column = shown.skipped
            + self
                .text
                .get(content_start.min(span.offset())..span.offset())
                .map_or(0, |s| s.chars().count());
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            &self.text.as_bytes()[start..end],
            (start, end - start).into(),
            self.lines[from].line,
            column,
            to - from + 1,
        )))
    }
}

/// A diagnostic with the excerpt of its source, as miette renders it.
#[derive(Debug, Clone)]
pub struct Rendered {
    diagnostic: Diagnostic,
    excerpt: Option<Excerpt>,
    /// The diagnostic's span and its related spans, in the excerpt.
    spans: Vec<Range<usize>>,
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.diagnostic.is_whole_file() {
            return fmt::Display::fmt(&self.diagnostic, f);
        }
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Rendered {}

impl miette::Diagnostic for Rendered {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.diagnostic.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.excerpt.as_ref().map(|e| e as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.excerpt.as_ref()?;
        let d = &self.diagnostic;
        let primary = miette::LabeledSpan::new_primary_with_span(
            Some(d.label.clone()),
            (self.spans[0].start, self.spans[0].len().max(1)),
        );
        let related = d
            .related
            .iter()
            .zip(&self.spans[1..])
            .map(|((_, label), span)| {
                miette::LabeledSpan::new_with_span(
                    Some(label.clone()),
                    (span.start, span.len().max(1)),
                )
            });
        Some(Box::new(std::iter::once(primary).chain(related)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_read_any_span_of_any_text() {
        use miette::SourceCode;
        let long = "x".repeat(400);
        let texts = [
            String::new(),
            "a".into(),
            "ab\n".into(),
            "é\r\nß\n\n東京\n".into(),
            format!("a\n{long}é{long}\nb"),
        ];
        for text in &texts {
            let source = Source::new("t.ron", text);
            for start in 0..=text.len() + 1 {
                for len in [0, 1, 3, 500] {
                    let spans = [start..start + len, 0..1, text.len()..text.len() + 1];
                    let (excerpt, mapped) = Excerpt::new(&source, &spans);
                    for span in &mapped {
                        assert!(span.start <= span.end && span.end <= excerpt.text.len());
                        for context in [0, 1, 2] {
                            let got = excerpt.read_span(
                                &(span.start, span.len().max(1)).into(),
                                context,
                                context,
                            );
                            if let Ok(contents) = got {
                                assert!(std::str::from_utf8(contents.data()).is_ok());
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_long_line_is_cut_around_the_span_with_the_real_column() {
        use miette::SourceCode;
        let text = format!("{}X{}", "a".repeat(10_000), "b".repeat(10_000));
        let source = Source::new("t.ron", &text);
        let span = 10_000..10_001;
        let (excerpt, mapped) = Excerpt::new(&source, std::slice::from_ref(&span));
        assert!(excerpt.text.len() < 300, "{}", excerpt.text.len());
        assert_eq!(&excerpt.text[mapped[0].clone()], "X");
        let contents = excerpt
            .read_span(&(mapped[0].start, 1).into(), 0, 0)
            .expect("readable");
        assert_eq!((contents.line(), contents.column()), (0, 10_000));
    }

    #[test]
    fn every_code_is_documented_under_its_severity() {
        let docs = include_str!("../../../docs/workflow-format.md");
        let section = |title: &str| {
            let start = docs.find(title).expect("a section");
            let rest = &docs[start + title.len()..];
            &rest[..rest.find("\n#").unwrap_or(rest.len())]
        };
        let (errors, warnings) = (section("### Errors"), section("### Warnings"));
        for code in Code::ALL {
            let row = format!("| `{code}` |");
            let (is, is_not) = match code.severity() {
                Severity::Error => (errors, warnings),
                Severity::Warning => (warnings, errors),
            };
            if matches!(code, Code::Unreadable | Code::TooLarge) {
                continue; // whole-file codes have their own table
            }
            assert!(is.contains(&row) && !is_not.contains(&row), "{code}");
        }
    }

    #[test]
    fn every_code_is_documented_once_under_its_own_name() {
        let docs = include_str!("../../../docs/workflow-format.md");
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert!(
                docs.contains(&format!("| `{code}` |")),
                "{code} has no row in docs/workflow-format.md"
            );
        }
    }
}
