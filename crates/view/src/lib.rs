//! waygate's pictures and pages for people: what a workflow and its runs look like outside a
//! terminal. No IO: callers (the CLI, the server's pages) gather the model, runs and events
//! and get text back.
//!
//! # Layout
//! `labels` are the words on a workflow's picture (a guard as `name (Kind detail)`), the same
//! in every format: `dot` (Graphviz DOT), `mermaid` (Mermaid) and `svg` (an SVG picture drawn
//! here, laid out by `layout`, with a run's [`svg::Trail`] marked on it). `report` is the
//! self-contained HTML audit report. `xml` escapes every value for XML and HTML.
#![deny(missing_docs)]

pub mod dot;
pub mod labels;
pub mod layout;
pub mod mermaid;
pub mod report;
pub mod svg;
pub mod xml;
