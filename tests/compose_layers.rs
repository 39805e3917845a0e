//! Layering and caching on the corpus fleet: shared layers are one blob in every image that
//! uses them; a second compose does nothing and writes nothing; `--check` says what an
//! update changes; the update rebuilds exactly the layers holding updated packages (plus
//! the top layer); and at every step the stacked layers unpack (umoci) to exactly the tree
//! a single-layer compose of the same lock gives.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

struct Fleet {
    dir: tempfile::TempDir,
}

impl Fleet {
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn strata(&self) -> Command {
        let mut c = strata(&self.path().join("cache"));
        c.env("STRATA_STAGING_DIR", self.path().join("staging"));
        c
    }
    /// `corpus_spec` as `DIR/images.json` (overwriting: the lock beside it stays), with
    /// `layers` settings if given.
    fn spec(&self, dir: &str, corpus_spec: &str, layers: Option<Value>) -> PathBuf {
        let d = self.path().join(dir);
        std::fs::create_dir_all(&d).unwrap();
        let tmp = tempfile::tempdir_in(self.path()).unwrap();
        let copied = copy_corpus_spec(corpus_spec, tmp.path());
        let mut v = read_json(&copied);
        if let Some(l) = layers {
            v["layers"] = l;
        }
        write_json(&d.join("images.json"), &v)
    }
    #[track_caller]
    fn compose(&self, spec: &Path, store: &str, extra: &[&str]) -> Value {
        let out = run(self.strata().arg("compose").arg(spec).arg("--store").arg(self.path().join(store)).arg("--json").args(extra));
        assert_ok("strata compose", &out);
        serde_json::from_slice(&out.stdout).unwrap()
    }
    /// The unpacked tree of each image, two unpacks at a time, on a tmpfs when there is one
    /// (umoci syncs every file: on a disk that is most of its time).
    fn trees(&self, store: &str, images: &[&str]) -> BTreeMap<String, BTreeMap<String, String>> {
        let shm = Path::new("/dev/shm");
        let scratch = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir_in(self.path()) }.unwrap();
        let store = self.path().join(store);
        let next = std::sync::Mutex::new(images.iter());
        let out = std::sync::Mutex::new(BTreeMap::new());
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| loop {
                    let Some(name) = next.lock().unwrap().next().copied() else { break };
                    let into = scratch.path().join(name);
                    let t = tree(&umoci_unpack(&store, &format!("{name}:latest"), &into));
                    std::fs::remove_dir_all(&into).unwrap();
                    out.lock().unwrap().insert(name.to_string(), t);
                });
            }
        });
        out.into_inner().unwrap()
    }
}

/// Image → layer id → digest, from compose's JSON.
fn layer_digests(composed: &Value) -> BTreeMap<String, BTreeMap<String, String>> {
    composed["images"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, img)| {
            let layers = img["layers"].as_array().unwrap().iter().map(|l| (l["id"].as_str().unwrap().to_string(), l["digest"].as_str().unwrap().to_string())).collect();
            (name.clone(), layers)
        })
        .collect()
}

/// Layer id → NEVRAs of its packages in `image`, from a lock's plan.
fn layer_nevras(lock: &Value, image: &str) -> BTreeMap<String, BTreeSet<String>> {
    let pkgs = image_packages(lock, image);
    lock["layers"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["images"].as_array().unwrap().iter().any(|i| i == image))
        .map(|l| {
            let keys: BTreeSet<&str> = l["packages"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
            let nevras = pkgs.iter().filter(|p| keys.contains(format!("{}.{}", p.name, p.arch).as_str())).map(|p| p.nevra()).collect();
            (l["id"].as_str().unwrap().to_string(), nevras)
        })
        .collect()
}

/// Every file under `dirs` with its size and mtime: what "writes nothing" is checked on.
fn snapshot(dirs: &[PathBuf]) -> BTreeMap<PathBuf, (u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack: Vec<PathBuf> = dirs.to_vec();
    while let Some(p) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else { continue };
        out.insert(p.clone(), (md.size(), md.mtime(), md.mtime_nsec()));
        if md.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out
}

#[track_caller]
fn assert_unchanged(what: &str, before: &BTreeMap<PathBuf, (u64, i64, i64)>, after: &BTreeMap<PathBuf, (u64, i64, i64)>) {
    let changed: Vec<String> = before
        .keys()
        .chain(after.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .take(10)
        .map(|k| format!("  {}: {:?} -> {:?}", k.display(), before.get(k), after.get(k)))
        .collect();
    assert!(changed.is_empty(), "{what} wrote something:\n{}", changed.join("\n"));
}

/// The `layers` options are part of the plan: changing them replans on the next resolve,
/// and a `--locked` compose refuses the old plan, saying why.
#[test]
fn changed_layer_options_replan() {
    let f = Fleet { dir: tempfile::tempdir().unwrap() };
    let spec = f.spec("auto", "images.json", None);
    let lock = f.path().join("auto/images.lock");
    assert_ok("strata resolve", &run(f.strata().arg("resolve").arg(&spec)));
    let default_plan = read_json(&lock)["layers"].clone();
    assert_eq!(default_plan["cost"], serde_json::json!({"bandwidth_bits": 250_000_000, "per_layer_us": 25_000}), "the lan profile is the default");

    let spec = f.spec("auto", "images.json", Some(serde_json::json!({"per_layer": "0ms"})));
    let out = run(f.strata().arg("compose").arg(&spec).arg("--locked").arg("--store").arg(f.path().join("store")));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("other layer settings"), "{}", stderr(&out));
    assert_ok("strata resolve", &run(f.strata().arg("resolve").arg(&spec)));
    let bytes_only = read_json(&lock)["layers"].clone();
    assert!(bytes_only.get("cost").is_none(), "a plan without the model records no cost: {bytes_only}");
    let count = |p: &Value| p["layers"].as_array().unwrap().len();
    assert!(count(&bytes_only) > count(&default_plan) * 2, "bytes only: {} layers, the model: {}", count(&bytes_only), count(&default_plan));

    let spec = f.spec("auto", "images.json", Some(serde_json::json!({"profile": "wan", "bandwidth": "10Mbit"})));
    assert_ok("strata resolve", &run(f.strata().arg("resolve").arg(&spec)));
    let slow = read_json(&lock)["layers"].clone();
    assert_eq!(slow["cost"], serde_json::json!({"bandwidth_bits": 10_000_000, "per_layer_us": 100_000}), "the profile's per_layer, the spec's bandwidth");
    assert_ok("strata resolve --locked", &run(f.strata().arg("resolve").arg(&spec).arg("--locked")));
}

#[test]
fn fleet_layers_are_shared_stable_through_an_update_and_stack_to_the_installed_root() {
    let f = Fleet { dir: tempfile::tempdir().unwrap() };
    let spec = f.spec("auto", "images.json", None);
    let single = f.spec("single", "images.json", Some(serde_json::json!({"mode": "single"})));
    let names = image_names(&spec);

    let t = std::time::Instant::now();
    // 1. The release, layered.
    let first = f.compose(&spec, "store", &["--report"]);
    let lock_v1 = read_json(&f.path().join("auto/images.lock"));
    let digests = layer_digests(&first);
    for layer in lock_v1["layers"]["layers"].as_array().unwrap() {
        let users: Vec<&str> = layer["images"].as_array().unwrap().iter().map(|i| i.as_str().unwrap()).collect();
        let id = layer["id"].as_str().unwrap();
        let blobs: BTreeSet<&String> = users.iter().map(|u| &digests[*u][id]).collect();
        assert_eq!(blobs.len(), 1, "layer {id} is one blob in {users:?}, got {blobs:?}");
    }
    let shared_by_all = lock_v1["layers"]["layers"].as_array().unwrap().iter().filter(|l| l["images"].as_array().unwrap().len() == names.len()).count();
    assert!(shared_by_all >= 4, "the common base is shared by every image ({shared_by_all} layers)");
    // The cost model merged what does not pay for itself: far fewer layers than packages.
    for n in &names {
        let (layers, packages) = (digests[n].len(), image_packages(&lock_v1, n).len());
        assert!(layers > 4 && layers * 10 < packages * 6, "{n}: {layers} layers for {packages} packages");
    }
    let report = &first["report"];
    let (unique, sum) = (report["unique_layer_bytes"].as_u64().unwrap(), report["sum_of_image_sizes"].as_u64().unwrap());
    assert!(unique * 10 < sum * 6, "sharing stores {unique} of {sum} bytes");

    eprintln!("[{:.1}s] release composed", t.elapsed().as_secs_f64());
    // ... unpacks to exactly what the single-layer build of the same packages gives.
    f.compose(&single, "store-single", &[]);
    // (Two images before the update, all of them after it: umoci takes seconds per image.)
    let some = ["web", "django"];
    let (layered, flat) = (f.trees("store", &some), f.trees("store-single", &some));
    for n in some {
        assert_same_tree(&format!("release {n}: layered vs single layer"), &layered[n], &flat[n]);
    }

    eprintln!("[{:.1}s] release trees compared", t.elapsed().as_secs_f64());
    // 2. Nothing changed: nothing is redone, nothing is written, --check agrees.
    let watched = [f.path().join("store"), f.path().join("cache"), f.path().join("auto")];
    let before = snapshot(&watched);
    let again = f.compose(&spec, "store", &[]);
    for (n, img) in again["images"].as_object().unwrap() {
        assert_eq!(img["reused"], true, "{n} was rebuilt");
    }
    assert_unchanged("a no-op compose", &before, &snapshot(&watched));
    let out = run(f.strata().arg("compose").arg(&spec).arg("--store").arg(f.path().join("store")).arg("--check"));
    assert_ok("compose --check, nothing changed", &out);

    // 3. The security updates (same lock file, so the recorded plan is reused).
    let spec = f.spec("auto", "images-updates.json", None);
    let out = run(f.strata().arg("compose").arg(&spec).arg("--store").arg(f.path().join("store")).arg("--check"));
    assert_eq!(out.status.code(), Some(1), "--check exits 1 when something would change: {}", stderr(&out));
    let said = stdout(&out);
    let (old, new) = (corpus_manifest().get("base", "libssl3"), corpus_manifest().updated_build("libssl3"));
    let change = format!("libssl3 {}.{} (base) -> {}.{} (updates)", old.evr(), old.arch, new.evr(), new.arch);
    assert!(said.contains("web: would be rebuilt") && said.contains(&change), "{said}");
    // (It may fetch the new repo's metadata into the cache: that is how it knows.)
    let kept = [f.path().join("store"), f.path().join("auto/images.lock")];
    let before = snapshot(&kept);
    let out = run(f.strata().arg("compose").arg(&spec).arg("--store").arg(f.path().join("store")).arg("--check"));
    assert_eq!(out.status.code(), Some(1));
    assert_unchanged("compose --check", &before, &snapshot(&kept));

    let second = f.compose(&spec, "store", &["--report"]);
    eprintln!("[{:.1}s] update composed", t.elapsed().as_secs_f64());
    let lock_v2 = read_json(&f.path().join("auto/images.lock"));
    let after = layer_digests(&second);
    let mut rebuilt = 0;
    for n in &names {
        let (old, new) = (layer_nevras(&lock_v1, n), layer_nevras(&lock_v2, n));
        for (id, nevras) in &new {
            if id == "top" || !old.contains_key(id) {
                continue;
            }
            let changed = &old[id] != nevras;
            assert_eq!(digests[n][id] != after[n][id], changed, "{n}: layer {id} ({nevras:?}) changed digest iff its packages changed");
            rebuilt += changed as usize;
        }
        assert_ne!(digests[n]["top"], after[n]["top"], "{n}: the rpmdb changed");
        let update = second["report"]["images"][n]["update_bytes"].as_u64().unwrap();
        let size = second["report"]["images"][n]["size"].as_u64().unwrap();
        assert!(update < size, "{n}: a client with the release pulls {update} of {size} bytes");
    }
    assert!(rebuilt > 0);
    let stable: usize = lock_v1["layers"]["layers"].as_array().unwrap().iter().filter(|l| lock_v2["layers"]["layers"].as_array().unwrap().contains(l)).count();
    assert_eq!(stable, lock_v1["layers"]["layers"].as_array().unwrap().len(), "an update keeps every layer's membership");

    let single = f.spec("single", "images-updates.json", Some(serde_json::json!({"mode": "single"})));
    f.compose(&single, "store-single", &[]);
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    let (layered, flat) = (f.trees("store", &all), f.trees("store-single", &all));
    for n in &names {
        assert_same_tree(&format!("update {n}: layered vs single layer"), &layered[n], &flat[n]);
    }
}
