//! The pages' handlers: each reads what the API would answer (the same database calls)
//! and renders one template.

use super::auth::Access;
use super::diff::{diff, Diff};
use super::{render, Chrome, PageError};
use crate::AppState;
use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use strata_client::{Build, PlannedRebuild, QueryHit, RebuildEvent, TagPointer};

type PageResult = Result<Response, PageError>;

const STATES: [&str; 5] = ["queued", "running", "built", "failed", "canceled"];
/// The most log a build page shows; the rest is in `log.txt`.
const PAGE_LOG: u64 = 2 << 20;

/// `2026-12-06T04:05:06.789Z` → `2026-12-06 04:05:06 UTC`.
fn when(t: &str) -> String {
    match (t.get(..10), t.get(11..19)) {
        (Some(d), Some(h)) if t.as_bytes().get(10) == Some(&b'T') => format!("{d} {h} UTC"),
        _ => t.to_string(),
    }
}

fn when_opt(t: Option<&String>) -> String {
    t.map_or_else(|| "—".to_string(), |t| when(t))
}

/// Seconds in words: `0.4 s`, `12.0 s`, `3 min 05 s`, `2 h 07 min`.
fn secs(s: f64) -> String {
    let s = s.max(0.0);
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{} min {:02} s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{} h {:02} min", (s / 3600.0) as u64, ((s % 3600.0) / 60.0) as u64)
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, PageError> {
    q.map(|Query(q)| q).map_err(|e| PageError::bad_request(format!("the query string: {}", e.body_text())))
}

fn id_of(s: &str) -> Result<i64, PageError> {
    s.parse::<i64>().ok().filter(|i| *i > 0).ok_or_else(|| PageError::not_found(format!("There is no build {s:?}: builds are numbered from 1.")))
}

// ---- the builds list ----

struct Row {
    id: i64,
    images: Vec<String>,
    state: String,
    trigger: String,
    submitter: String,
    scratch: bool,
    source: String,
    commit: String,
    commit_short: String,
    created: String,
    created_raw: String,
    queued: String,
    run: String,
}

impl Row {
    fn of(b: &Build) -> Row {
        let commit = b.source.commit.clone().unwrap_or_default();
        let mut source = b.source.url.clone();
        if let Some(p) = &b.source.path {
            source.push_str(&format!(" ({p})"));
        }
        Row {
            id: b.id,
            images: b.images.clone(),
            state: b.state.clone(),
            trigger: b.trigger.clone(),
            submitter: b.submitter.clone(),
            scratch: b.scratch,
            source,
            commit_short: commit.chars().take(12).collect(),
            commit,
            created: when(&b.created),
            created_raw: b.created.clone(),
            queued: secs(b.queued_seconds),
            run: if b.started.is_some() { secs(b.run_seconds) } else { "—".into() },
        }
    }
}

#[derive(Template)]
#[template(path = "builds.html")]
struct BuildsPage {
    title: &'static str,
    chrome: Chrome,
    image: String,
    state: String,
    states: [&'static str; 5],
    rows: Vec<Row>,
}

#[derive(Template)]
#[template(path = "up.html")]
struct UpPage {
    title: &'static str,
    chrome: Chrome,
}

#[derive(Deserialize)]
pub struct ListParams {
    image: Option<String>,
    state: Option<String>,
    limit: Option<i64>,
}

pub async fn builds(access: Access, State(st): State<AppState>, q: Result<Query<ListParams>, QueryRejection>) -> PageResult {
    if matches!(access, Access::Denied) {
        // Probes and monitors read `/` without a token: it answers 200 all the same.
        return Ok(render(StatusCode::OK, &UpPage { title: "strata build service", chrome: Chrome::default() }));
    }
    let chrome = access.chrome(&Uri::from_static("/")).unwrap_or_default();
    let q = query(q)?;
    let image = q.image.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let state = q.state.filter(|s| !s.is_empty());
    if let Some(s) = &state {
        if !STATES.contains(&s.as_str()) {
            return Err(PageError::bad_request(format!("state {s:?}: one of {}", STATES.join(", "))));
        }
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let list = st.lists.list(&st.db, image.as_deref(), state.as_deref(), limit).await?;
    let page = BuildsPage {
        title: "Builds",
        chrome,
        image: image.unwrap_or_default(),
        state: state.unwrap_or_default(),
        states: STATES,
        rows: list.iter().map(Row::of).collect(),
    };
    Ok(render(StatusCode::OK, &page))
}

// ---- a build ----

#[derive(Template)]
#[template(path = "build.html")]
struct BuildPage {
    title: String,
    chrome: Chrome,
    b: Build,
    src_ref: Option<String>,
    created: String,
    started: String,
    finished: String,
    queued: String,
    run: String,
    timeout: String,
    log: String,
    next: u64,
    truncated: bool,
    live: bool,
}

fn ended(state: &str) -> bool {
    matches!(state, "built" | "failed" | "canceled")
}

pub async fn build(access: Access, uri: Uri, State(st): State<AppState>, Path(id): Path<String>) -> PageResult {
    let chrome = match access.chrome(&uri) {
        Ok(c) => c,
        Err(redirect) => return Ok(redirect.into_response()),
    };
    let id = id_of(&id)?;
    let mut b = st.db.get(id).await?.ok_or_else(|| PageError::not_found(format!("There is no build {id}.")))?;
    for a in &mut b.attempt_log {
        a.started = when(&a.started);
        a.ended = a.ended.as_deref().map(when);
    }
    for e in &mut b.events {
        e.at = when(&e.at);
    }
    let (log, next, complete) = st.db.read_log(id, 0, PAGE_LOG).await?;
    let live = !ended(&b.state);
    let page = BuildPage {
        title: format!("Build #{id}"),
        chrome,
        src_ref: b.source.r#ref.clone(),
        created: when(&b.created),
        started: when_opt(b.started.as_ref()),
        finished: when_opt(b.finished.as_ref()),
        queued: secs(b.queued_seconds),
        run: if b.started.is_some() { secs(b.run_seconds) } else { "—".into() },
        timeout: secs(b.timeout_seconds as f64),
        truncated: !live && !complete,
        live,
        log,
        next,
        b,
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Deserialize)]
pub struct LogParams {
    offset: Option<u64>,
    /// Seconds to wait for more of the log when there is none yet (at most 20).
    wait: Option<u64>,
}

/// What the build page's script reads: the API's log chunk and the build's state.
#[derive(Serialize)]
struct LiveChunk {
    offset: u64,
    data: String,
    next: u64,
    complete: bool,
    state: String,
    run: String,
    queued: String,
}

/// A piece of the log from `offset`, waiting up to `wait` seconds for one while the build
/// runs: the build page's script follows a build with one request at a time.
pub async fn log_chunk(access: Access, State(st): State<AppState>, Path(id): Path<String>, q: Result<Query<LogParams>, QueryRejection>) -> Response {
    let err = |status: StatusCode, m: String| (status, Json(strata_client::ErrorBody { error: m })).into_response();
    if matches!(access, Access::Denied) {
        return err(StatusCode::UNAUTHORIZED, "not signed in".into());
    }
    let (Ok(id), Ok(q)) = (id_of(&id), query(q)) else {
        return err(StatusCode::BAD_REQUEST, "GET /builds/ID/log?offset=N&wait=S".into());
    };
    let offset = q.offset.unwrap_or(0);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(q.wait.unwrap_or(0).min(20));
    let result: Result<Response, sqlx::Error> = async {
        loop {
            let (data, next, complete) = st.db.read_log(id, offset, 1 << 20).await?;
            if !data.is_empty() || complete || tokio::time::Instant::now() >= deadline || st.closing.load(std::sync::atomic::Ordering::SeqCst) {
                let Some(b) = st.db.get(id).await? else { return Ok(err(StatusCode::NOT_FOUND, format!("no build {id}"))) };
                let run = if b.started.is_some() { secs(b.run_seconds) } else { "—".into() };
                let chunk = LiveChunk { offset, data, next, complete, state: b.state, run, queued: secs(b.queued_seconds) };
                return Ok(Json(chunk).into_response());
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
    .await;
    result.unwrap_or_else(|e| err(StatusCode::INTERNAL_SERVER_ERROR, format!("database: {e}")))
}

/// The whole log as plain text.
pub async fn log_text(access: Access, uri: Uri, State(st): State<AppState>, Path(id): Path<String>) -> PageResult {
    if let Err(redirect) = access.chrome(&uri) {
        return Ok(redirect.into_response());
    }
    let id = id_of(&id)?;
    if !st.db.exists(id).await? {
        return Err(PageError::not_found(format!("There is no build {id}.")));
    }
    let mut text = String::new();
    let mut offset = 0;
    loop {
        let (data, next, _) = st.db.read_log(id, offset, 4 << 20).await?;
        if data.is_empty() || next <= offset || text.len() as i64 > crate::MAX_LOG {
            break;
        }
        text.push_str(&data);
        offset = next;
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

// ---- an image ----

struct ImageRow {
    id: i64,
    state: String,
    trigger: String,
    event: Option<i64>,
    created: String,
    digest: String,
    tags: Vec<String>,
    packages: Option<usize>,
}

struct Choice {
    id: i64,
    label: String,
}

#[derive(Template)]
#[template(path = "image.html")]
struct ImagePage {
    title: String,
    chrome: Chrome,
    name: String,
    tags: Vec<TagPointer>,
    builds: Vec<ImageRow>,
    choices: Vec<Choice>,
    from: i64,
    to: i64,
    diff: Option<Diff>,
}

#[derive(Deserialize)]
pub struct DiffParams {
    from: Option<String>,
    to: Option<String>,
}

pub async fn image(access: Access, uri: Uri, State(st): State<AppState>, Path(name): Path<String>, q: Result<Query<DiffParams>, QueryRejection>) -> PageResult {
    let chrome = match access.chrome(&uri) {
        Ok(c) => c,
        Err(redirect) => return Ok(redirect.into_response()),
    };
    let name = name.trim_end_matches('/').to_string();
    if !crate::valid_image_name(&name) {
        return Err(PageError::not_found(format!("{name:?} is not an image name.")));
    }
    let q = query(q)?;
    let list = st.db.list(Some(&name), None, 1000).await?;
    let all_tags = st.db.tags().await?;
    let tags = all_tags.get(&name).cloned().unwrap_or_default();
    if list.is_empty() && tags.is_empty() {
        return Err(PageError::not_found(format!("No build of an image {name} is recorded.")));
    }
    // Each build's output for this image, when it has one.
    let output = |b: &Build| b.result.as_ref().and_then(|r| r.images.iter().find(|i| i.name == name).cloned());
    let rows: Vec<ImageRow> = list
        .iter()
        .map(|b| {
            let out = output(b);
            let mut floating: Vec<String> = tags.iter().filter(|t| t.build_id == b.id).map(|t| t.tag.clone()).collect();
            floating.sort();
            ImageRow {
                id: b.id,
                state: b.state.clone(),
                trigger: b.trigger.clone(),
                event: b.rebuild.as_ref().map(|r| r.event),
                created: when(&b.created),
                digest: out.as_ref().map(|o| o.manifest_digest.clone()).unwrap_or_default(),
                tags: out.as_ref().map(|o| o.tags.iter().chain(&floating).cloned().collect::<std::collections::BTreeSet<_>>().into_iter().collect()).unwrap_or(floating),
                packages: out.as_ref().map(|o| o.packages.len()),
            }
        })
        .collect();
    // Built builds that hold the image, newest first: what a diff can compare.
    let built: BTreeMap<i64, Vec<String>> = list.iter().filter(|b| b.state == "built").filter_map(|b| output(b).map(|o| (b.id, o.packages))).collect();
    let choices: Vec<Choice> = list
        .iter()
        .filter(|b| built.contains_key(&b.id))
        .map(|b| Choice { id: b.id, label: format!("{} · {}", b.trigger, when(&b.created)) })
        .collect();
    let pick = |s: &Option<String>, default: Option<i64>| -> Result<Option<i64>, PageError> {
        match s.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(default),
            Some(s) => {
                let id = id_of(s)?;
                if !built.contains_key(&id) {
                    return Err(PageError::not_found(format!("Build {id} has no built image {name} to compare.")));
                }
                Ok(Some(id))
            }
        }
    };
    let to = pick(&q.to, choices.first().map(|c| c.id))?;
    let from = pick(&q.from, choices.get(1).map(|c| c.id))?;
    let diff = match (from, to) {
        (Some(f), Some(t)) => Some(diff(&built[&f], &built[&t])),
        _ => None,
    };
    let page = ImagePage { title: format!("Image {name}"), chrome, name, tags, builds: rows, choices, from: from.unwrap_or(0), to: to.unwrap_or(0), diff };
    Ok(render(StatusCode::OK, &page))
}

// ---- the package search ----

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    title: &'static str,
    chrome: Chrome,
    rpm: String,
    all: bool,
    searched: bool,
    error: Option<String>,
    hits: Vec<QueryHit>,
}

#[derive(Deserialize)]
pub struct SearchParams {
    rpm: Option<String>,
    all: Option<String>,
}

pub async fn search(access: Access, uri: Uri, State(st): State<AppState>, q: Result<Query<SearchParams>, QueryRejection>) -> PageResult {
    let chrome = match access.chrome(&uri) {
        Ok(c) => c,
        Err(redirect) => return Ok(redirect.into_response()),
    };
    let q = query(q)?;
    let rpm = q.rpm.unwrap_or_default().trim().to_string();
    let all = q.all.is_some_and(|a| matches!(a.as_str(), "1" | "true" | "on" | "yes"));
    let mut page = SearchPage { title: "Package search", chrome, rpm, all, searched: false, error: None, hits: Vec::new() };
    if page.rpm.is_empty() {
        return Ok(render(StatusCode::OK, &page));
    }
    let dep = if page.rpm.len() > 512 { Err("at most 512 characters".to_string()) } else { strata_rpm::Dep::parse(&page.rpm).map_err(|e| e.to_string()) };
    match dep {
        Err(e) => {
            page.error = Some(format!("{:?}: {e}", page.rpm));
            Ok(render(StatusCode::BAD_REQUEST, &page))
        }
        Ok(dep) => {
            let builds = st.db.built_results().await?;
            let tags = st.db.tags().await?;
            page.hits = crate::query::hits(&dep, &builds, all, &tags);
            for h in &mut page.hits {
                h.created = when(&h.created);
            }
            page.searched = true;
            Ok(render(StatusCode::OK, &page))
        }
    }
}

// ---- rebuild events ----

struct PlanRow {
    p: PlannedRebuild,
    build: Option<i64>,
    state: String,
}

struct EventView {
    event: RebuildEvent,
    noticed: String,
    finished: String,
    latency: String,
    rows: Vec<PlanRow>,
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    title: &'static str,
    chrome: Chrome,
    events: Vec<EventView>,
}

pub async fn events(access: Access, uri: Uri, State(st): State<AppState>) -> PageResult {
    let chrome = match access.chrome(&uri) {
        Ok(c) => c,
        Err(redirect) => return Ok(redirect.into_response()),
    };
    let events = st.db.rebuild_events(100).await?;
    let mut states: BTreeMap<i64, String> = BTreeMap::new();
    if events.iter().any(|e| !e.builds.is_empty()) {
        for b in st.lists.list(&st.db, None, None, 1000).await? {
            states.insert(b.id, b.state);
        }
    }
    let events = events
        .into_iter()
        .map(|e| {
            let rows = e
                .plan
                .rebuilds
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let build = e.builds.get(i).copied();
                    PlanRow { p: p.clone(), build, state: build.and_then(|b| states.get(&b).cloned()).unwrap_or_default() }
                })
                .collect();
            EventView {
                noticed: when(&e.noticed),
                finished: when_opt(e.finished.as_ref()),
                latency: e.latency_seconds.map_or_else(|| "—".to_string(), secs),
                rows,
                event: e,
            }
        })
        .collect();
    Ok(render(StatusCode::OK, &EventsPage { title: "Rebuild events", chrome, events }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_read_well() {
        assert_eq!(when("2026-12-06T04:05:06.789Z"), "2026-12-06 04:05:06 UTC");
        assert_eq!(when("yesterday"), "yesterday");
        assert_eq!(secs(0.42), "0.4 s");
        assert_eq!(secs(185.0), "3 min 05 s");
        assert_eq!(secs(7620.0), "2 h 07 min");
    }
}
