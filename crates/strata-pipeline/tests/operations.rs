//! The pipeline's operations on a spec over the RPM corpus: the events a front end
//! sees, the lock written, `--locked` refusals, fetching into the cache, `check` and
//! cancellation without root; composing (canceled, built, then reused) as root.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use strata_pipeline::{Cancel, ComposeRequest, Error, Event, Progress, RepoSettings, ResolveRequest};

/// Every event, as text, in order.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Progress for Recorder {
    fn event(&self, e: &Event<'_>) {
        let text = match e {
            Event::ResolveStarted { images } => format!("resolve {images:?}"),
            Event::ResolveFinished => "resolved".into(),
            Event::RepoLoading { repo } => format!("repo {repo}"),
            Event::Solving { image } => format!("solve {image}"),
            Event::FetchStarted { packages, bytes } => format!("fetch {packages} {}", if *bytes > 0 { "download" } else { "cached" }),
            Event::PackageFetched { cached, .. } => format!("package cached={cached}"),
            Event::FetchFinished => "fetched".into(),
            Event::FetchAdvanced { .. } => return,
            other => format!("{other:?}"),
        };
        self.0.lock().unwrap().push(text);
    }
}

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn corpus_repo() -> PathBuf {
    strata_corpus::repo("base")
}

/// A spec with one image (`tiny`: busybox) over the corpus, and settings whose caches are
/// inside `dir`.
fn setup(dir: &Path) -> (PathBuf, RepoSettings) {
    let spec = dir.join("spec.json");
    let doc = serde_json::json!({
        "repos": [{"id": "base", "baseurl": corpus_repo()}],
        "images": {"tiny": {"packages": ["busybox"]}},
    });
    std::fs::write(&spec, doc.to_string()).unwrap();
    std::fs::create_dir_all(dir.join("reposdir")).unwrap();
    let repos = RepoSettings { cache_dir: Some(dir.join("cache")), reposdir: dir.join("reposdir"), ..RepoSettings::default() };
    (spec, repos)
}

#[test]
fn resolve_reports_progress_and_writes_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, repos) = setup(dir.path());
    let progress = Recorder::default();
    let req = ResolveRequest { repos, ..ResolveRequest::new(&spec) };
    let resolved = strata_pipeline::resolve(&req, &progress, &Cancel::new()).unwrap();
    assert_eq!(progress.take(), ["resolve []", "repo base", "solve tiny", "resolved"]);
    assert_eq!(resolved.lock_file, dir.path().join("spec.lock"));
    assert!(!resolved.locked);
    let tiny = &resolved.lock.images["tiny"];
    assert!(tiny.packages.iter().any(|p| p.name == "busybox"), "{:?}", tiny.packages);
    let written = strata_lock::Lockfile::read(&resolved.lock_file).unwrap();
    assert_eq!(written.images["tiny"].packages, tiny.packages);

    // The lock matches: `locked` passes and writes nothing.
    let locked = ResolveRequest { locked: true, ..req.clone() };
    assert!(strata_pipeline::resolve(&locked, &progress, &Cancel::new()).unwrap().locked);

    // A spec asking for more no longer matches: refused, naming the difference.
    let doc = serde_json::json!({
        "repos": [{"id": "base", "baseurl": corpus_repo()}],
        "images": {"tiny": {"packages": ["busybox", "bash"]}},
    });
    std::fs::write(&spec, doc.to_string()).unwrap();
    let e = strata_pipeline::resolve(&locked, &progress, &Cancel::new()).unwrap_err();
    let Error::LockMismatch { differences, .. } = &e else { panic!("{e:?}") };
    assert!(differences.iter().any(|d| d.contains("bash")), "{differences:?}");
    assert!(e.to_string().ends_with("run `strata resolve` without --locked to update it"), "{e}");
}

#[test]
fn fetch_reports_each_package_and_then_serves_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, repos) = setup(dir.path());
    let resolved = strata_pipeline::resolve(&ResolveRequest { repos: repos.clone(), ..ResolveRequest::new(&spec) }, &strata_pipeline::NoProgress, &Cancel::new()).unwrap();
    let packages = &resolved.lock.images["tiny"].packages;
    let images = vec!["tiny".to_string()];
    let progress = Recorder::default();
    let cache = repos.cache_root();
    let rpms = strata_pipeline::fetch(&resolved.lock, &images, &[], &cache, &progress, &Cancel::new()).unwrap();
    let events = progress.take();
    assert_eq!(events.first().unwrap(), &format!("fetch {} download", packages.len()));
    assert_eq!(events.iter().filter(|e| *e == "package cached=false").count(), packages.len(), "{events:?}");
    assert_eq!(events.last().unwrap(), "fetched");
    for p in packages {
        assert!(rpms.path(p).unwrap().starts_with(cache.join("rpms")));
    }
    strata_pipeline::fetch(&resolved.lock, &images, &[], &cache, &progress, &Cancel::new()).unwrap();
    let events = progress.take();
    assert_eq!(events.first().unwrap(), &format!("fetch {} cached", packages.len()));
    assert_eq!(events.iter().filter(|e| *e == "package cached=true").count(), packages.len(), "{events:?}");

    let canceled = Cancel::new();
    canceled.cancel();
    assert!(matches!(strata_pipeline::fetch(&resolved.lock, &images, &[], &cache, &progress, &canceled), Err(Error::Canceled)));
}

#[test]
fn check_without_a_store_says_not_built_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, repos) = setup(dir.path());
    let req = ComposeRequest { repos, ..ComposeRequest::new(&spec, dir.path().join("store")) };
    let progress = Recorder::default();
    let checked = strata_pipeline::check(&req, &progress, &Cancel::new()).unwrap();
    assert_eq!(progress.take(), ["resolve [\"tiny\"]", "repo base", "solve tiny", "resolved"]);
    assert!(checked.changed());
    assert_eq!(checked.images.len(), 1);
    assert_eq!(checked.images[0].name, "tiny");
    assert_eq!(checked.images[0].changes, ["not built yet (no image store)"]);
    assert!(!dir.path().join("spec.lock").exists(), "check writes no lock");
    assert!(!dir.path().join("store").exists(), "check creates no store");
}

#[test]
fn a_canceled_compose_stops_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, repos) = setup(dir.path());
    let req = ComposeRequest { repos, ..ComposeRequest::new(&spec, dir.path().join("store")) };
    let cancel = Cancel::new();
    cancel.cancel();
    let progress = Recorder::default();
    match strata_pipeline::compose(&req, &progress, &cancel) {
        Err(Error::Canceled) => {}
        // Without root, composing is refused first.
        Err(Error::NeedsRoot) => assert!(!rustix::process::geteuid().is_root()),
        other => panic!("{other:?}"),
    }
    assert!(progress.take().is_empty());
    assert!(!dir.path().join("spec.lock").exists());
    assert!(!dir.path().join("store").exists());
    assert!(matches!(strata_pipeline::check(&req, &progress, &cancel), Err(Error::Canceled)));
}

#[test]
fn a_bad_image_name_is_said_before_resolving() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, repos) = setup(dir.path());
    let doc = serde_json::json!({
        "repos": [{"id": "base", "baseurl": corpus_repo()}],
        "images": {"Tiny": {"packages": ["busybox"]}},
    });
    std::fs::write(&spec, doc.to_string()).unwrap();
    let progress = Recorder::default();
    let req = ComposeRequest { repos, ..ComposeRequest::new(&spec, dir.path().join("store")) };
    let e = strata_pipeline::check(&req, &progress, &Cancel::new()).unwrap_err();
    assert!(progress.take().is_empty());
    assert!(matches!(e, Error::Spec(_) | Error::ImageName { .. }), "{e:?}");
}

/// Trips its [`Cancel`] as soon as an image starts.
struct CancelOnStart(Cancel, Recorder);

impl Progress for CancelOnStart {
    fn event(&self, e: &Event<'_>) {
        if matches!(e, Event::ImageStarted { .. }) {
            self.0.cancel();
        }
        self.1.event(e);
    }
}

#[test]
fn compose_reports_each_step_stops_when_canceled_and_reuses_what_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, repos) = setup(dir.path());
    let store = dir.path().join("store");
    let req = ComposeRequest { repos, ..ComposeRequest::new(&spec, &store) };
    if !rustix::process::geteuid().is_root() {
        // Composing needs root; without it the refusal is the whole behaviour.
        assert!(matches!(strata_pipeline::compose(&req, &strata_pipeline::NoProgress, &Cancel::new()), Err(Error::NeedsRoot)));
        return;
    }

    // Canceled when the image starts: it stops at its first package, nothing is tagged.
    let canceling = CancelOnStart(Cancel::new(), Recorder::default());
    let e = strata_pipeline::compose(&req, &canceling, &canceling.0).unwrap_err();
    assert!(matches!(e, Error::Canceled), "{e:?}");
    let events = canceling.1.take();
    assert!(events.iter().any(|e| e.starts_with("ImageFailed")), "{events:?}");
    assert_eq!(events.last().unwrap(), "ComposeFinished", "{events:?}");
    let stored = strata_oci::store::Store::open(&store).unwrap();
    assert!(stored.resolve("tiny:latest").is_err(), "a canceled image is not tagged");

    // Not canceled: built, every step reported in order.
    let progress = Recorder::default();
    let done = strata_pipeline::compose(&req, &progress, &Cancel::new()).unwrap();
    let image = &done.images[0];
    assert_eq!((image.name.as_str(), image.tag.as_str(), image.reference.as_str()), ("tiny", "latest", "tiny:latest"));
    assert!(!image.reused);
    assert!(image.config_digest.starts_with("sha256:") && image.manifest_digest.starts_with("sha256:"));
    assert!(image.packages.iter().any(|p| p.name == "busybox"));
    let events = progress.take();
    let position = |prefix: &str| events.iter().position(|e| e.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in {events:?}"));
    assert!(position("resolve") < position("fetch"));
    assert!(position("fetched") < position("ComposeStarted"));
    assert!(position("ImageStarted") < position("Layer"));
    assert!(position("Layer") < position("ImageDone"));
    assert_eq!(events.last().unwrap(), "ComposeFinished");
    assert_eq!(events.iter().filter(|e| e.starts_with("Layer")).count(), image.layers.len());
    let event = serde_json::to_value(Event::ImageDone { image }).unwrap();
    assert_eq!((event["event"].as_str(), event["image"]["name"].as_str()), (Some("image_done"), Some("tiny")));
    let json = serde_json::to_value(&done).unwrap();
    assert_eq!(json["images"][0]["config_digest"], image.config_digest.as_str());

    // Again: up to date, nothing fetched or built.
    let again = strata_pipeline::compose(&req, &progress, &Cancel::new()).unwrap();
    assert!(again.images[0].reused);
    assert_eq!(again.images[0].manifest_digest, image.manifest_digest);
    assert_eq!(progress.take(), ["resolve [\"tiny\"]", "repo base", "solve tiny", "resolved"]);
}
