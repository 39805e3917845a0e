//! Build listings served from memory while nothing changed: the status poll of every UI,
//! CI job and `strata builds` asks for the same newest builds again and again, and reading
//! them is most of its cost (sqlx hands each row over from its SQLite thread separately).
//!
//! A listing is kept with the state version it was read at ([`Db::state_version`], counted
//! up in every transaction that changes a build) and served again only while the version
//! is unchanged — one single-row read instead of one row per build. The version is read
//! before the builds, so a kept listing is never older than the version it is filed under.
//! Durations of queued and running builds grow while kept; they are brought up to the
//! moment of each answer.

use crate::db::Db;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;
use strata_client::Build;

/// What a listing is asked for: (state, image, limit).
type Key = (Option<String>, Option<String>, i64);

/// Kept listings; a few keys only (the common polls), so memory stays small however
/// callers vary their filters.
#[derive(Default)]
pub struct ListCache(Mutex<HashMap<Key, Kept>>);

struct Kept {
    version: i64,
    read_at: Instant,
    builds: Vec<Build>,
}

const MAX_KEYS: usize = 16;

impl ListCache {
    pub async fn list(&self, db: &Db, image: Option<&str>, state: Option<&str>, limit: i64) -> Result<Vec<Build>, sqlx::Error> {
        let key: Key = (state.map(str::to_string), image.map(str::to_string), limit);
        let version = db.state_version().await?;
        if let Some(builds) = self.fresh(&key, version) {
            return Ok(builds);
        }
        let builds = db.list(image, state, limit).await?;
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS && !map.contains_key(&key) {
            map.clear();
        }
        map.insert(key, Kept { version, read_at: Instant::now(), builds: builds.clone() });
        Ok(builds)
    }

    fn fresh(&self, key: &Key, version: i64) -> Option<Vec<Build>> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let kept = map.get(key).filter(|k| k.version == version)?;
        let waited = kept.read_at.elapsed().as_secs_f64();
        let mut builds = kept.builds.clone();
        drop(map);
        for b in &mut builds {
            advance(b, waited);
        }
        Some(builds)
    }
}

/// A build as it is `waited` seconds after it was read, its state unchanged: a queued one
/// has queued that much longer, a running one run that much longer.
fn advance(b: &mut Build, waited: f64) {
    let round = |s: f64| (s * 1000.0).round() / 1000.0;
    match b.state.as_str() {
        "queued" => b.queued_seconds = round(b.queued_seconds + waited),
        "running" => b.run_seconds = round(b.run_seconds + waited),
        _ => {}
    }
}
