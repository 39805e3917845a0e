//! The database side of automatic rebuilds: registering what a build produced (in the
//! transaction that records it `built`), settling the builds that wait on one that ended
//! otherwise, the floating tags, the watched repositories and the rebuild events.

use crate::db::{now_ms, rfc3339, Db};
use sqlx::{AssertSqlSafe, Row};
use std::collections::{BTreeMap, BTreeSet};
use strata_client::{BuildResult, RebuildEvent, RebuildOrder, RebuildPlan, Source, TagPointer, TrackedImage, WatchedRepo};

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// A registered image with what its last build recorded.
pub struct RegisteredRow {
    pub name: String,
    pub kind: String,
    pub source: Source,
    pub build_id: i64,
    pub base_name: Option<String>,
    pub content: Option<String>,
    pub input_digest: Option<String>,
    pub packages: Vec<String>,
    /// (base URL, the repomd.xml digest its last build resolved against).
    pub repos: Vec<(String, Option<String>)>,
    /// The token name that submitted the image.
    pub owner: Option<String>,
}

/// A watched repository's row.
pub struct RepoRow {
    pub url: String,
    pub repomd: Option<String>,
    pub expire_s: Option<i64>,
    pub checked: Option<i64>,
}

/// Tags a build pushes that are its own (`build-N`, `scratch-N`), not floating.
fn unique_tag(tag: &str) -> bool {
    tag.starts_with("build-") || tag.starts_with("scratch-")
}

impl Db {
    /// What a build that just became `built` changes beyond itself: the floating tags it
    /// moved, and — unless it was scratch or submitted with `--no-track` — the registration
    /// of its images (source, content, base, repositories to watch).
    pub(crate) async fn register_built(tx: &mut Tx<'_>, id: i64) -> Result<(), sqlx::Error> {
        let row = sqlx::query("SELECT scratch, track, source_url, source_ref, source_path, source_commit, result, trigger_kind, submitter FROM builds WHERE id = $1")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
        let scratch = row.try_get::<i64, _>(0)? != 0;
        let track = row.try_get::<i64, _>(1)? != 0;
        let Some(result) = row.try_get::<Option<String>, _>(6)?.and_then(|s| serde_json::from_str::<BuildResult>(&s).ok()) else { return Ok(()) };
        if scratch {
            return Ok(());
        }
        let now = now_ms();
        // A rebuild keeps the image's owner: the person who submitted it, not the refresh.
        let owner: Option<String> = if row.try_get::<String, _>(7)? == "rebuild" { None } else { Some(row.try_get(8)?) };
        for img in &result.images {
            for tag in img.tags.iter().filter(|t| !unique_tag(t)) {
                sqlx::query(
                    "INSERT INTO image_tags (image, tag, build_id, digest, moved) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (image, tag) DO UPDATE SET build_id = excluded.build_id, digest = excluded.digest, moved = excluded.moved",
                )
                .bind(&img.name)
                .bind(tag)
                .bind(id)
                .bind(&img.manifest_digest)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
            if !track {
                continue;
            }
            sqlx::query(
                "INSERT INTO tracked_images (name, kind, source_url, source_ref, source_path, source_commit, build_id, base_name, content, input_digest, updated, owner) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, source_url = excluded.source_url, \
                 source_ref = excluded.source_ref, source_path = excluded.source_path, source_commit = excluded.source_commit, build_id = excluded.build_id, \
                 base_name = excluded.base_name, content = excluded.content, input_digest = excluded.input_digest, updated = excluded.updated, \
                 owner = COALESCE(excluded.owner, tracked_images.owner)",
            )
            .bind(&img.name)
            .bind(&result.kind)
            .bind(row.try_get::<String, _>(2)?)
            .bind(row.try_get::<Option<String>, _>(3)?)
            .bind(row.try_get::<Option<String>, _>(4)?)
            .bind(row.try_get::<String, _>(5)?)
            .bind(id)
            .bind(img.base.as_ref().map(|b| b.name.clone()))
            .bind(img.content.as_deref())
            .bind(&result.input_digest)
            .bind(now)
            .bind(owner.as_deref())
            .execute(&mut **tx)
            .await?;
            sqlx::query("DELETE FROM image_repos WHERE image = $1").bind(&img.name).execute(&mut **tx).await?;
            for repo in &img.repos {
                let seen = Some(repo.repomd.as_str()).filter(|r| !r.is_empty());
                sqlx::query("INSERT INTO image_repos (image, url, repomd) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                    .bind(&img.name)
                    .bind(&repo.url)
                    .bind(seen)
                    .execute(&mut **tx)
                    .await?;
                // A repository seen for the first time starts from what the build saw
                // (unknown for one no package came from: its first check sets it).
                let repomd = Some(repo.repomd.as_str()).filter(|r| !r.is_empty());
                sqlx::query("INSERT INTO watched_repos (url, repomd, expire_s) VALUES ($1, $2, $3) ON CONFLICT (url) DO UPDATE SET expire_s = excluded.expire_s")
                    .bind(&repo.url)
                    .bind(repomd)
                    .bind(repo.metadata_expire_seconds)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }

    /// A build ended in `state`: builds waiting on it (its rebuild children, and theirs)
    /// fail unless it was built — never built on the old base — and its rebuild event is
    /// closed once none of its builds is left to run.
    pub(crate) async fn ended(tx: &mut Tx<'_>, id: i64, state: &str, reason: Option<&str>) -> Result<(), sqlx::Error> {
        let mut ended = vec![id];
        if state != "built" {
            let mut frontier = vec![(id, format!("parent build {id} {state}{}", reason.map(|r| format!(": {r}")).unwrap_or_default()))];
            while let Some((parent, why)) = frontier.pop() {
                let children = sqlx::query("SELECT id FROM builds WHERE parent_build = $1 AND state = 'queued'").bind(parent).fetch_all(&mut **tx).await?;
                for c in children {
                    let child: i64 = c.try_get(0)?;
                    let now = now_ms();
                    sqlx::query(
                        "UPDATE builds SET state = 'failed', reason = $1, finished = $2, queued_ms = queued_ms + ($2 - queued_since), queued_since = NULL WHERE id = $3",
                    )
                    .bind(&why)
                    .bind(now)
                    .bind(child)
                    .execute(&mut **tx)
                    .await?;
                    Db::event(tx, child, "failed", "server", Some(&why)).await?;
                    ended.push(child);
                    frontier.push((child, format!("parent build {child} failed ({why})")));
                }
            }
        }
        let mut events = BTreeSet::new();
        for b in ended {
            if let Some(e) = sqlx::query("SELECT rebuild_event FROM builds WHERE id = $1").bind(b).fetch_one(&mut **tx).await?.try_get::<Option<i64>, _>(0)? {
                events.insert(e);
            }
        }
        for e in events {
            let open: i64 = sqlx::query("SELECT COUNT(*) FROM builds WHERE rebuild_event = $1 AND state IN ('queued', 'running')").bind(e).fetch_one(&mut **tx).await?.try_get(0)?;
            if open > 0 {
                continue;
            }
            let failed: i64 = sqlx::query("SELECT COUNT(*) FROM builds WHERE rebuild_event = $1 AND state <> 'built'").bind(e).fetch_one(&mut **tx).await?.try_get(0)?;
            let last: Option<i64> = sqlx::query("SELECT MAX(finished) FROM builds WHERE rebuild_event = $1").bind(e).fetch_one(&mut **tx).await?.try_get(0)?;
            sqlx::query("UPDATE rebuild_events SET state = $1, finished = $2 WHERE id = $3 AND state = 'running'")
                .bind(if failed == 0 { "done" } else { "failed" })
                .bind(last.unwrap_or_else(now_ms))
                .bind(e)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Every registered image, with the packages and repositories of its last build.
    pub async fn registered(&self) -> Result<Vec<RegisteredRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT t.name, t.kind, t.source_url, t.source_ref, t.source_path, t.source_commit, t.build_id, t.base_name, t.content, t.input_digest, b.result, t.owner \
             FROM tracked_images t JOIN builds b ON b.id = t.build_id ORDER BY t.name",
        )
        .fetch_all(&self.read)
        .await?;
        let mut repos: BTreeMap<String, Vec<(String, Option<String>)>> = BTreeMap::new();
        for r in sqlx::query("SELECT image, url, repomd FROM image_repos ORDER BY image, url").fetch_all(&self.read).await? {
            repos.entry(r.try_get(0)?).or_default().push((r.try_get(1)?, r.try_get(2)?));
        }
        let mut out = Vec::new();
        for r in rows {
            let name: String = r.try_get(0)?;
            let result: Option<BuildResult> = r.try_get::<Option<String>, _>(10)?.and_then(|s| serde_json::from_str(&s).ok());
            let packages = result.and_then(|res| res.images.into_iter().find(|i| i.name == name)).map(|i| i.packages).unwrap_or_default();
            out.push(RegisteredRow {
                kind: r.try_get(1)?,
                source: Source { url: r.try_get(2)?, r#ref: r.try_get(3)?, path: r.try_get(4)?, commit: Some(r.try_get(5)?) },
                build_id: r.try_get(6)?,
                base_name: r.try_get(7)?,
                content: r.try_get(8)?,
                input_digest: r.try_get(9)?,
                packages,
                repos: repos.remove(&name).unwrap_or_default(),
                owner: r.try_get(11)?,
                name,
            });
        }
        Ok(out)
    }

    pub async fn watched(&self) -> Result<Vec<RepoRow>, sqlx::Error> {
        let rows = sqlx::query("SELECT url, repomd, expire_s, checked FROM watched_repos ORDER BY url").fetch_all(&self.read).await?;
        rows.iter().map(|r| Ok(RepoRow { url: r.try_get(0)?, repomd: r.try_get(1)?, expire_s: r.try_get(2)?, checked: r.try_get(3)? })).collect()
    }

    /// Records a check of these repositories that found nothing to act on.
    pub async fn checked(&self, urls: &[String]) -> Result<(), sqlx::Error> {
        let now = now_ms();
        for u in urls {
            sqlx::query("UPDATE watched_repos SET checked = $1 WHERE url = $2").bind(now).bind(u).execute(&self.pool).await?;
        }
        Ok(())
    }

    /// The role of a valid token with this name (the most powerful, if several).
    pub async fn role_of_name(&self, name: &str) -> Result<Option<String>, sqlx::Error> {
        let rows = sqlx::query("SELECT role FROM tokens WHERE name = $1 AND revoked IS NULL").bind(name).fetch_all(&self.read).await?;
        let roles: Vec<String> = rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
        Ok(strata_policy::ROLES.iter().find(|r| roles.iter().any(|x| x == *r)).map(|r| r.to_string()))
    }

    /// Input hashes of rebuilds queued, running or built: never planned again.
    pub async fn acted_on(&self) -> Result<BTreeSet<String>, sqlx::Error> {
        let rows = sqlx::query("SELECT input_hash FROM builds WHERE input_hash IS NOT NULL AND state IN ('queued', 'running', 'built')").fetch_all(&self.read).await?;
        rows.iter().map(|r| r.try_get(0)).collect()
    }

    /// Executes a plan in one transaction: a rebuild event, one queued build per planned
    /// image (each child waiting on its parent's build), and the changed repositories'
    /// new state recorded as acted on. Returns the event id, or `None` when another
    /// server acted on the same inputs first.
    #[allow(clippy::too_many_arguments)]
    pub async fn execute_plan(
        &self,
        plan: &RebuildPlan,
        locks: &BTreeMap<String, String>,
        base_from: &BTreeMap<String, String>,
        remote_content: &BTreeMap<String, bool>,
        trigger: &str,
        actor: &str,
        push_tag: &str,
        timeout_s: i64,
        max_attempts: i64,
    ) -> Result<Option<i64>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        // Taken first: on PostgreSQL this row lock orders concurrent refreshes, so the
        // check below sees what the other one executed.
        sqlx::query("UPDATE state_version SET version = version + 1 WHERE id = 1").execute(&mut *tx).await?;
        for r in &plan.repos {
            sqlx::query("UPDATE watched_repos SET repomd = $1, checked = $2, changed = $2 WHERE url = $3").bind(&r.new).bind(now).bind(&r.url).execute(&mut *tx).await?;
        }
        if plan.rebuilds.is_empty() {
            tx.commit().await?;
            return Ok(None);
        }
        for p in &plan.rebuilds {
            let taken = sqlx::query("SELECT id FROM builds WHERE input_hash = $1 AND state IN ('queued', 'running', 'built')").bind(&p.input_hash).fetch_optional(&mut *tx).await?;
            if taken.is_some() {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        let event: i64 = sqlx::query("INSERT INTO rebuild_events (trigger_kind, actor, noticed, state, plan) VALUES ($1, $2, $3, 'running', $4) RETURNING id")
            .bind(trigger)
            .bind(actor)
            .bind(now)
            .bind(serde_json::to_string(plan).unwrap_or_default())
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let mut ids: BTreeMap<&str, i64> = BTreeMap::new();
        for p in &plan.rebuilds {
            let parent_build = p.parent.as_deref().and_then(|n| ids.get(n).copied());
            let order = RebuildOrder {
                event,
                parent_build,
                changes: p.changes.clone(),
                push_tag: push_tag.to_string(),
                lock: locks.get(&p.image).cloned(),
                base_from: base_from.get(&p.image).cloned(),
                base_override: None,
                input_hash: p.input_hash.clone(),
            };
            let images = vec![p.image.clone()];
            let id: i64 = sqlx::query(
                "INSERT INTO builds (state, trigger_kind, submitter, source_url, source_ref, source_commit, source_path, images, scratch, created, queued_since, \
                 timeout_s, max_attempts, track, parent_build, rebuild_event, rebuild, input_hash, remote_content) \
                 VALUES ('queued', 'rebuild', $1, $2, $3, $4, $5, $6, 0, $7, $7, $8, $9, 1, $10, $11, $12, $13, $14) RETURNING id",
            )
            .bind(actor)
            .bind(&p.source.url)
            .bind(p.source.r#ref.as_deref())
            .bind(p.source.commit.as_deref().unwrap_or_default())
            .bind(p.source.path.as_deref())
            .bind(serde_json::to_string(&images).unwrap_or_default())
            .bind(now)
            .bind(timeout_s)
            .bind(max_attempts)
            .bind(parent_build)
            .bind(event)
            .bind(serde_json::to_string(&order).unwrap_or_default())
            .bind(&p.input_hash)
            .bind(remote_content.get(&p.image).copied().unwrap_or(true) as i64)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            sqlx::query("INSERT INTO build_images (build_id, name) VALUES ($1, $2)").bind(id).bind(&p.image).execute(&mut *tx).await?;
            let detail = format!("rebuild event {event}: {}", p.reason);
            Db::event(&mut tx, id, "submitted", actor, Some(&detail)).await?;
            ids.insert(&p.image, id);
        }
        tx.commit().await?;
        Ok(Some(event))
    }

    /// Fills in a leased rebuild's base: its parent's rebuilt image by digest.
    pub async fn set_rebuild(&self, id: i64, order: &RebuildOrder) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE builds SET rebuild = $1 WHERE id = $2").bind(serde_json::to_string(order).unwrap_or_default()).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Rebuild events, newest first (at most `limit`).
    pub async fn rebuild_events(&self, limit: i64) -> Result<Vec<RebuildEvent>, sqlx::Error> {
        let rows = sqlx::query(AssertSqlSafe(format!("SELECT id, trigger_kind, actor, noticed, finished, state, plan FROM rebuild_events ORDER BY id DESC LIMIT {}", limit.clamp(1, 1000))))
            .fetch_all(&self.read)
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let id: i64 = r.try_get(0)?;
            let noticed: i64 = r.try_get(3)?;
            let finished: Option<i64> = r.try_get(4)?;
            let builds = sqlx::query("SELECT id FROM builds WHERE rebuild_event = $1 ORDER BY id").bind(id).fetch_all(&self.read).await?;
            out.push(RebuildEvent {
                id,
                trigger: r.try_get(1)?,
                actor: r.try_get(2)?,
                noticed: rfc3339(noticed),
                finished: finished.map(rfc3339),
                latency_seconds: finished.map(|f| (f - noticed) as f64 / 1000.0),
                state: r.try_get(5)?,
                plan: serde_json::from_str(&r.try_get::<String, _>(6)?).unwrap_or_default(),
                builds: builds.iter().map(|b| b.try_get(0)).collect::<Result<_, _>>()?,
            });
        }
        Ok(out)
    }

    /// Floating tags by image.
    pub async fn tags(&self) -> Result<BTreeMap<String, Vec<TagPointer>>, sqlx::Error> {
        let mut out: BTreeMap<String, Vec<TagPointer>> = BTreeMap::new();
        for r in sqlx::query("SELECT image, tag, build_id, digest FROM image_tags ORDER BY image, tag").fetch_all(&self.read).await? {
            out.entry(r.try_get(0)?).or_default().push(TagPointer { tag: r.try_get(1)?, build_id: r.try_get(2)?, digest: r.try_get(3)? });
        }
        Ok(out)
    }

    /// Moves a floating tag to a build (promotion), recorded on that build.
    pub async fn move_tag(&self, image: &str, tag: &str, build_id: i64, digest: &str, actor: &str, detail: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO image_tags (image, tag, build_id, digest, moved) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (image, tag) DO UPDATE SET build_id = excluded.build_id, digest = excluded.digest, moved = excluded.moved",
        )
        .bind(image)
        .bind(tag)
        .bind(build_id)
        .bind(digest)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        Db::event(&mut tx, build_id, "promoted", actor, Some(detail)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The registered images as the API shows them (`parent` from each base's name).
    pub async fn tracked(&self, parent_of: impl Fn(&str) -> Option<String>) -> Result<Vec<TrackedImage>, sqlx::Error> {
        let mut tags = self.tags().await?;
        Ok(self
            .registered()
            .await?
            .into_iter()
            .map(|r| TrackedImage {
                parent: r.base_name.as_deref().and_then(&parent_of),
                tags: tags.remove(&r.name).unwrap_or_default(),
                name: r.name,
                kind: r.kind,
                source: r.source,
                build_id: r.build_id,
            })
            .collect())
    }

    /// Watched repositories with the registered images composed from them.
    pub async fn watched_repos(&self, interval_s: i64) -> Result<Vec<WatchedRepo>, sqlx::Error> {
        let mut images: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in sqlx::query("SELECT url, image FROM image_repos ORDER BY url, image").fetch_all(&self.read).await? {
            images.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
        }
        let rows = sqlx::query("SELECT url, repomd, expire_s, checked, changed FROM watched_repos ORDER BY url").fetch_all(&self.read).await?;
        let mut out = Vec::new();
        for r in rows {
            let url: String = r.try_get(0)?;
            let expire: Option<i64> = r.try_get(2)?;
            out.push(WatchedRepo {
                images: images.remove(&url).unwrap_or_default(),
                repomd: r.try_get(1)?,
                checked: r.try_get::<Option<i64>, _>(3)?.map(rfc3339),
                changed: r.try_get::<Option<i64>, _>(4)?.map(rfc3339),
                interval_seconds: crate::rebuild::interval_of(expire, interval_s),
                url,
            });
        }
        Ok(out)
    }
}
