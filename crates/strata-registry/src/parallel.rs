//! Running blob transfers a few at a time on scoped threads (the client is blocking; a
//! handful of threads is what docker and skopeo use per image too).

use crate::Result;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Runs `f` on every item with at most `max` at once and returns the results in item
/// order, or the first error in item order. After an error no new item is started.
pub(crate) fn map<T: Sync, R: Send>(
    items: &[T],
    max: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let workers = max.clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<R>>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut out = Vec::with_capacity(items.len());
    let mut first_err = None;
    for r in results {
        match r {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => {
                first_err.get_or_insert(e);
            }
            // Not started because another item failed.
            None => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn keeps_order_and_reports_the_first_error() {
        let items: Vec<u32> = (0..20).collect();
        assert_eq!(
            map(&items, 3, |i| Ok(i * 2)).unwrap(),
            (0..20).map(|i| i * 2).collect::<Vec<_>>()
        );
        let r = map(&items, 4, |&i| {
            if i == 5 {
                Err(Error::InvalidPlatform(i.to_string()))
            } else {
                Ok(i)
            }
        });
        assert!(matches!(r, Err(Error::InvalidPlatform(s)) if s == "5"));
        assert!(map(&Vec::<u32>::new(), 3, |&i| Ok(i)).unwrap().is_empty());
    }
}
