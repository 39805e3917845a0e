//! The database: one set of queries through sqlx's `Any` driver for SQLite and
//! PostgreSQL, the schema per backend (migrations/sqlite, migrations/postgres) because the
//! two spell identity columns and byte strings differently, and the one statement that
//! must differ — leasing (`FOR UPDATE SKIP LOCKED` on PostgreSQL) — chosen by [`Dialect`].
//!
//! The builds table is the queue. Every state change happens in one short transaction
//! that also writes a `build_events` row, so the history of a build is never missing a
//! step that the state shows.

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row};
use std::time::{SystemTime, UNIX_EPOCH};
use strata_client::{Attempt, Build, BuildResult, Event, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    /// Every write, and reads inside a write's transaction.
    pub pool: AnyPool,
    /// Reads that stand alone (lists, records, logs, tokens). On SQLite a separate pool of
    /// read-only connections: in WAL mode they read a snapshot while the one writer
    /// writes, so status requests neither wait for each other nor for the queue. On
    /// PostgreSQL the same pool as `pool`.
    pub read: AnyPool,
    pub dialect: Dialect,
}

/// Why a worker's call about a build was refused.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("build {0} is not leased with this lease (it expired, was canceled or ended)")]
    Lost(i64),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_prefixed(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

const BUILD_COLS: &str = "id, state, trigger_kind, submitter, source_url, source_ref, source_commit, source_path, images, scratch, \
created, started, run_started, finished, queued_since, queued_ms, run_ms, timeout_s, attempts, max_attempts, worker, cancel_requested, reason, result, track, rebuild, network, remote_content";

/// A new build as submitted, its ref already resolved to a commit.
pub struct NewBuild<'a> {
    pub submitter: &'a str,
    pub trigger: &'a str,
    pub source: &'a Source,
    pub commit: &'a str,
    pub images: &'a [String],
    pub scratch: bool,
    pub timeout_s: i64,
    pub max_attempts: i64,
    /// Register the built images for automatic rebuilds.
    pub track: bool,
    /// `host` when RUN may use the host's network.
    pub network: Option<&'a str>,
    /// `ADD <url>` allowed.
    pub remote_content: bool,
}

impl Db {
    /// Connects and brings the schema up to date. `sqlite://FILE?mode=rwc` or
    /// `postgres://...`.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            anyhow::bail!("--database {url}: only sqlite:// and postgres:// URLs are supported");
        };
        // SQLite has one writer at a time anyway; one connection keeps every transaction
        // short and free of SQLITE_BUSY upgrades, which matters more than read concurrency.
        let max = if dialect == Dialect::Sqlite { 1 } else { 10 };
        let pool = AnyPoolOptions::new().max_connections(max).connect(url).await.map_err(|e| anyhow::anyhow!("connecting to {}: {e}", redact(url)))?;
        if dialect == Dialect::Sqlite {
            sqlx::query("PRAGMA journal_mode=WAL").execute(&pool).await?;
            sqlx::query("PRAGMA foreign_keys=ON").execute(&pool).await?;
        }
        let migrator = match dialect {
            Dialect::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Dialect::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        migrator.run(&pool).await.map_err(|e| anyhow::anyhow!("migrating {}: {e}", redact(url)))?;
        let read = match dialect {
            Dialect::Postgres => pool.clone(),
            Dialect::Sqlite => {
                let ro = if url.contains('?') { url.replacen("mode=rwc", "mode=ro", 1) } else { format!("{url}?mode=ro") };
                let ro = if ro.contains("mode=ro") { ro } else { format!("{ro}&mode=ro") };
                AnyPoolOptions::new()
                    .max_connections(4)
                    .connect(&ro)
                    .await
                    .map_err(|e| anyhow::anyhow!("connecting to {} for reading: {e}", redact(url)))?
            }
        };
        Ok(Db { pool, read, dialect })
    }

    /// Records a state change of a build, and counts it in the state version, in the
    /// caller's transaction. Every change a listing shows goes through here.
    pub(crate) async fn event(tx: &mut sqlx::Transaction<'_, sqlx::Any>, build: i64, event: &str, actor: &str, detail: Option<&str>) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO build_events (build_id, at, event, actor, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(build)
            .bind(now_ms())
            .bind(event)
            .bind(actor)
            .bind(detail)
            .execute(&mut **tx)
            .await?;
        sqlx::query("UPDATE state_version SET version = version + 1 WHERE id = 1").execute(&mut **tx).await?;
        Ok(())
    }

    /// Records an event of a build outside any other change (what happened after it ended,
    /// such as its publishing to the mirror).
    pub async fn note(&self, build: i64, event: &str, actor: &str, detail: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        Self::event(&mut tx, build, event, actor, Some(detail)).await?;
        tx.commit().await
    }

    /// A number that changes whenever a build changes in a way a listing shows (state,
    /// worker, attempts, cancel flag, result): what cached listings are checked against.
    pub async fn state_version(&self) -> Result<i64, sqlx::Error> {
        sqlx::query("SELECT version FROM state_version WHERE id = 1").fetch_one(&self.read).await?.try_get(0)
    }

    async fn end_attempt(tx: &mut sqlx::Transaction<'_, sqlx::Any>, build: i64, number: i64, outcome: &str, reason: Option<&str>) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE attempts SET ended = $1, outcome = $2, reason = $3 WHERE build_id = $4 AND number = $5")
            .bind(now_ms())
            .bind(outcome)
            .bind(reason)
            .bind(build)
            .bind(number)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    // ---- tokens ----

    /// Stores a token's hash; the same secret seeded twice is one token.
    pub async fn add_token(&self, hash: &str, role: &str, name: &str) -> Result<i64, sqlx::Error> {
        if let Some(row) = sqlx::query("SELECT id FROM tokens WHERE hash = $1").bind(hash).fetch_optional(&self.pool).await? {
            // Seeding a revoked secret again (--admin-token at restart) brings it back.
            sqlx::query("UPDATE tokens SET role = $1, revoked = NULL WHERE hash = $2").bind(role).bind(hash).execute(&self.pool).await?;
            return row.try_get(0);
        }
        let row = sqlx::query("INSERT INTO tokens (name, role, hash, created) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(name)
            .bind(role)
            .bind(hash)
            .bind(now_ms())
            .fetch_one(&self.pool)
            .await?;
        row.try_get(0)
    }

    /// Removes every token of this name (the in-process worker's token of an earlier run).
    pub async fn remove_tokens_named(&self, name: &str) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query("DELETE FROM tokens WHERE name = $1").bind(name).execute(&self.pool).await?.rows_affected())
    }

    /// The name and role of the token with this hash.
    pub async fn token(&self, hash: &str) -> Result<Option<(String, String)>, sqlx::Error> {
        let row = sqlx::query("SELECT name, role FROM tokens WHERE hash = $1 AND revoked IS NULL").bind(hash).fetch_optional(&self.read).await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    // ---- builds ----

    pub async fn submit(&self, b: &NewBuild<'_>) -> Result<i64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        let row = sqlx::query(
            "INSERT INTO builds (state, trigger_kind, submitter, source_url, source_ref, source_commit, source_path, images, scratch, \
             created, queued_since, timeout_s, max_attempts, track, network, remote_content) \
             VALUES ('queued', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
        )
        .bind(b.trigger)
        .bind(b.submitter)
        .bind(&b.source.url)
        .bind(b.source.r#ref.as_deref())
        .bind(b.commit)
        .bind(b.source.path.as_deref())
        .bind(serde_json::to_string(b.images).unwrap_or_default())
        .bind(b.scratch as i64)
        .bind(now)
        .bind(now)
        .bind(b.timeout_s)
        .bind(b.max_attempts)
        .bind(b.track as i64)
        .bind(b.network)
        .bind(b.remote_content as i64)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get(0)?;
        for name in b.images {
            sqlx::query("INSERT INTO build_images (build_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING").bind(id).bind(name).execute(&mut *tx).await?;
        }
        let detail = format!("{} {} ({})", b.source.url, b.source.r#ref.as_deref().unwrap_or("HEAD"), b.commit);
        Db::event(&mut tx, id, "submitted", b.submitter, Some(&detail)).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn list(&self, image: Option<&str>, state: Option<&str>, limit: i64) -> Result<Vec<Build>, sqlx::Error> {
        // Filters are bound, never spliced; a NULL parameter disables its filter.
        let sql = format!(
            "SELECT {BUILD_COLS} FROM builds WHERE ($1 IS NULL OR state = $1) \
             AND ($2 IS NULL OR id IN (SELECT build_id FROM build_images WHERE name = $2)) ORDER BY id DESC LIMIT $3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(state).bind(image).bind(limit).fetch_all(&self.read).await?;
        rows.iter().map(build_from_row).collect()
    }

    pub async fn exists(&self, id: i64) -> Result<bool, sqlx::Error> {
        Ok(sqlx::query("SELECT id FROM builds WHERE id = $1").bind(id).fetch_optional(&self.read).await?.is_some())
    }

    /// (id, scratch, created, result) of every built build, newest first.
    pub async fn built_results(&self) -> Result<Vec<(i64, bool, String, BuildResult)>, sqlx::Error> {
        let rows = sqlx::query("SELECT id, scratch, created, result FROM builds WHERE state = 'built' ORDER BY id DESC").fetch_all(&self.read).await?;
        let mut out = Vec::new();
        for r in rows {
            let result: Option<String> = r.try_get(3)?;
            if let Some(result) = result.and_then(|s| serde_json::from_str(&s).ok()) {
                out.push((r.try_get(0)?, r.try_get::<i64, _>(1)? != 0, rfc3339(r.try_get(2)?), result));
            }
        }
        Ok(out)
    }

    /// The build with its attempts and events.
    pub async fn get(&self, id: i64) -> Result<Option<Build>, sqlx::Error> {
        let sql = format!("SELECT {BUILD_COLS} FROM builds WHERE id = $1");
        let Some(row) = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&self.read).await? else { return Ok(None) };
        let mut b = build_from_row(&row)?;
        let rows = sqlx::query("SELECT number, worker, started, ended, outcome, reason FROM attempts WHERE build_id = $1 ORDER BY number")
            .bind(id)
            .fetch_all(&self.read)
            .await?;
        for r in rows {
            b.attempt_log.push(Attempt {
                number: r.try_get(0)?,
                worker: r.try_get(1)?,
                started: rfc3339(r.try_get(2)?),
                ended: r.try_get::<Option<i64>, _>(3)?.map(rfc3339),
                outcome: r.try_get(4)?,
                reason: r.try_get(5)?,
            });
        }
        let rows = sqlx::query("SELECT at, event, actor, detail FROM build_events WHERE build_id = $1 ORDER BY id").bind(id).fetch_all(&self.read).await?;
        for r in rows {
            b.events.push(Event { at: rfc3339(r.try_get(0)?), event: r.try_get(1)?, actor: r.try_get(2)?, detail: r.try_get(3)? });
        }
        if b.state == "failed" {
            // The end of the log only: a failed build's reason is in its last lines.
            let size: i64 = sqlx::query("SELECT log_size FROM builds WHERE id = $1").bind(id).fetch_one(&self.read).await?.try_get(0)?;
            let (data, _, _) = self.read_log(id, (size - 16384).max(0) as u64, 16384).await?;
            let lines: Vec<&str> = data.lines().collect();
            b.log_tail = Some(lines[lines.len().saturating_sub(20)..].join("\n"));
        }
        Ok(Some(b))
    }

    /// Ends a queued build at once; flags a running one for its worker. `None`: no such
    /// build.
    pub async fn cancel(&self, id: i64, actor: &str) -> Result<Option<()>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        let queued = sqlx::query(
            "UPDATE builds SET state = 'canceled', finished = $1, queued_ms = queued_ms + ($1 - queued_since), queued_since = NULL, \
             reason = $2 WHERE id = $3 AND state = 'queued'",
        )
        .bind(now)
        .bind(format!("canceled by {actor} while queued"))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if queued.rows_affected() == 1 {
            Db::event(&mut tx, id, "canceled", actor, Some("while queued")).await?;
            Db::ended(&mut tx, id, "canceled", Some("canceled while queued")).await?;
        } else {
            let running = sqlx::query("UPDATE builds SET cancel_requested = 1 WHERE id = $1 AND state = 'running' AND cancel_requested = 0")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if running.rows_affected() == 1 {
                Db::event(&mut tx, id, "cancel-requested", actor, None).await?;
            } else if sqlx::query("SELECT id FROM builds WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?.is_none() {
                return Ok(None);
            }
        }
        tx.commit().await?;
        Ok(Some(()))
    }

    /// Hands the oldest queued build to `worker`: one statement that picks and claims, so
    /// two workers never get the same build (SQLite: the writer lock; PostgreSQL: the row
    /// lock, with other workers skipping locked rows instead of waiting on them).
    pub async fn lease(&self, worker: &str, lease_hash: &str, lease_ms: i64) -> Result<Option<i64>, sqlx::Error> {
        let lock = match self.dialect {
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let sql = format!(
            "UPDATE builds SET state = 'running', worker = $1, lease_hash = $2, lease_expires = $3, attempts = attempts + 1, \
             started = COALESCE(started, $4), run_started = $4, queued_ms = queued_ms + ($4 - queued_since), queued_since = NULL \
             WHERE id = (SELECT id FROM builds WHERE state = 'queued' AND (parent_build IS NULL OR parent_build IN (SELECT id FROM builds WHERE state = 'built')) \
             ORDER BY id LIMIT 1 {lock}) AND state = 'queued' \
             RETURNING id, attempts"
        );
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        let Some(row) = sqlx::query(AssertSqlSafe(sql)).bind(worker).bind(lease_hash).bind(now + lease_ms).bind(now).fetch_optional(&mut *tx).await? else {
            return Ok(None);
        };
        let (id, attempt): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        sqlx::query("INSERT INTO attempts (build_id, number, worker, started, outcome) VALUES ($1, $2, $3, $4, 'running')")
            .bind(id)
            .bind(attempt)
            .bind(worker)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        Db::event(&mut tx, id, "started", worker, Some(&format!("attempt {attempt}"))).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Extends the lease; says whether the worker must stop (cancel, or run time past the
    /// timeout — queue time never counts).
    pub async fn heartbeat(&self, id: i64, lease_hash: &str, lease_ms: i64) -> Result<(bool, Option<String>), LeaseError> {
        let now = now_ms();
        let row = sqlx::query(
            "UPDATE builds SET lease_expires = $1 WHERE id = $2 AND state = 'running' AND lease_hash = $3 RETURNING cancel_requested, run_started, timeout_s",
        )
        .bind(now + lease_ms)
        .bind(id)
        .bind(lease_hash)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(LeaseError::Lost(id))?;
        let (cancel, run_started, timeout_s): (i64, i64, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        if cancel != 0 {
            return Ok((true, Some("canceled".into())));
        }
        if now - run_started > timeout_s * 1000 {
            return Ok((true, Some(format!("timeout: ran longer than {timeout_s} s"))));
        }
        Ok((false, None))
    }

    /// Appends to the log of a build the caller holds; returns the new size.
    pub async fn append_log(&self, id: i64, lease_hash: &str, data: &[u8], max_size: i64) -> Result<Option<i64>, LeaseError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("UPDATE builds SET log_size = log_size + $1 WHERE id = $2 AND state = 'running' AND lease_hash = $3 AND log_size + $1 <= $4 RETURNING log_size")
            .bind(data.len() as i64)
            .bind(id)
            .bind(lease_hash)
            .bind(max_size)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            // Either the lease is gone or the log is full; tell them apart.
            let held = sqlx::query("SELECT id FROM builds WHERE id = $1 AND state = 'running' AND lease_hash = $2").bind(id).bind(lease_hash).fetch_optional(&mut *tx).await?;
            return if held.is_some() { Ok(None) } else { Err(LeaseError::Lost(id)) };
        };
        let size: i64 = row.try_get(0)?;
        sqlx::query("INSERT INTO log_chunks (build_id, start_at, data) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(size - data.len() as i64)
            .bind(data.to_vec())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(size))
    }

    /// Up to about `max` bytes of the log from `offset`: (data, next offset, complete:
    /// the build has ended and this read reached the end of its log).
    pub async fn read_log(&self, id: i64, offset: u64, max: u64) -> Result<(String, u64, bool), sqlx::Error> {
        let offset = offset.min(i64::MAX as u64 / 2) as i64;
        // The state first: chunks are only appended while a build runs, so a log read
        // after its end was seen holds every chunk (in the other order a follower could
        // see `ended` with the last chunk missing).
        let state: Option<String> = sqlx::query("SELECT state FROM builds WHERE id = $1").bind(id).fetch_optional(&self.read).await?.map(|r| r.try_get(0)).transpose()?;
        let ended = matches!(state.as_deref(), Some("built" | "failed" | "canceled"));
        // Chunks are at most a request body (4 MiB), so this reads at most `max` + 4 MiB.
        let rows = sqlx::query("SELECT start_at, data FROM log_chunks WHERE build_id = $1 AND start_at + LENGTH(data) > $2 AND start_at < $3 ORDER BY start_at")
            .bind(id)
            .bind(offset)
            .bind(offset.saturating_add(max.min(i64::MAX as u64 / 2) as i64))
            .fetch_all(&self.read)
            .await?;
        let mut out = Vec::new();
        let mut next = offset;
        let mut more = false;
        for r in rows {
            let start: i64 = r.try_get(0)?;
            let data: Vec<u8> = r.try_get(1)?;
            let skip = (offset - start).max(0) as usize;
            out.extend_from_slice(&data[skip.min(data.len())..]);
            next = start + data.len() as i64;
            if out.len() as u64 >= max {
                more = true;
                break;
            }
        }
        if !more && ended {
            let size: i64 = sqlx::query("SELECT log_size FROM builds WHERE id = $1").bind(id).fetch_one(&self.read).await?.try_get(0)?;
            more = next < size;
        }
        Ok((String::from_utf8_lossy(&out).into_owned(), next as u64, ended && !more))
    }

    /// Records the outcome of the caller's attempt. `built` only through a valid lease on
    /// a build nobody canceled: at most one worker ever completes a build.
    pub async fn finish(&self, id: i64, lease_hash: &str, outcome: Outcome<'_>) -> Result<(), LeaseError> {
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        let row = sqlx::query("SELECT worker, attempts, cancel_requested FROM builds WHERE id = $1 AND state = 'running' AND lease_hash = $2")
            .bind(id)
            .bind(lease_hash)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(LeaseError::Lost(id))?;
        let (worker, attempt, cancel): (String, i64, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let (state, reason, result) = match &outcome {
            Outcome::Built(_) if cancel != 0 => ("canceled", Some("canceled (the build had finished; nothing recorded as built)".to_string()), None),
            Outcome::Built(r) => ("built", None, Some(serde_json::to_string(r).unwrap_or_default())),
            Outcome::Failed { canceled: true, .. } if cancel != 0 => ("canceled", Some("canceled".to_string()), None),
            Outcome::Failed { reason, .. } => ("failed", Some(reason.to_string()), None),
        };
        sqlx::query(
            "UPDATE builds SET state = $1, reason = $2, result = $3, finished = $4, run_ms = $4 - run_started, lease_hash = NULL, lease_expires = NULL \
             WHERE id = $5",
        )
        .bind(state)
        .bind(reason.as_deref())
        .bind(result.as_deref())
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        Db::end_attempt(&mut tx, id, attempt, state, reason.as_deref()).await?;
        if let Outcome::Built(r) = &outcome {
            for img in &r.images {
                sqlx::query("INSERT INTO build_images (build_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING").bind(id).bind(&img.name).execute(&mut *tx).await?;
            }
        }
        Db::event(&mut tx, id, state, &worker, reason.as_deref()).await?;
        if state == "built" {
            Db::register_built(&mut tx, id).await?;
        }
        Db::ended(&mut tx, id, state, reason.as_deref()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Frees the builds of workers that stopped checking in (back to the queue while
    /// attempts remain, each expiry recorded on its attempt) and fails builds that ran
    /// past their timeout by more than `grace_ms` (a worker that ignores its heartbeat's
    /// stop). Returns how many builds changed.
    pub async fn reap(&self, grace_ms: i64) -> Result<usize, sqlx::Error> {
        let now = now_ms();
        let rows = sqlx::query("SELECT id FROM builds WHERE state = 'running' AND (lease_expires < $1 OR run_started + timeout_s * 1000 + $2 < $1)")
            .bind(now)
            .bind(grace_ms)
            .fetch_all(&self.pool)
            .await?;
        let mut changed = 0;
        for r in rows {
            let id: i64 = r.try_get(0)?;
            let mut tx = self.pool.begin().await?;
            let Some(row) = sqlx::query(
                "SELECT worker, attempts, max_attempts, cancel_requested, lease_expires < $1, timeout_s FROM builds \
                 WHERE id = $2 AND state = 'running' AND (lease_expires < $1 OR run_started + timeout_s * 1000 + $3 < $1)",
            )
            .bind(now)
            .bind(id)
            .bind(grace_ms)
            .fetch_optional(&mut *tx)
            .await?
            else {
                continue;
            };
            let worker: String = row.try_get(0)?;
            let (attempt, max, cancel): (i64, i64, i64) = (row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
            let expired = bool_col(&row, 4)?;
            let timeout_s: i64 = row.try_get(5)?;
            let why = if expired { format!("lease expired: worker {worker} stopped checking in") } else { format!("timeout: ran longer than {timeout_s} s") };
            let (state, reason) = if cancel != 0 {
                ("canceled", format!("canceled; {why}"))
            } else if !expired || attempt >= max {
                ("failed", if expired { format!("{why} (attempt {attempt} of {max})") } else { why.clone() })
            } else {
                ("queued", why.clone())
            };
            let (queued_since, finished) = if state == "queued" { (Some(now), None) } else { (None, Some(now)) };
            sqlx::query(
                "UPDATE builds SET state = $1, reason = $2, queued_since = $3, finished = $4, run_ms = $5 - run_started, lease_hash = NULL, lease_expires = NULL WHERE id = $6",
            )
            .bind(state)
            .bind(if state == "queued" { None } else { Some(reason.as_str()) })
            .bind(queued_since)
            .bind(finished)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            Db::end_attempt(&mut tx, id, attempt, if expired { "expired" } else { "timeout" }, Some(&why)).await?;
            let event = if state == "queued" { "requeued" } else { state };
            Db::event(&mut tx, id, event, "server", Some(&reason)).await?;
            if state != "queued" {
                Db::ended(&mut tx, id, state, Some(&reason)).await?;
            }
            tx.commit().await?;
            changed += 1;
        }
        Ok(changed)
    }
}

pub enum Outcome<'a> {
    Built(&'a BuildResult),
    Failed { reason: &'a str, canceled: bool },
}

/// A comparison's value: an integer on SQLite, a boolean on PostgreSQL.
fn bool_col(row: &AnyRow, i: usize) -> Result<bool, sqlx::Error> {
    row.try_get::<bool, _>(i).or_else(|_| row.try_get::<i64, _>(i).map(|v| v != 0))
}

fn build_from_row(r: &AnyRow) -> Result<Build, sqlx::Error> {
    let images: Vec<String> = serde_json::from_str(&r.try_get::<String, _>("images")?).unwrap_or_default();
    let result: Option<String> = r.try_get("result")?;
    let result: Option<BuildResult> = result.and_then(|s| serde_json::from_str(&s).ok());
    let mut names = images.clone();
    if let Some(res) = &result {
        for i in &res.images {
            if !names.contains(&i.name) {
                names.push(i.name.clone());
            }
        }
    }
    let state: String = r.try_get("state")?;
    let now = now_ms();
    let queued_since: Option<i64> = r.try_get("queued_since")?;
    let queued_ms: i64 = r.try_get::<i64, _>("queued_ms")? + queued_since.map_or(0, |q| now - q);
    let run_started: Option<i64> = r.try_get("run_started")?;
    let run_ms: i64 = if state == "running" { run_started.map_or(0, |s| now - s) } else { r.try_get("run_ms")? };
    Ok(Build {
        id: r.try_get("id")?,
        image: names.join(","),
        images: names,
        state,
        trigger: r.try_get("trigger_kind")?,
        submitter: r.try_get("submitter")?,
        source: Source { url: r.try_get("source_url")?, r#ref: r.try_get("source_ref")?, commit: Some(r.try_get("source_commit")?), path: r.try_get("source_path")? },
        scratch: r.try_get::<i64, _>("scratch")? != 0,
        worker: r.try_get("worker")?,
        created: rfc3339(r.try_get("created")?),
        started: r.try_get::<Option<i64>, _>("started")?.map(rfc3339),
        finished: r.try_get::<Option<i64>, _>("finished")?.map(rfc3339),
        queued_seconds: queued_ms as f64 / 1000.0,
        run_seconds: run_ms as f64 / 1000.0,
        timeout_seconds: r.try_get("timeout_s")?,
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        cancel_requested: r.try_get::<i64, _>("cancel_requested")? != 0,
        reason: r.try_get("reason")?,
        result,
        attempt_log: Vec::new(),
        events: Vec::new(),
        log_tail: None,
        track: r.try_get::<i64, _>("track")? != 0,
        rebuild: r.try_get::<Option<String>, _>("rebuild")?.and_then(|s| serde_json::from_str(&s).ok()),
        network: r.try_get("network")?,
        remote_content: r.try_get::<i64, _>("remote_content")? != 0,
    })
}

/// Unix milliseconds as RFC 3339 UTC (`2026-12-06T04:05:06.789Z`).
pub fn rfc3339(ms: i64) -> String {
    let secs = strata_oci::config::rfc3339(ms.div_euclid(1000).max(0) as u64);
    format!("{}.{:03}Z", secs.trim_end_matches('Z'), ms.rem_euclid(1000))
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].find(':') {
            Some(c) => format!("{}:***{}", &url[..s + 3 + c], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}
