//! Resumable pushes against a real registry (distribution 2.8) behind a TCP proxy that cuts
//! connections in the middle of a chunk: the upload goes on from what the registry has
//! (in the same push, and in a later push through the store's upload record), a registry
//! that refuses the damaged session gets the blob afresh, and a tampered record is never
//! believed.

mod common;

use common::proxy::{Forward, Proxy};
use common::{build_image, client, new_store, noise, quick_retry, skopeo_digest, Auth, Registry};
use std::path::{Path, PathBuf};
use std::time::Duration;
use strata_oci::store::Store;
use strata_registry::{BlobKind, BlobTransfer, Client, ClientConfig, Credentials, PushOptions, Pushed, Reference, RetryPolicy};

const CHUNK: u64 = 64 * 1024;

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn chunked() -> PushOptions<'static> {
    PushOptions { chunk_size: CHUNK, ..PushOptions::default() }
}

/// A client for `host` that gives up at the first failure: a push that dies mid-blob, as a
/// killed one does, leaving its session and record behind.
fn no_retry_client(host: &str) -> Client {
    let mut config = ClientConfig::default().insecure(host);
    config.retry = RetryPolicy { backoff: Vec::new(), ..quick_retry() };
    Client::new(config)
}

fn layer(p: &Pushed) -> &BlobTransfer {
    p.blobs.iter().find(|b| b.kind == BlobKind::Layer).unwrap()
}

/// The store's upload records (and lock files).
fn records(store: &Store) -> Vec<PathBuf> {
    let dir = store.root().join("strata/uploads");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    v.sort();
    v
}

fn the_record(store: &Store) -> (PathBuf, serde_json::Value) {
    let json: Vec<PathBuf> = records(store).into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    assert_eq!(json.len(), 1, "one upload record: {json:?}");
    let v = serde_json::from_slice(&std::fs::read(&json[0]).unwrap()).unwrap();
    (json[0].clone(), v)
}

/// A one-layer image whose layer (about 1 MB, incompressible) goes up in ~16 chunks.
fn big_image(dir: &Path) -> (Store, strata_oci::oci_spec::image::Descriptor) {
    let store = new_store(dir, "s");
    let built = build_image(&store, "big:1", "amd64", &[("data", noise(1_000_000, 11))]);
    (store, built)
}

/// The push went up with the store's manifest digest, and skopeo (on the registry itself,
/// not through the proxy) sees it under `path`.
fn assert_remote(reg: &Registry, path: &str, pushed: &Pushed, built: &strata_oci::oci_spec::image::Descriptor) {
    assert_eq!(&pushed.digest, built.digest(), "the remote digest is the store's");
    assert_eq!(skopeo_digest(&format!("{}/{path}", reg.host())), built.digest().to_string());
}

fn posts(reg: &Registry, repo: &str) -> usize {
    reg.log().matches(&format!("\"POST /v2/{repo}/blobs/uploads/")).count()
}

#[test]
fn a_connection_cut_mid_chunk_resumes_where_the_registry_left_off() {
    let reg = Registry::start(Auth::None);
    let proxy = Proxy::start(&reg.host(), Forward::Buffered, None);
    let dir = tempfile::tempdir().unwrap();
    let (store, built) = big_image(dir.path());
    // Halfway through the first chunk (the registry then has nothing: distribution's
    // `Range: 0-0`), a quarter into the fourth, a quarter into the ninth.
    proxy.cut_after(CHUNK / 2);
    proxy.cut_after(3 * CHUNK + CHUNK / 4);
    proxy.cut_after(5 * CHUNK + CHUNK / 4);
    let remote = r(&format!("{}/strata/resume:1", proxy.host()));
    let t0 = std::time::Instant::now();
    let log = |e: &strata_registry::BlobEvent<'_>| {
        if !matches!(e, strata_registry::BlobEvent::Bytes { .. }) {
            println!("{:?} {e:?}", t0.elapsed());
        }
    };
    let opts = PushOptions { progress: Some(&log), ..chunked() };
    let mut config = ClientConfig::default().insecure(&proxy.host());
    config.retry = RetryPolicy { backoff: vec![Duration::from_millis(10); 3], ..quick_retry() };
    let pushed = Client::new(config).push(&store, "big:1", &remote, &opts).unwrap();

    assert_eq!(proxy.cuts_done(), 3);
    assert_remote(&reg, "strata/resume:1", &pushed, &built);
    let l = layer(&pushed);
    assert!(l.size > 12 * CHUNK, "the layer spans many chunks: {}", l.size);
    // Resumed, not restarted: the blob once, plus the cut-off parts of three chunks.
    let through = proxy.patch_bytes();
    println!("layer {} bytes, {} through the proxy, {} counted by the client", l.size, through, l.sent);
    assert!(through >= l.size && through < l.size + 2 * CHUNK, "{through} bytes for a {}-byte layer", l.size);
    // The client counts what it handed to the socket: whole chunks, cut or not.
    assert!(l.sent >= l.size && l.sent <= l.size + 3 * CHUNK, "{}", l.sent);
    assert_eq!(l.resumed_from, None, "resumed within the push, not from a record");
    // One upload session for the layer and one for the config: no new session after a cut.
    assert_eq!(posts(&reg, "strata/resume"), 2, "{}", reg.log());
    assert!(records(&store).is_empty(), "the record goes once the blob is in: {:?}", records(&store));
}

#[test]
fn a_registry_that_kept_part_of_a_cut_chunk_gets_the_blob_afresh() {
    // Distribution keeps the bytes of a cut PATCH, so its session no longer matches the
    // offset signed into the upload URL; it refuses (and cancels) the session. The push
    // must notice and send the blob again in a new session.
    let reg = Registry::start(Auth::None);
    let proxy = Proxy::start(&reg.host(), Forward::Streaming, None);
    let dir = tempfile::tempdir().unwrap();
    let (store, built) = big_image(dir.path());
    proxy.cut_after(4 * CHUNK + 1000);
    let remote = r(&format!("{}/strata/afresh:1", proxy.host()));
    let pushed = client(&proxy.host(), Credentials::none())
        .push(&store, "big:1", &remote, &chunked())
        .unwrap_or_else(|e| panic!("{e}\n{}", reg.log()));

    assert_eq!(proxy.cuts_done(), 1);
    assert_remote(&reg, "strata/afresh:1", &pushed, &built);
    let l = layer(&pushed);
    assert!(proxy.patch_bytes() >= l.size + 4 * CHUNK + 1000, "{}", proxy.patch_bytes());
    assert!(reg.log().contains("upload resumed at wrong off"), "distribution refused the session:\n{}", reg.log());
    // Config, layer, layer again (once more should the retry race the registry's write of
    // the cut chunk's bytes).
    assert!((3..=4).contains(&posts(&reg, "strata/afresh")), "{}", reg.log());
    assert!(records(&store).is_empty());
}

#[test]
fn a_later_push_resumes_the_session_a_failed_one_recorded() {
    let reg = Registry::start(Auth::None);
    let proxy = Proxy::start(&reg.host(), Forward::Buffered, None);
    let dir = tempfile::tempdir().unwrap();
    let (store, built) = big_image(dir.path());
    let remote = r(&format!("{}/strata/later:1", proxy.host()));

    proxy.cut_after(5 * CHUNK + CHUNK / 2);
    let e = no_retry_client(&proxy.host()).push(&store, "big:1", &remote, &chunked()).unwrap_err();
    println!("first push: {e}");
    let (_, record) = the_record(&store);
    assert_eq!(record["offset"], 5 * CHUNK, "the chunks the registry acknowledged: {record}");
    assert_eq!(record["repository"], "strata/later");
    // The tag was never pushed.
    assert_eq!(common::http(&reg.host(), "HEAD", "/v2/strata/later/manifests/1", &[]).0, 404);

    let pushed = client(&proxy.host(), Credentials::none()).push(&store, "big:1", &remote, &chunked()).unwrap();
    assert_remote(&reg, "strata/later:1", &pushed, &built);
    let l = layer(&pushed);
    assert_eq!(l.resumed_from, Some(5 * CHUNK), "{l:?}");
    assert_eq!(l.sent, l.size - 5 * CHUNK, "only what the registry lacked");
    assert!(pushed.blobs.iter().any(|b| b.kind == BlobKind::Config && b.outcome == strata_registry::Outcome::Present), "the config went up in the first push: {:?}", pushed.blobs);
    assert_eq!(posts(&reg, "strata/later"), 2, "no new session for the layer:\n{}", reg.log());
    assert!(records(&store).is_empty(), "record and lock file removed: {:?}", records(&store));
}

#[test]
fn a_tampered_upload_record_is_refused_and_the_blob_sent_afresh() {
    let reg = Registry::start(Auth::None);
    let proxy = Proxy::start(&reg.host(), Forward::Buffered, None);
    let dir = tempfile::tempdir().unwrap();
    let (store, built) = big_image(dir.path());
    // Where a record pointing off the registry would send the blob: must hear nothing.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let trap_host = trap.local_addr().unwrap().to_string();

    type Tamper = Box<dyn Fn(&mut serde_json::Value) -> Vec<u8>>;
    let json = |v: &serde_json::Value| serde_json::to_vec(v).unwrap();
    let variants: Vec<(&str, Tamper)> = vec![
        ("upload URL on another host", Box::new(move |v| {
            let loc = v["location"].as_str().unwrap().replace(&format!("127.0.0.1:{}", proxy_port(v)), &trap_host);
            v["location"] = loc.into();
            json(v)
        })),
        ("credentials in the URL", Box::new(move |v| {
            v["location"] = v["location"].as_str().unwrap().replace("http://", "http://user:pw@").into();
            json(v)
        })),
        ("an unknown key", Box::new(move |v| {
            v["extra"] = 1.into();
            json(v)
        })),
        ("another digest", Box::new(move |v| {
            v["digest"] = format!("sha256:{}", "0".repeat(64)).into();
            json(v)
        })),
        ("an offset past the blob", Box::new(move |v| {
            v["offset"] = (v["size"].as_u64().unwrap() + 1).into();
            json(v)
        })),
        ("another version", Box::new(move |v| {
            v["version"] = 2.into();
            json(v)
        })),
        ("oversized", Box::new(move |v| {
            let mut b = json(v);
            b.extend(std::iter::repeat_n(b' ', 20_000));
            b
        })),
        ("not JSON", Box::new(move |_| b"\x00garbage{".to_vec())),
    ];
    for (i, (what, tamper)) in variants.iter().enumerate() {
        let remote = r(&format!("{}/strata/tamper{i}:1", proxy.host()));
        proxy.cut_after(3 * CHUNK + 100);
        no_retry_client(&proxy.host()).push(&store, "big:1", &remote, &chunked()).unwrap_err();
        let (path, mut record) = the_record(&store);
        std::fs::write(&path, tamper(&mut record)).unwrap();

        let pushed = client(&proxy.host(), Credentials::none()).push(&store, "big:1", &remote, &chunked()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(&pushed.digest, built.digest(), "{what}");
        let l = layer(&pushed);
        assert_eq!(l.resumed_from, None, "{what}: the record must not be believed");
        assert_eq!(l.sent, l.size, "{what}: the blob sent afresh");
        assert!(records(&store).is_empty(), "{what}: {:?}", records(&store));
        assert!(trap.accept().is_err(), "{what}: a connection reached the host the record named");
    }
}

/// The port of the proxy a record's URL names.
fn proxy_port(v: &serde_json::Value) -> u16 {
    url_port(v["location"].as_str().unwrap())
}

fn url_port(u: &str) -> u16 {
    let after = u.split("://").nth(1).unwrap();
    let authority = after.split('/').next().unwrap();
    authority.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn a_malformed_chunk_size_setting_is_refused_by_name() {
    // The setting is read from the environment; a child process keeps it away from the
    // other tests of this binary.
    if std::env::var_os("STRATA_CHUNK_ENV_CHILD").is_some() {
        let dir = tempfile::tempdir().unwrap();
        let store = new_store(dir.path(), "s");
        build_image(&store, "a:1", "amd64", &[]);
        let e = client("127.0.0.1:9", Credentials::none()).push(&store, "a:1", &r("127.0.0.1:9/x/a:1"), &PushOptions::default()).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("STRATA_PUSH_CHUNK_SIZE") && text.contains("12Q") && text.contains("K, M or G"), "{text}");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_malformed_chunk_size_setting_is_refused_by_name", "--nocapture"])
        .env("STRATA_CHUNK_ENV_CHILD", "1")
        .env("STRATA_PUSH_CHUNK_SIZE", "12Q")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("1 passed"), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
}
