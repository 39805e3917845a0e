//! One leased build, start to end: heartbeat and log threads beside the work, the work
//! itself (checkout, compose or build, push, verify, record), and the report.

use crate::source::{checkout, hex_sha256};
use crate::WorkerConfig;
use std::io::{BufRead, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strata_client::{BaseImage, BuildResult, Complete, Fail, ImageOutput, Lease};
use strata_oci::store::Store;
use strata_registry::{Client as Registry, ClientConfig, Credentials, Platform, PushOptions, Reference};

/// How a build stops short.
#[derive(Debug)]
pub enum JobEnd {
    Failed(String),
    /// The server said stop (cancel or timeout), with its reason.
    Stopped(String),
    /// The lease is gone: someone else owns the build now; report nothing.
    Lost,
}

pub struct Job<'a> {
    pub config: &'a WorkerConfig,
    lease: &'a Lease,
    id: i64,
    log: Arc<Mutex<String>>,
    stop: Arc<Mutex<Option<JobEnd>>>,
    stopping: Arc<AtomicBool>,
}

impl Job<'_> {
    pub fn log(&self, text: &str) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push_str(text);
    }

    fn check(&self) -> Result<(), JobEnd> {
        match self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(end) => Err(end),
            None => Ok(()),
        }
    }

    /// Runs `cmd` in its own process group, its stderr (and stdout, unless captured)
    /// into the log; kills the whole group when the server says stop. Returns stdout
    /// when `capture`.
    fn run(&self, cmd: &mut Command, what: &str, capture: bool) -> Result<String, JobEnd> {
        use std::os::unix::process::CommandExt;
        self.check()?;
        cmd.process_group(0).stdout(Stdio::piped()).stderr(Stdio::piped());
        // A worker killed outright takes its build with it (and, through the sandbox's own
        // parent-death handling, the build's RUN processes); the lease expires and another
        // worker starts the build over.
        // SAFETY: prctl only, between fork and exec.
        unsafe {
            cmd.pre_exec(|| rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL)).map_err(std::io::Error::from));
        }
        let mut child = cmd.spawn().map_err(|e| JobEnd::Failed(format!("{what}: starting {:?}: {e}", cmd.get_program())))?;
        let pgid = rustix::process::Pid::from_child(&child);
        let pump = |r: Box<dyn Read + Send>, log: Arc<Mutex<String>>| {
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(r).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                    l.push_str(&line);
                    l.push('\n');
                }
            })
        };
        let err_thread = pump(Box::new(child.stderr.take().expect("piped")), self.log.clone());
        let mut stdout = child.stdout.take().expect("piped");
        let out_thread = if capture {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = stdout.read_to_string(&mut s);
                s
            })
        } else {
            let t = pump(Box::new(stdout), self.log.clone());
            std::thread::spawn(move || {
                let _ = t.join();
                String::new()
            })
        };
        // A thread waits for the child, so its end is seen at once (a build is a chain
        // of short processes: polling every 100 ms cost a tenth of a second each); this
        // thread watches for the server's stop meanwhile. The child is reaped only by
        // that thread, so its pid cannot be reused while this one may still signal it.
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = loop {
            if self.stopping.load(Ordering::Relaxed) {
                // The child alone first: its death is what the sandbox's supervisor
                // watches (a parent-death signal) to kill the runtime and the program in
                // their own namespaces — SIGKILL to the group at once would kill the
                // supervisor before it can. Then the group, for anything left (git).
                let ended = rx.try_recv().is_ok();
                if let Some(p) = rustix::process::Pid::from_raw(pid as i32).filter(|_| !ended) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
                let _ = waiter.join();
                std::thread::sleep(Duration::from_millis(300));
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
                let _ = err_thread.join();
                let _ = out_thread.join();
                return Err(self.check().err().unwrap_or(JobEnd::Stopped("stopped".into())));
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Ok(s)) => break s,
                Ok(Err(e)) => return Err(JobEnd::Failed(format!("{what}: {e}"))),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Err(JobEnd::Failed(format!("{what}: lost track of the process"))),
            }
        };
        let _ = waiter.join();
        let _ = err_thread.join();
        let out = out_thread.join().unwrap_or_default();
        if !status.success() {
            return Err(JobEnd::Failed(format!("{what} failed ({status}); see the log")));
        }
        Ok(out)
    }

    pub fn run_logged(&self, cmd: &mut Command, what: &str) -> Result<String, JobEnd> {
        self.run(cmd, what, false)
    }
}

/// Runs the leased build and reports how it ended.
pub fn run(config: &WorkerConfig, lease: &Lease) {
    let id = lease.build.id;
    let job = Job {
        config,
        lease,
        id,
        log: Arc::new(Mutex::new(String::new())),
        stop: Arc::new(Mutex::new(None)),
        stopping: Arc::new(AtomicBool::new(false)),
    };
    let done = Arc::new(AtomicBool::new(false));
    // Heartbeats: often enough that a cancel reaches the build's processes within ~2 s.
    let every = Duration::from_secs(lease.heartbeat_seconds.clamp(1, 2) as u64);
    let beat = {
        let (client, secret, stop, stopping, done) = (config.client.clone(), lease.lease.clone(), job.stop.clone(), job.stopping.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                sleep_unless(&done, every);
                if done.load(Ordering::Relaxed) {
                    break;
                }
                let end = match client.heartbeat(id, &secret) {
                    Ok(h) if h.stop => Some(JobEnd::Stopped(h.reason.unwrap_or_else(|| "stopped by the server".into()))),
                    Ok(_) => None,
                    Err(e) if e.status() == Some(409) => Some(JobEnd::Lost),
                    Err(e) => {
                        tracing::warn!("build {id}: heartbeat: {e}");
                        None
                    }
                };
                if let Some(end) = end {
                    *stop.lock().unwrap_or_else(|e| e.into_inner()) = Some(end);
                    stopping.store(true, Ordering::Relaxed);
                    break;
                }
            }
        })
    };
    let shipper = {
        let (client, secret, log, done) = (config.client.clone(), lease.lease.clone(), job.log.clone(), done.clone());
        std::thread::spawn(move || loop {
            let finished = done.load(Ordering::Relaxed);
            ship(&client, id, &secret, &log);
            if finished {
                break;
            }
            sleep_unless(&done, Duration::from_millis(300));
        })
    };
    job.log(&format!("build {id} attempt {} on {}\n", lease.build.attempts, config.name));
    let held = hold_store(&job);
    let outcome = work(&job);
    drop(held);
    if let Err(JobEnd::Failed(reason)) = &outcome {
        job.log(&format!("error: {reason}\n"));
    }
    done.store(true, Ordering::Relaxed);
    let _ = beat.join();
    let _ = shipper.join();
    let client = &config.client;
    let secret = lease.lease.clone();
    // A server restarting must not cost a finished build: transport errors are retried
    // for a while (the lease may expire meanwhile; then the answer is 409 and the build
    // runs again elsewhere, which is safe). An answer from the server is final.
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let mut pause = Duration::from_millis(500);
    loop {
        let reported = match &outcome {
            Ok(result) => client.complete(id, &Complete { lease: secret.clone(), result: result.clone() }).map(drop),
            Err(JobEnd::Failed(reason)) => client.fail(id, &Fail { lease: secret.clone(), reason: reason.clone(), canceled: false }).map(drop),
            Err(JobEnd::Stopped(reason)) => client.fail(id, &Fail { lease: secret.clone(), canceled: reason == "canceled", reason: reason.clone() }).map(drop),
            Err(JobEnd::Lost) => Ok(()),
        };
        match reported {
            Err(e) if e.status().is_none() && std::time::Instant::now() < deadline => {
                tracing::warn!("build {id}: reporting the outcome (retrying): {e}");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(10));
            }
            Err(e) => {
                tracing::warn!("build {id}: reporting the outcome: {e}");
                break;
            }
            Ok(()) => break,
        }
    }
    let _ = std::fs::remove_dir_all(config.work_dir.join("builds").join(format!("{id}-{}", lease.build.attempts)));
}

pub(crate) fn sleep_unless(done: &AtomicBool, total: Duration) {
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    while waited < total && !done.load(Ordering::Relaxed) {
        std::thread::sleep(step);
        waited += step;
    }
}

/// Sends what the log gathered since the last call (kept for the next call if the
/// server cannot be reached).
fn ship(client: &strata_client::Client, id: i64, secret: &str, log: &Mutex<String>) {
    let text = std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner()));
    if text.is_empty() {
        return;
    }
    // Under the server's body limit, split at character boundaries.
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let mut cut = rest.len().min(1 << 20);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        match client.append_log(id, secret, &rest[..cut]) {
            Ok(_) => rest = &rest[cut..],
            Err(e) if e.status().is_some() => return, // lease gone or log full: drop it
            Err(_) => {
                let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                let newer = std::mem::take(&mut *l);
                *l = format!("{rest}{newer}");
                return;
            }
        }
    }
}

/// The build's hold on the store (gc.rs): taken for the whole build, so no gc runs until
/// every blob the build wrote or reused is tagged — or pushed and untagged. While a gc
/// runs the build waits for it (heartbeats go on). A lock that cannot be taken at all is
/// no reason to fail a build: a gc cannot take it either, so none runs.
fn hold_store(job: &Job) -> Option<crate::gc::Held> {
    let gate = crate::gc::Gate::new(&job.config.store);
    let held = gate.build_waiting(|| job.log("waiting for the garbage collection of the store to end\n"));
    held.map_err(|e| tracing::warn!("build {}: locking the store against garbage collection: {e}", job.id)).ok()
}

fn work(job: &Job) -> Result<BuildResult, JobEnd> {
    let mut unique = None;
    let outcome = build_and_push(job, &mut unique);
    if let Some((local, name)) = unique {
        retire_unique_tag(job, &local, &name, outcome.is_ok());
    }
    outcome
}

/// A Dockerfile build is stored as `NAME:build-ID` (two slots building one image never
/// share a tag between build and push); kept, such tags would keep every build's blobs
/// from the gc forever. Once the build is over the unique tag goes, and the newest
/// successful build stays as `NAME:last-build`: its layers keep the step cache warm for
/// the image's next build. (Composed images need none of this: a compose re-tags the
/// spec's references, leaving the previous build unreferenced by itself.)
fn retire_unique_tag(job: &Job, local: &str, name: &str, built: bool) {
    use strata_oci::reference::ImageRef;
    // No store: the build failed before writing anything.
    let Ok(store) = Store::open(&job.config.store) else { return };
    let retired = (|| -> Result<(), String> {
        let unique = ImageRef::parse(local).map_err(|e| e.to_string())?;
        if built {
            let last = ImageRef::parse(&format!("{name}:last-build")).map_err(|e| e.to_string())?;
            store.tag(local, &last).map_err(|e| format!("tagging {last}: {e}"))?;
        }
        store.untag(&unique).map(drop).map_err(|e| format!("untagging {unique}: {e}"))
    })();
    if let Err(e) = retired {
        job.log(&format!("warning: {e}\n"));
        tracing::warn!("build {}: {e}", job.id);
    }
}

fn build_and_push(job: &Job, unique: &mut Option<(String, String)>) -> Result<BuildResult, JobEnd> {
    let b = &job.lease.build;
    let registry = job.lease.registry.clone().ok_or_else(|| JobEnd::Failed("the server has no --registry to push to".into()))?;
    let registry_host = registry.split('/').next().unwrap_or_default().to_string();
    let commit = b.source.commit.clone().ok_or_else(|| JobEnd::Failed("the build has no recorded commit".into()))?;
    let dir = job.config.work_dir.join("builds").join(format!("{}-{}", job.id, b.attempts));
    let _ = std::fs::remove_dir_all(&dir);
    checkout(job, &b.source.url, &commit, &dir)?;
    let src = match &b.source.path {
        Some(p) => dir.join(p),
        None => dir.clone(),
    };
    let cache = job.config.work_dir.join("cache");
    let mut insecure: Vec<String> = job.config.insecure_registries.clone();
    if job.lease.insecure_registry {
        insecure.push(registry_host.clone());
    }
    let store_arg = |c: &mut Command| {
        c.arg("--store").arg(&job.config.store).arg("--cache-dir").arg(&cache);
    };
    let mut result = BuildResult { strata_version: env!("CARGO_PKG_VERSION").to_string(), ..BuildResult::default() };
    // (local store reference, image name, base) of each built image.
    let mut built: Vec<(String, String, Option<BaseImage>)> = Vec::new();
    // Composed images: their content digests and repositories, and the lock itself.
    let mut facts = crate::spec::Facts::new();
    let mut locked: Option<strata_lock::Lockfile> = None;
    if src.join("strata.json").is_file() {
        result.kind = "spec".into();
        result.input_digest = format!("sha256:{}", hex_sha256(&read(&src.join("strata.json"))?));
        let mut cmd = Command::new(&job.config.strata_exe);
        cmd.arg("compose").arg(src.join("strata.json")).arg("--json");
        if let Some(lock) = b.rebuild.as_ref().and_then(|r| r.lock.as_ref()) {
            // A rebuild composes exactly what its plan resolved, whatever the
            // repositories say by now (and whatever lock the commit has).
            // Whatever the commit has at that path goes first — a symlink in a hostile
            // repository must not make the worker write through it.
            let path = src.join("strata.lock");
            let _ = std::fs::remove_file(&path);
            let written = std::fs::OpenOptions::new().write(true).create_new(true).open(&path).and_then(|mut f| std::io::Write::write_all(&mut f, lock.as_bytes()));
            written.map_err(|e| JobEnd::Failed(format!("writing the planned lock: {e}")))?;
            cmd.arg("--locked");
            job.log("composing the planned lock (--locked)\n");
        } else {
            // The repositories as they are now, not as this worker's metadata cache last
            // saw them (up to metadata_expire ago): what the service registers is current.
            cmd.arg("--refresh");
        }
        store_arg(&mut cmd);
        for i in &b.images {
            cmd.arg("--image").arg(i);
        }
        job.log("strata compose\n");
        let out = job.run(&mut cmd, "strata compose", true)?;
        let doc: serde_json::Value = serde_json::from_str(&out).map_err(|e| JobEnd::Failed(format!("strata compose printed no JSON: {e}")))?;
        for (name, img) in doc["images"].as_object().into_iter().flatten() {
            let local = img["reference"].as_str().map_or_else(|| format!("{name}:latest"), str::to_string);
            built.push((local, name.clone(), None));
        }
        let lock_path = src.join("strata.lock");
        let bytes = read(&lock_path)?;
        result.lock_digest = Some(format!("sha256:{}", hex_sha256(&bytes)));
        let lock = strata_lock::Lockfile::read(&lock_path).map_err(|e| JobEnd::Failed(e.to_string()))?;
        facts = crate::spec::facts(&src.join("strata.json"), &lock, &dir).map_err(JobEnd::Failed)?;
        locked = Some(lock);
    } else if src.join("Dockerfile").is_file() {
        result.kind = "dockerfile".into();
        result.input_digest = format!("sha256:{}", hex_sha256(&read(&src.join("Dockerfile"))?));
        let [name] = b.images.as_slice() else {
            return Err(JobEnd::Failed(format!("a Dockerfile build names exactly one image (--image NAME); this one names {}", b.images.len())));
        };
        let local = format!("{name}:build-{}", job.id);
        *unique = Some((local.clone(), name.clone()));
        let mut cmd = Command::new(&job.config.strata_exe);
        // Without --json: its progress (steps, RUN output) is the build's log.
        // --pull: a FROM in a registry is resolved to the digest it has now and built on
        // that digest (recorded as the base), never on an older pull in this store.
        cmd.arg("build").arg(&src).arg("-t").arg(&local).arg("--pull");
        // What the policy granted at submit.
        if b.network.as_deref() == Some("host") {
            cmd.args(["--network", "host"]);
        }
        if !b.remote_content {
            cmd.arg("--no-remote-content");
        }
        if let Some((from, over)) = b.rebuild.as_ref().and_then(|r| Some((r.base_from.as_ref()?, r.base_override.as_ref()?))) {
            // A rebuild goes on its parent's rebuilt image, by digest, whatever tag the
            // Dockerfile's FROM names.
            cmd.arg("--build-context").arg(format!("{from}=docker-image://{over}"));
            job.log(&format!("building FROM {from} on {over}\n"));
        }
        store_arg(&mut cmd);
        for h in &insecure {
            cmd.arg("--insecure-registry").arg(h);
        }
        job.log("strata build\n");
        job.run_logged(&mut cmd, "strata build")?;
        let base = base_of(&job.config.store, &local)?;
        built.push((local, name.clone(), base));
    } else {
        return Err(JobEnd::Failed(format!("{}: neither strata.json nor a Dockerfile", b.source.path.as_deref().unwrap_or("the repository root"))));
    }
    job.check()?;
    let store = Store::open(&job.config.store).map_err(|e| JobEnd::Failed(format!("opening the store {}: {e}", job.config.store.display())))?;
    let mut rc = ClientConfig { credentials: Credentials::from_default_files().map_err(|e| JobEnd::Failed(format!("registry credentials: {e}")))?, ..ClientConfig::default() };
    for h in &insecure {
        rc = rc.insecure(h);
    }
    let reg = Registry::new(rc);
    for (local, name, base) in built {
        job.check()?;
        let mut out = push_one(job, &reg, &store, &registry, &local, &name, base)?;
        if let Some(img) = locked.as_ref().and_then(|l| l.images.get(&name)) {
            // The rpmdb of what was pushed against what the lock says: a compose that
            // silently missed an update never counts as built.
            crate::spec::verify(img, &out.packages).map_err(|e| JobEnd::Failed(format!("{name}: {e}")))?;
        }
        if let Some((content, repos)) = facts.remove(&name) {
            out.content = Some(content);
            out.repos = repos;
        }
        result.images.push(out);
    }
    Ok(result)
}

/// The base a built image records in its manifest annotations (as `strata build` writes
/// them: the name FROM used and the digest it resolved to).
fn base_of(store: &Path, local: &str) -> Result<Option<BaseImage>, JobEnd> {
    let store = Store::open(store).map_err(|e| JobEnd::Failed(format!("opening the store {}: {e}", store.display())))?;
    let img = store.resolve(local).map_err(|e| JobEnd::Failed(format!("{local} is not in the store after the build: {e}")))?;
    let notes = img.manifest.annotations().clone().unwrap_or_default();
    Ok(notes.get("org.opencontainers.image.base.digest").map(|d| BaseImage {
        name: notes.get("org.opencontainers.image.base.name").cloned().unwrap_or_default(),
        digest: d.clone(),
    }))
}

fn read(p: &Path) -> Result<Vec<u8>, JobEnd> {
    std::fs::read(p).map_err(|e| JobEnd::Failed(format!("{}: {e}", p.display())))
}

/// Pushes one image under its unique tag (and `latest` unless scratch), reads each
/// pushed digest back, and gathers its record.
fn push_one(job: &Job, reg: &Registry, store: &Store, registry: &str, local: &str, name: &str, base: Option<BaseImage>) -> Result<ImageOutput, JobEnd> {
    let b = &job.lease.build;
    let img = store.resolve(local).map_err(|e| JobEnd::Failed(format!("{local} is not in the store after the build: {e}")))?;
    let unique = if b.scratch { format!("scratch-{}", job.id) } else { format!("build-{}", job.id) };
    let mut tags = vec![unique.clone()];
    if !b.scratch {
        // A rebuild moves its own floating tag (testing); `strata promote` moves latest.
        tags.push(b.rebuild.as_ref().map_or_else(|| "latest".to_string(), |r| r.push_tag.clone()));
    }
    let mut digest = String::new();
    let mut first: Option<(Vec<u8>, String)> = None;
    for tag in &tags {
        let dest_text = format!("{registry}/{name}:{tag}");
        let dest = Reference::parse(&dest_text).map_err(|e| JobEnd::Failed(format!("{dest_text}: {e}")))?;
        job.log(&format!("pushing {dest_text}\n"));
        let pushed_digest = match &first {
            // Further tags of the same manifest: its blobs are there, so the manifest alone.
            Some((bytes, media_type)) => reg.push_manifest(&dest, bytes, media_type).map_err(|e| JobEnd::Failed(format!("pushing {dest_text}: {e}")))?,
            None => {
                let pushed = reg.push(store, local, &dest, &PushOptions::default()).map_err(|e| JobEnd::Failed(format!("pushing {dest_text}: {e}")))?;
                if !pushed.converted {
                    let bytes = store.read_blob(&pushed.digest).map_err(|e| JobEnd::Failed(format!("reading the manifest of {local}: {e}")))?;
                    first = Some((bytes, pushed.media_type.clone()));
                }
                pushed.digest
            }
        };
        // `built` only once the registry itself says this tag is this manifest.
        let back = reg.resolve(&dest, &Platform::default()).map_err(|e| JobEnd::Failed(format!("reading {dest_text} back: {e}")))?;
        if back.digest != pushed_digest {
            return Err(JobEnd::Failed(format!("{dest_text}: pushed {pushed_digest} but the registry answers {}", back.digest)));
        }
        job.log(&format!("pushed {dest_text} {pushed_digest}\n"));
        digest = pushed_digest.to_string();
    }
    let packages = strata_compose::installed_packages(store, &img).map(|p| p.iter().map(ToString::to_string).collect()).unwrap_or_default();
    Ok(ImageOutput {
        name: name.to_string(),
        reference: format!("{registry}/{name}:{unique}@{digest}"),
        manifest_digest: digest,
        config_digest: img.manifest.config().digest().to_string(),
        tags,
        base,
        packages,
        ..ImageOutput::default()
    })
}
