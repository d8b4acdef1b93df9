//! Validation findings with their place in the source.
//!
//! A [`Diagnostic`] carries a byte span into the workflow text and the 1-based line and column
//! the contract prints; it implements [`miette::Diagnostic`] so the CLI renders it with the
//! offending line and a caret, and it serialises to the contract's JSON shape.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::Serialize;

/// Error or warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The workflow cannot be used.
    Error,
    /// The workflow works but probably not as meant.
    Warning,
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
    /// A stable kebab-case code, e.g. `undeclared-var`.
    pub code: &'static str,
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
}

impl Diagnostic {
    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Pairs the diagnostic with its source text for rendering with miette.
    pub fn with_source(&self, source: Arc<miette::NamedSource<String>>) -> Rendered {
        Rendered {
            diagnostic: self.clone(),
            source,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// A diagnostic with its source, as miette renders it.
#[derive(Debug, Clone)]
pub struct Rendered {
    diagnostic: Diagnostic,
    source: Arc<miette::NamedSource<String>>,
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        Some(self.source.as_ref())
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let d = &self.diagnostic;
        let primary = miette::LabeledSpan::new_primary_with_span(
            Some(d.label.clone()),
            (d.span.start, d.span.len().max(1)),
        );
        let related = d.related.iter().map(|(span, label)| {
            miette::LabeledSpan::new_with_span(Some(label.clone()), (span.start, span.len().max(1)))
        });
        Some(Box::new(std::iter::once(primary).chain(related)))
    }
}
