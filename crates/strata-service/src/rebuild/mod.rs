//! Automatic rebuilds in the service: checking the watched repositories, gathering what
//! the planner (`strata-rebuild`) needs — the registered images, each affected spec
//! checked out at its commit (or its ref's new one) and resolved again — and executing
//! the plan as queued builds, children waiting on their parents. The same [`prepare`]
//! serves `GET /api/rebuild-plan` (shown, not executed) and a refresh (executed), so the
//! two never disagree.

pub mod api;
pub mod store;

use crate::AppState;
use std::collections::BTreeMap;
use strata_client::{RebuildPlan, Refreshed, RepoChange, Source};
use strata_rebuild::{Kind, Registered};

/// How often a repository is checked: its metadata_expire when shorter than the server's
/// interval; a repository that never expires, or a server interval of 0, only on refresh.
pub fn interval_of(expire_s: Option<i64>, interval_s: i64) -> i64 {
    match expire_s {
        _ if interval_s <= 0 => 0,
        Some(e) if e < 0 => 0,
        Some(e) => e.clamp(1, interval_s),
        None => interval_s,
    }
}

/// A plan with what executing it needs besides.
pub struct Prepared {
    pub plan: RebuildPlan,
    /// Complete lock (JSON) per planned composed image.
    pub locks: BTreeMap<String, String>,
    /// The FROM text per planned Dockerfile image.
    pub base_from: BTreeMap<String, String>,
    /// Whether `ADD <url>` is allowed, per planned image, as the policy grants it.
    pub remote_content: BTreeMap<String, bool>,
    /// Repositories checked.
    pub checked: Vec<String>,
}

/// The registered image a Dockerfile's base names, when it is one of the service's:
/// `REGISTRY[/PREFIX]/NAME[:TAG|@DIGEST]` → `NAME`.
pub fn parent_of(registry: Option<&str>, base_name: &str) -> Option<String> {
    let rest = base_name.strip_prefix(registry?)?.strip_prefix('/')?;
    let rest = rest.split('@').next().unwrap_or(rest);
    // A tag is after the last ':' that follows the last '/'.
    let name = match rest.rfind(':') {
        Some(c) if !rest[c..].contains('/') => &rest[..c],
        _ => rest,
    };
    crate::valid_image_name(name).then(|| name.to_string())
}

/// Checks the watched repositories (`only_due`: those whose interval has passed) and, if
/// any changed, plans against their new state.
pub async fn prepare(st: &AppState, only_due: bool) -> Result<Prepared, String> {
    let now = crate::db::now_ms();
    let interval = st.config.repo_interval_s;
    let repos: Vec<_> = st
        .db
        .watched()
        .await
        .map_err(|e| format!("database: {e}"))?
        .into_iter()
        .filter(|r| !only_due || { let every = interval_of(r.expire_s, interval); every > 0 && r.checked.is_none_or(|c| c + every * 1000 <= now) })
        .collect();
    let checked: Vec<String> = repos.iter().map(|r| r.url.clone()).collect();
    let fetched = {
        let urls = checked.clone();
        tokio::task::spawn_blocking(move || {
            let fetcher = strata_repo::Fetcher::new();
            urls.iter().map(|u| strata_rebuild::repomd_digest(&fetcher, u)).collect::<Vec<_>>()
        })
        .await
        .map_err(|e| format!("checking repositories: {e}"))?
    };
    let mut changes = Vec::new();
    for (repo, now) in repos.iter().zip(fetched) {
        let now = now.map_err(|e| format!("checking repository {}: {e}", repo.url))?;
        if repo.repomd.as_deref() != Some(now.as_str()) {
            changes.push(RepoChange { url: repo.url.clone(), old: repo.repomd.clone(), new: now });
        }
    }
    let mut prepared = Prepared { plan: RebuildPlan::default(), locks: BTreeMap::new(), base_from: BTreeMap::new(), remote_content: BTreeMap::new(), checked };
    let rows = st.db.registered().await.map_err(|e| format!("database: {e}"))?;
    // A repository's state as the service knows it after this check: what each image is
    // compared with.
    let mut known: BTreeMap<&str, Option<&str>> = repos.iter().map(|r| (r.url.as_str(), r.repomd.as_deref())).collect();
    for c in &changes {
        known.insert(c.url.as_str(), Some(c.new.as_str()));
    }
    // Affected: fed by a repository that changed now, or built against another state of
    // one than the service last acted on (an image first built from stale metadata, or
    // registered after the change was acted on) — so no image stays behind unnoticed.
    let affected = |r: &&store::RegisteredRow| {
        r.kind == "spec" && r.repos.iter().any(|(url, seen)| known.get(url.as_str()).is_some_and(|now| now.is_some() && *now != seen.as_deref()))
    };
    if changes.is_empty() && !rows.iter().any(|r| affected(&r)) {
        return Ok(prepared);
    }
    // Each affected spec, once: (url, ref, path, commit) → its images.
    type SpecKey = (String, Option<String>, Option<String>, String);
    let mut specs: BTreeMap<SpecKey, Vec<String>> = BTreeMap::new();
    for r in rows.iter().filter(affected) {
        let key = (r.source.url.clone(), r.source.r#ref.clone(), r.source.path.clone(), r.source.commit.clone().unwrap_or_default());
        specs.entry(key).or_default().push(r.name.clone());
    }
    let mut fresh = BTreeMap::new();
    let work = tempfile::Builder::new().prefix("plan-").tempdir_in(&st.config.data_dir).map_err(|e| format!("{}: {e}", st.config.data_dir.display()))?;
    for (i, ((url, r#ref, path, commit), images)) in specs.into_iter().enumerate() {
        // The ref's commit now: a moved ref is built at its new commit, recorded so.
        let now_commit = crate::git::resolve(&url, r#ref.as_deref(), &st.config.data_dir.join("git")).await?;
        let moved_from = (now_commit != commit).then(|| commit.clone());
        let dir = work.path().join(i.to_string());
        crate::git::export(&url, &now_commit, path.as_deref(), &st.config.data_dir.join("git"), &dir).await?;
        let spec_path = path.as_deref().map_or(dir.clone(), |p| dir.join(p)).join("strata.json");
        if !std::fs::symlink_metadata(&spec_path).is_ok_and(|m| m.file_type().is_file()) {
            return Err(format!("{url} at {now_commit}: {} is not a regular file", path.as_deref().map_or("strata.json".to_string(), |p| format!("{p}/strata.json"))));
        }
        let spec_bytes = std::fs::read(&spec_path).map_err(|e| format!("{url} at {now_commit}: {}: {e}", spec_path.display()))?;
        let spec_digest = crate::db::sha256_prefixed(&spec_bytes);
        let settings = strata_pipeline::RepoSettings { cache_dir: Some(st.config.data_dir.join("cache")), ..Default::default() };
        let lock = tokio::task::spawn_blocking(move || strata_rebuild::resolve_spec_dir(&spec_path, &settings))
            .await
            .map_err(|e| format!("resolving: {e}"))?
            .map_err(|e| format!("resolving {url} at {now_commit}: {e}"))?;
        let source = Source { url: url.clone(), r#ref, commit: Some(now_commit.clone()), path };
        let text = lock.to_json();
        for (name, f) in strata_rebuild::fresh_images(&lock, &source, moved_from.as_deref(), &spec_digest) {
            if images.contains(&name) {
                prepared.locks.insert(name.clone(), text.clone());
                fresh.insert(name, f);
            }
        }
    }
    let registry = st.config.registry.as_deref();
    let registered: Vec<Registered> = rows
        .iter()
        .map(|r| Registered {
            name: r.name.clone(),
            kind: if r.kind == "spec" { Kind::Spec } else { Kind::Dockerfile },
            source: r.source.clone(),
            content: r.content.clone(),
            input_digest: r.input_digest.clone(),
            packages: r.packages.clone(),
            parent: r.base_name.as_deref().and_then(|b| parent_of(registry, b)),
            base_from: r.base_name.clone(),
        })
        .collect();
    let acted_on = st.db.acted_on().await.map_err(|e| format!("database: {e}"))?;
    let plan = strata_rebuild::plan(&registered, changes, &fresh, &acted_on);
    // The policy in force now, with the rights of each image's submitter: a policy
    // tightened since an image was registered stops its automatic rebuilds too.
    let policy = st.policy();
    let mut roles = BTreeMap::new();
    for r in &rows {
        if let Some(owner) = &r.owner {
            if !roles.contains_key(owner) {
                roles.insert(owner.clone(), st.db.role_of_name(owner).await.map_err(|e| format!("database: {e}"))?);
            }
        }
    }
    let check = |p: &strata_client::PlannedRebuild| -> Result<bool, String> {
        let owner = rows.iter().find(|r| r.name == p.image).and_then(|r| r.owner.clone()).ok_or("no submitter is recorded for it")?;
        let role = roles.get(&owner).cloned().flatten().ok_or_else(|| format!("its submitter {owner} has no valid token any more"))?;
        let destination = registry.map(|r| format!("{r}/{}", p.image));
        let submission = strata_policy::Submission {
            actor: &owner,
            role: policy.role_of(&owner, &role),
            image: &p.image,
            source: &p.source.url,
            r#ref: p.source.r#ref.as_deref(),
            destination: destination.as_deref(),
            network_host: false,
        };
        policy.check_submit(&submission).map(|g| g.remote_content).map_err(|r| r.to_string())
    };
    let (plan, remote_content) = apply_policy(plan, check);
    prepared.plan = plan;
    prepared.remote_content = remote_content;
    for p in &prepared.plan.rebuilds {
        if let Some(from) = registered.iter().find(|r| r.name == p.image).and_then(|r| r.base_from.clone()).filter(|_| p.kind == "dockerfile") {
            prepared.base_from.insert(p.image.clone(), from);
        }
    }
    prepared.locks.retain(|name, _| prepared.plan.rebuilds.iter().any(|p| &p.image == name));
    Ok(prepared)
}

/// Takes out of a plan the rebuilds `check` refuses, and those that would follow them;
/// the rest keep their order. Returns the plan and each kept rebuild's grant.
pub fn apply_policy(mut plan: RebuildPlan, check: impl Fn(&strata_client::PlannedRebuild) -> Result<bool, String>) -> (RebuildPlan, BTreeMap<String, bool>) {
    let mut grants = BTreeMap::new();
    let mut kept = Vec::new();
    for p in std::mem::take(&mut plan.rebuilds) {
        let refused_parent = p.parent.as_ref().filter(|parent| plan.refused.iter().any(|r| &&r.image == parent));
        let verdict = match refused_parent {
            Some(parent) => Err(format!("its base {parent} is not rebuilt (refused)")),
            None => check(&p),
        };
        match verdict {
            Ok(remote) => {
                grants.insert(p.image.clone(), remote);
                kept.push(p);
            }
            Err(reason) => plan.refused.push(strata_client::RefusedRebuild { image: p.image, reason }),
        }
    }
    plan.rebuilds = kept;
    (plan, grants)
}

/// Checks, plans and executes, one refresh at a time per server (several servers on one
/// PostgreSQL are kept from executing the same inputs twice by the database).
pub async fn refresh(st: &AppState, only_due: bool, trigger: &str, actor: &str) -> Result<Refreshed, String> {
    let _one = st.refreshing.lock().await;
    let prepared = prepare(st, only_due).await?;
    let checked = prepared.checked.len();
    if prepared.plan.repos.is_empty() {
        st.db.checked(&prepared.checked).await.map_err(|e| format!("database: {e}"))?;
        return Ok(Refreshed { checked, event: None, plan: prepared.plan });
    }
    let event = st
        .db
        .execute_plan(
            &prepared.plan,
            &prepared.locks,
            &prepared.base_from,
            &prepared.remote_content,
            trigger,
            actor,
            &st.config.rebuild_tag,
            st.config.default_timeout_s,
            st.config.max_attempts,
        )
        .await
        .map_err(|e| format!("database: {e}"))?;
    st.db.checked(&prepared.checked).await.map_err(|e| format!("database: {e}"))?;
    let event = match event {
        Some(id) => {
            st.queued.notify_waiters();
            tracing::info!("rebuild event {id}: {} image(s) to rebuild ({trigger} by {actor})", prepared.plan.rebuilds.len());
            st.db.rebuild_events(50).await.map_err(|e| format!("database: {e}"))?.into_iter().find(|e| e.id == id)
        }
        None => None,
    };
    Ok(Refreshed { checked, event, plan: prepared.plan })
}

/// The interval check, beside the server: every few seconds, the repositories whose
/// interval has passed.
pub async fn watch(st: AppState) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        if st.config.repo_interval_s <= 0 {
            continue;
        }
        match refresh(&st, true, "interval", "server").await {
            Ok(r) if r.event.is_some() => {}
            Ok(_) => {}
            Err(e) => tracing::warn!("repository check: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_in_the_services_registry_names_its_parent() {
        let reg = Some("127.0.0.1:5000");
        assert_eq!(parent_of(reg, "127.0.0.1:5000/web:latest").as_deref(), Some("web"));
        assert_eq!(parent_of(reg, "127.0.0.1:5000/team/web@sha256:abc").as_deref(), Some("team/web"));
        assert_eq!(parent_of(reg, "127.0.0.1:5000/web").as_deref(), Some("web"));
        assert_eq!(parent_of(reg, "127.0.0.1:50000/web:latest"), None);
        assert_eq!(parent_of(reg, "docker.io/library/web:latest"), None);
        assert_eq!(parent_of(None, "127.0.0.1:5000/web:latest"), None);
        assert_eq!(parent_of(Some("reg.example/team"), "reg.example/team/web:1").as_deref(), Some("web"));
    }

    #[test]
    fn a_refused_rebuild_takes_its_children_out_of_the_plan() {
        let planned = |image: &str, depth: u32, parent: Option<&str>| strata_client::PlannedRebuild {
            image: image.into(),
            kind: "spec".into(),
            depth,
            parent: parent.map(str::to_string),
            reason: String::new(),
            changes: Vec::new(),
            repos: Vec::new(),
            source: Source { url: "file:///x".into(), r#ref: None, commit: None, path: None },
            moved_from: None,
            input_hash: String::new(),
        };
        let plan = RebuildPlan {
            rebuilds: vec![planned("a", 0, None), planned("web", 0, None), planned("site", 1, Some("web")), planned("deep", 2, Some("site")), planned("b", 1, Some("a"))],
            ..Default::default()
        };
        let (plan, grants) = apply_policy(plan, |p| if p.image == "web" { Err("refused by policy rule [default]: no".into()) } else { Ok(p.image != "b") });
        let kept: Vec<&str> = plan.rebuilds.iter().map(|p| p.image.as_str()).collect();
        assert_eq!(kept, ["a", "b"]);
        let refused: Vec<(&str, &str)> = plan.refused.iter().map(|r| (r.image.as_str(), r.reason.as_str())).collect();
        assert_eq!(
            refused,
            [("web", "refused by policy rule [default]: no"), ("site", "its base web is not rebuilt (refused)"), ("deep", "its base site is not rebuilt (refused)")]
        );
        assert_eq!(grants, BTreeMap::from([("a".to_string(), true), ("b".to_string(), false)]));
    }

    #[test]
    fn intervals_honour_metadata_expire() {
        assert_eq!(interval_of(None, 300), 300);
        assert_eq!(interval_of(Some(60), 300), 60);
        assert_eq!(interval_of(Some(86400), 300), 300);
        assert_eq!(interval_of(Some(-1), 300), 0, "never expires: only on refresh");
        assert_eq!(interval_of(Some(60), 0), 0, "the server checks only on refresh");
    }
}
