//! Progress reporting: the library prints nothing; a caller that wants a progress bar
//! passes a [`Progress`] and hears about every blob.

use strata_oci::oci_spec::image::Digest;

/// What a blob is in its image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    Config,
    Layer,
}

/// How a blob ended up where it had to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Already there (in the store when pulling, in the repository when pushing).
    Present,
    /// Downloaded or uploaded.
    Transferred,
    /// Mounted from another repository of the same registry (push only).
    Mounted,
}

/// One event about one blob. Events of different blobs interleave when several are
/// transferred at once.
#[derive(Debug, Clone, Copy)]
pub enum BlobEvent<'a> {
    Started {
        digest: &'a Digest,
        kind: BlobKind,
        size: u64,
    },
    /// `done` of `size` bytes are through. It goes back down when a retry has to start
    /// the blob over.
    Bytes {
        digest: &'a Digest,
        done: u64,
        size: u64,
    },
    /// A transient failure; another attempt follows.
    Retrying {
        digest: &'a Digest,
        attempt: u32,
        reason: &'a str,
    },
    Finished {
        digest: &'a Digest,
        outcome: Outcome,
    },
}

/// Receives [`BlobEvent`]s, from several threads at once.
pub trait Progress: Sync {
    fn event(&self, event: &BlobEvent<'_>);
}

impl<F: Fn(&BlobEvent<'_>) + Sync> Progress for F {
    fn event(&self, event: &BlobEvent<'_>) {
        self(event)
    }
}

/// The progress of callers that want none.
pub(crate) struct Silent;

impl Progress for Silent {
    fn event(&self, _: &BlobEvent<'_>) {}
}

/// What happened to one blob of a pull or push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobTransfer {
    pub digest: Digest,
    pub kind: BlobKind,
    pub size: u64,
    pub outcome: Outcome,
    /// Push: the blob's bytes this push sent in request bodies, failed attempts included
    /// (less than `size` when it continued an earlier session). 0 for a pull.
    pub sent: u64,
    /// Push: the offset at which this push continued an upload session an earlier,
    /// killed or failed, push had left with the registry.
    pub resumed_from: Option<u64>,
}
