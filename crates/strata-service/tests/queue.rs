//! The queue and its leases against real databases: SQLite in a temporary folder and a
//! private PostgreSQL (see pg.rs). Every test runs on both.

mod pg;

use strata_client::{BuildResult, ImageOutput, Source};
use strata_service::db::{Db, LeaseError, NewBuild, Outcome};

async fn backends() -> Vec<(Db, Box<dyn std::any::Any>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("q.db").display())).await.unwrap();
    let mut out: Vec<(Db, Box<dyn std::any::Any>)> = vec![(sqlite, Box::new(dir))];
    if let Some(pg) = pg::Postgres::start() {
        let db = Db::connect(&pg.url).await.unwrap();
        out.push((db, Box::new(pg)));
    }
    out
}

async fn submit(db: &Db, max_attempts: i64) -> i64 {
    let source = Source { url: "file:///src".into(), r#ref: Some("main".into()), commit: None, path: None };
    db.submit(&NewBuild {
        submitter: "tester",
        trigger: "manual",
        source: &source,
        commit: "0123456789012345678901234567890123456789",
        images: &["app".to_string()],
        scratch: false,
        timeout_s: 60,
        max_attempts,
        track: true,
        network: None,
        remote_content: true,
    })
    .await
    .unwrap()
}

fn result() -> BuildResult {
    BuildResult { kind: "dockerfile".into(), images: vec![ImageOutput { name: "app".into(), ..Default::default() }], ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_workers_never_share_a_build() {
    for (db, _keep) in backends().await {
        let ids: Vec<i64> = futures_join(20, |_| submit(&db, 3)).await;
        // 8 workers lease until the queue is empty; every build goes to exactly one.
        let mut tasks = Vec::new();
        for w in 0..8 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(id) = db.lease(&format!("w{w}"), &format!("lease-{w}"), 60_000).await.unwrap() {
                    got.push(id);
                }
                got
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        assert_eq!(all, ids, "{:?}", db.dialect);
        // Oldest first, and each build records one attempt.
        for id in ids {
            let b = db.get(id).await.unwrap().unwrap();
            assert_eq!((b.state.as_str(), b.attempts, b.attempt_log.len()), ("running", 1, 1));
        }
    }
}

async fn futures_join<F, Fut>(n: usize, f: F) -> Vec<i64>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    let mut v = Vec::new();
    for i in 0..n {
        v.push(f(i).await);
    }
    v
}

#[tokio::test]
async fn only_the_lease_holder_completes_and_only_once() {
    for (db, _keep) in backends().await {
        let id = submit(&db, 3).await;
        assert_eq!(db.lease("w1", "h1", 60_000).await.unwrap(), Some(id));
        assert!(matches!(db.finish(id, "other", Outcome::Built(&result())).await, Err(LeaseError::Lost(_))));
        assert!(matches!(db.heartbeat(id, "other", 60_000).await, Err(LeaseError::Lost(_))));
        db.append_log(id, "h1", b"step 1\n", 1 << 20).await.unwrap();
        db.finish(id, "h1", Outcome::Built(&result())).await.unwrap();
        assert!(matches!(db.finish(id, "h1", Outcome::Built(&result())).await, Err(LeaseError::Lost(_))), "a second completion is refused");
        assert!(matches!(db.append_log(id, "h1", b"late\n", 1 << 20).await, Err(LeaseError::Lost(_))));
        let b = db.get(id).await.unwrap().unwrap();
        assert_eq!(b.state, "built");
        assert_eq!(b.result.unwrap().images[0].name, "app");
        let events: Vec<_> = b.events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(events, ["submitted", "started", "built"]);
        let (log, next, ended) = db.read_log(id, 0, 1 << 20).await.unwrap();
        assert_eq!((log.as_str(), next, ended), ("step 1\n", 7, true));
        assert_eq!(db.read_log(id, 5, 1 << 20).await.unwrap().0, "1\n");
    }
}

#[tokio::test]
async fn an_expired_lease_requeues_until_attempts_run_out() {
    for (db, _keep) in backends().await {
        let id = submit(&db, 2).await;
        // A lease that is already over: the worker "died".
        assert_eq!(db.lease("dead", "h1", -1).await.unwrap(), Some(id));
        assert_eq!(db.reap(0).await.unwrap(), 1);
        let b = db.get(id).await.unwrap().unwrap();
        assert_eq!(b.state, "queued");
        assert_eq!(b.attempt_log[0].outcome, "expired");
        assert!(b.attempt_log[0].reason.as_deref().unwrap().contains("dead stopped checking in"), "{:?}", b.attempt_log);
        // The dead worker's late completion is refused; another worker takes the build.
        assert!(db.finish(id, "h1", Outcome::Built(&result())).await.is_err());
        assert_eq!(db.lease("dead-too", "h2", -1).await.unwrap(), Some(id));
        db.reap(0).await.unwrap();
        let b = db.get(id).await.unwrap().unwrap();
        assert_eq!((b.state.as_str(), b.attempts), ("failed", 2));
        assert!(b.reason.as_deref().unwrap().contains("attempt 2 of 2"), "{:?}", b.reason);
        let events: Vec<_> = b.events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(events, ["submitted", "started", "requeued", "started", "failed"]);
    }
}

#[tokio::test]
async fn cancel_ends_a_queued_build_and_flags_a_running_one() {
    for (db, _keep) in backends().await {
        let queued = submit(&db, 3).await;
        db.cancel(queued, "alice").await.unwrap().unwrap();
        assert_eq!(db.get(queued).await.unwrap().unwrap().state, "canceled");
        assert_eq!(db.lease("w", "h", 60_000).await.unwrap(), None, "a canceled build is never leased");

        let running = submit(&db, 3).await;
        assert_eq!(db.lease("w", "h", 60_000).await.unwrap(), Some(running));
        assert_eq!(db.heartbeat(running, "h", 60_000).await.unwrap(), (false, None));
        db.cancel(running, "alice").await.unwrap().unwrap();
        assert_eq!(db.get(running).await.unwrap().unwrap().state, "running");
        let (stop, reason) = db.heartbeat(running, "h", 60_000).await.unwrap();
        assert!(stop && reason.as_deref() == Some("canceled"));
        // A build that finished anyway is not recorded as built.
        db.finish(running, "h", Outcome::Failed { reason: "canceled", canceled: true }).await.unwrap();
        assert_eq!(db.get(running).await.unwrap().unwrap().state, "canceled");
        assert!(db.cancel(9999, "alice").await.unwrap().is_none());
    }
}

#[tokio::test]
async fn queue_time_is_not_run_time() {
    for (db, _keep) in backends().await {
        let id = submit(&db, 3).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        db.lease("w", "h", 60_000).await.unwrap();
        let b = db.get(id).await.unwrap().unwrap();
        assert!(b.queued_seconds >= 0.3 && b.run_seconds < 0.3, "queued {} run {}", b.queued_seconds, b.run_seconds);
        // The timeout counts from the start of the run: 60 s have not passed.
        assert!(!db.heartbeat(id, "h", 60_000).await.unwrap().0);
        let list = db.list(Some("app"), Some("running"), 10).await.unwrap();
        assert_eq!(list.iter().map(|b| b.id).collect::<Vec<_>>(), [id]);
        assert!(db.list(Some("other"), None, 10).await.unwrap().is_empty());
    }
}

/// The kept listing is never stale: every change a listing shows (submit, lease, cancel
/// flag, finish, requeue) moves the state version, and a kept listing's durations still
/// grow while it is kept.
#[tokio::test]
async fn a_kept_listing_follows_every_change() {
    use strata_service::listing::ListCache;
    for (db, _keep) in backends().await {
        let cache = ListCache::default();
        let states = |l: Vec<strata_client::Build>| l.iter().map(|b| (b.id, b.state.clone(), b.cancel_requested)).collect::<Vec<_>>();
        let a = submit(&db, 2).await;
        assert_eq!(states(cache.list(&db, None, None, 10).await.unwrap()), [(a, "queued".to_string(), false)]);
        let before = cache.list(&db, None, None, 10).await.unwrap()[0].queued_seconds;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let after = cache.list(&db, None, None, 10).await.unwrap()[0].queued_seconds;
        assert!(after >= before + 0.2, "a kept queued build keeps queuing: {before} -> {after}");
        let b = submit(&db, 2).await;
        assert_eq!(states(cache.list(&db, None, None, 10).await.unwrap()), [(b, "queued".into(), false), (a, "queued".into(), false)]);
        db.lease("w", "h", -1).await.unwrap();
        assert_eq!(states(cache.list(&db, None, Some("running"), 10).await.unwrap()), [(a, "running".into(), false)]);
        db.cancel(a, "alice").await.unwrap();
        assert_eq!(states(cache.list(&db, None, Some("running"), 10).await.unwrap()), [(a, "running".into(), true)]);
        db.reap(0).await.unwrap();
        assert_eq!(states(cache.list(&db, None, None, 10).await.unwrap()), [(b, "queued".into(), false), (a, "canceled".into(), true)]);
        db.lease("w", "h2", 60_000).await.unwrap();
        db.finish(b, "h2", Outcome::Built(&result())).await.unwrap();
        let l = cache.list(&db, Some("app"), None, 10).await.unwrap();
        assert_eq!(states(l.clone()), [(b, "built".into(), false), (a, "canceled".into(), true)]);
        assert!(l[0].result.is_some());
    }
}

/// A rebuild plan executed: the child waits for its parent (never leased before the
/// parent is built), a failed parent fails its child naming the parent's build, the event
/// closes when nothing of it is left to run, and the same inputs are never queued twice.
#[tokio::test]
async fn rebuild_children_wait_for_parents_and_fail_with_them() {
    use std::collections::BTreeMap;
    use strata_client::{PackageChange, PlannedRebuild, RebuildPlan};
    for (db, _keep) in backends().await {
        let source = Source { url: "file:///src".into(), r#ref: None, commit: Some("c".repeat(40)), path: None };
        let change = PackageChange { name: "nginx".into(), old: Some("1-1.x86_64".into()), new: Some("1-2.x86_64".into()) };
        let planned = |image: &str, depth: u32, parent: Option<&str>| PlannedRebuild {
            image: image.into(),
            kind: if depth == 0 { "spec".into() } else { "dockerfile".into() },
            depth,
            parent: parent.map(str::to_string),
            reason: "test".into(),
            changes: vec![change.clone()],
            repos: Vec::new(),
            source: source.clone(),
            moved_from: None,
            input_hash: format!("hash-{image}"),
        };
        let plan = RebuildPlan { repos: Vec::new(), rebuilds: vec![planned("web", 0, None), planned("site", 1, Some("web")), planned("deep", 2, Some("site"))], unchanged: Vec::new(), refused: Vec::new() };
        let locks = BTreeMap::from([("web".to_string(), "{}".to_string())]);
        let from = BTreeMap::from([("site".to_string(), "reg/web:latest".to_string()), ("deep".to_string(), "reg/site:latest".to_string())]);
        let event = db.execute_plan(&plan, &locks, &from, &BTreeMap::new(), "refresh", "alice", "testing", 60, 3).await.unwrap().unwrap();
        assert_eq!(db.execute_plan(&plan, &locks, &from, &BTreeMap::new(), "refresh", "bob", "testing", 60, 3).await.unwrap(), None, "the same inputs are never queued twice");
        let builds = db.list(None, None, 10).await.unwrap();
        let ids: BTreeMap<String, i64> = builds.iter().map(|b| (b.image.clone(), b.id)).collect();
        let site = db.get(ids["site"]).await.unwrap().unwrap();
        let order = site.rebuild.clone().unwrap();
        assert_eq!((site.trigger.as_str(), order.parent_build, order.push_tag.as_str(), order.base_from.as_deref()), ("rebuild", Some(ids["web"]), "testing", Some("reg/web:latest")));
        assert_eq!(order.changes, std::slice::from_ref(&change));
        assert_eq!(db.get(ids["web"]).await.unwrap().unwrap().rebuild.unwrap().lock.as_deref(), Some("{}"));

        // Only the parent can be leased; the children wait.
        assert_eq!(db.lease("w1", "h1", 60_000).await.unwrap(), Some(ids["web"]));
        assert_eq!(db.lease("w2", "h2", 60_000).await.unwrap(), None, "a child waits for its parent");
        db.finish(ids["web"], "h1", Outcome::Failed { reason: "fetch failed", canceled: false }).await.unwrap();
        for child in ["site", "deep"] {
            let b = db.get(ids[child]).await.unwrap().unwrap();
            assert_eq!((b.state.as_str(), b.attempts), ("failed", 0), "{child} never ran");
            assert!(b.reason.as_deref().unwrap().contains("parent build"), "{:?}", b.reason);
        }
        let site = db.get(ids["site"]).await.unwrap().unwrap();
        assert!(site.reason.as_deref().unwrap().starts_with(&format!("parent build {} failed: fetch failed", ids["web"])), "{:?}", site.reason);
        let ev = db.rebuild_events(10).await.unwrap();
        assert_eq!((ev[0].id, ev[0].state.as_str(), ev[0].builds.len()), (event, "failed", 3));
        assert!(ev[0].finished.is_some() && ev[0].latency_seconds.is_some());
        assert_eq!(ev[0].plan, plan);
    }
}
