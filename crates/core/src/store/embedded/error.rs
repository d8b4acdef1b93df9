//! What only the embedded store can fail with: the inner error of [`StoreError::Embedded`](crate::store::StoreError::Embedded).

/// What only the embedded store can fail with: [`StoreError::Embedded`](crate::store::StoreError::Embedded). The messages say
/// where on disk, and what to do (`docs/storage.md`, "Salvage" and "Rebuild").
#[derive(Debug, Clone, thiserror::Error)]
pub enum EmbeddedError {
    /// A journal record that is needed cannot be read back: it is damaged.
    #[error("store is damaged: {detail} (segment {segment}, offset {offset}{})",
        seq.map(|s| format!(", event {s}")).unwrap_or_default())]
    Corrupt {
        /// The segment file.
        segment: String,
        /// Byte offset of the bad record in it.
        offset: u64,
        /// The event's sequence number, when known.
        seq: Option<u64>,
        /// What is wrong.
        detail: String,
    },
    /// The journal holds fewer events than the state had already applied: acknowledged events
    /// were removed from it (a truncated or deleted segment file). A hash chain cannot show
    /// that its tail is missing; the state can, and this is never repaired silently.
    #[error(
        "the journal has lost events: the state had recorded events up to {recorded}, but {detail}; \
         if this loss is known and accepted, delete the store's `state` directory to rebuild the \
         state from the journal as it is"
    )]
    JournalTruncated {
        /// The last event the state had applied.
        recorded: u64,
        /// What is missing.
        detail: String,
    },
    /// sled, the derived state, failed in a way a rebuild did not fix.
    #[error("store state (sled) failed: {0}")]
    State(String),
}
