//! Where findings in a file other than the workflow being validated go (a policy, a scenario,
//! or a workflow a policy is checked against): the span tree and line index of its text,
//! built on first use, so a file without findings costs nothing to place.

use std::ops::Range;

use crate::diagnostic::{Code, Diagnostic};
use crate::line_index::LineIndex;
use crate::spec::span_tree::{self, Node, Step};

/// Where findings in one file go: its text, lines and span tree, indexed on first use.
pub(crate) struct Place<'t> {
    pub(crate) file: &'t str,
    pub(crate) text: &'t str,
    lines: std::cell::OnceCell<LineIndex>,
    tree: std::cell::OnceCell<Option<Node<'t>>>,
}

impl<'t> Place<'t> {
    pub(crate) fn new(file: &'t str, text: &'t str) -> Self {
        Place {
            file,
            text,
            lines: std::cell::OnceCell::new(),
            tree: std::cell::OnceCell::new(),
        }
    }

    pub(crate) fn lines(&self) -> &LineIndex {
        self.lines.get_or_init(|| LineIndex::new(self.text))
    }

    pub(crate) fn root(&self) -> Option<&Node<'t>> {
        let text = self.text;
        self.tree.get_or_init(|| span_tree::parse(text)).as_ref()
    }

    pub(crate) fn span(&self, path: &[Step]) -> Range<usize> {
        self.root().map_or(0..0, |r| r.span_at(path))
    }

    pub(crate) fn key_span(&self, path: &[Step], key: &str) -> Range<usize> {
        self.root()
            .and_then(|r| r.find(path))
            .and_then(|n| n.key_span(key))
            .unwrap_or_else(|| self.span(path))
    }

    pub(crate) fn diagnostic(&self, code: Code, span: Range<usize>, message: String) -> Diagnostic {
        Diagnostic::at(self.file, self.text, self.lines(), code, span, message)
    }
}
