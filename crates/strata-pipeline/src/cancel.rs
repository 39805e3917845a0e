//! Stopping a running operation from another thread (a service's cancel request).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A cancellation flag shared between whoever may cancel and the running operation.
/// Clones share the flag. Operations check it between steps — before resolving, before and
/// after fetching, before each image, before each package of an image is opened and before
/// each scriptlet — and then return [`Error::Canceled`](crate::Error::Canceled). A running
/// scriptlet is killed within a quarter of a second; a step otherwise in progress (one
/// download, one layer being compressed) runs to its end.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag that is not set.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks every operation holding a clone to stop at its next check.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_canceled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// The shared flag itself, for code that polls it directly (the sandbox kills a running
    /// scriptlet when it is set).
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }

    /// `Err(Error::Canceled)` once canceled: `cancel.check()?` between steps.
    pub fn check(&self) -> crate::Result<()> {
        if self.is_canceled() {
            Err(crate::Error::Canceled)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag() {
        let a = Cancel::new();
        let b = a.clone();
        assert!(b.check().is_ok());
        a.cancel();
        assert!(b.is_canceled());
        assert!(matches!(b.check(), Err(crate::Error::Canceled)));
    }
}
