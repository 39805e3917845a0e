//! What an operation reports while it runs, through one interface for every front end.

use crate::compose::{ImageResult, LayerResult};

/// Receives [`Event`]s as an operation runs. Called from the operation's worker threads
/// (images are composed two at a time, packages fetched in parallel), hence `Send + Sync`;
/// an implementation should return quickly.
pub trait Progress: Send + Sync {
    fn event(&self, e: &Event<'_>);
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: &Event<'_>) {}
}

/// One thing that happened. Every `…Started` is followed by its `…Finished`, also when the
/// step failed, so a front end can always take down what it put up. Serialized as an object
/// tagged by `"event"` (`{"event": "image_started", "image": "web"}`), for a log stream.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event<'a> {
    /// Repository metadata is being loaded (from the cache when it is current) and the
    /// images resolved; `images` empty means all of the spec's.
    ResolveStarted { images: &'a [String] },
    /// Repo `repo`'s metadata is being loaded (repos load in parallel).
    RepoLoading { repo: &'a str },
    /// Image `image`'s packages are being resolved.
    Solving { image: &'a str },
    ResolveFinished,
    /// `packages` RPMs are needed, of which `bytes` bytes are not in the cache yet.
    FetchStarted { packages: usize, bytes: u64 },
    /// `bytes` new bytes of `package` arrived.
    FetchAdvanced { package: &'a str, bytes: u64 },
    /// `package` is in the cache and verified; `cached` when nothing was downloaded.
    PackageFetched { package: &'a str, cached: bool },
    FetchFinished,
    /// `images` images are out of date and will be built.
    ComposeStarted { images: usize },
    /// An image's build began (a worker thread took it).
    ImageStarted { image: &'a str },
    /// A layer of a finished image: built now or reused from the store. Sent when its image
    /// is done, before [`Event::ImageDone`].
    Layer { image: &'a str, layer: &'a LayerResult },
    /// One line of an image's scriptlet log, sent when its image is done.
    Log { image: &'a str, line: &'a str },
    /// A warning about an image (also in its [`ImageResult::warnings`]).
    Warning { image: &'a str, message: &'a str },
    /// An image is in the store, built now or found up to date.
    ImageDone { image: &'a ImageResult },
    /// An image failed; the others go on.
    ImageFailed { image: &'a str, error: &'a str },
    ComposeFinished,
}
