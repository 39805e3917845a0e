//! Behaviour a real registry does not show on demand, against a scripted stub: corrupt,
//! truncated and resumed downloads, 429 with Retry-After, schema 1, a manifest that does not
//! match the digest it was pulled by, a registry that refuses OCI manifests.

mod common;

use common::stub::{Stub, StubRequest, StubResponse};
use common::{client, new_store, noise, tmp_files};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_oci::oci_spec::image::Digest;
use strata_oci::reference::ImageRef;
use strata_oci::sha256_hex_of;
use strata_registry::{Credentials, Error, ManifestFormat, PullOptions, Reference};

/// A small image as a registry would serve it: manifest, config and one layer.
struct Image {
    manifest: Vec<u8>,
    config: Vec<u8>,
    layer: Vec<u8>,
}

impl Image {
    fn new() -> Image {
        let layer = noise(700_000, 7);
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [sha256_hex_of(b"not checked").to_string()]}
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha256_hex_of(&config).to_string(), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": sha256_hex_of(&layer).to_string(), "size": layer.len()}]
        }))
        .unwrap();
        Image {
            manifest,
            config,
            layer,
        }
    }

    fn layer_digest(&self) -> Digest {
        sha256_hex_of(&self.layer)
    }

    /// Serves `/v2/`, the manifest under `x:1` and its digest, the config, and hands layer
    /// requests to `layer`.
    fn serve(
        self: Arc<Self>,
        layer: impl Fn(&StubRequest, &[u8]) -> StubResponse + Send + Sync + 'static,
    ) -> Stub {
        Stub::start(move |req| {
            let path = req.path();
            let manifest_digest = sha256_hex_of(&self.manifest).to_string();
            if path == "/v2/" {
                StubResponse::new(200, "{}")
            } else if path == "/v2/x/manifests/1"
                || path == format!("/v2/x/manifests/{manifest_digest}")
            {
                StubResponse::new(200, self.manifest.clone())
                    .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            } else if path == format!("/v2/x/blobs/{}", sha256_hex_of(&self.config)) {
                StubResponse::new(200, self.config.clone())
            } else if path == format!("/v2/x/blobs/{}", sha256_hex_of(&self.layer)) {
                layer(req, &self.layer)
            } else {
                StubResponse::new(404, r#"{"errors":[{"code":"NOT_FOUND","message":"no"}]}"#)
            }
        })
    }
}

fn reference(stub: &Stub) -> Reference {
    Reference::parse(&format!("{}/x:1", stub.host())).unwrap()
}

fn tagged() -> PullOptions<'static> {
    PullOptions {
        tags: vec![ImageRef::parse("x:1").unwrap()],
        ..PullOptions::default()
    }
}

#[test]
fn a_corrupt_layer_is_refused_and_never_stored() {
    let img = Arc::new(Image::new());
    let stub = img.clone().serve(|_, layer| {
        let mut bad = layer.to_vec();
        bad[1234] ^= 0x01;
        StubResponse::new(200, bad)
    });
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path(), "s");
    let e = client(&stub.host(), Credentials::none())
        .pull(&reference(&stub), &store, &tagged())
        .unwrap_err();
    match e.root() {
        Error::DigestMismatch {
            what,
            expected,
            actual,
            ..
        } => {
            assert_eq!(*what, "layer");
            assert_eq!(expected, &img.layer_digest().to_string());
            assert_ne!(actual, expected);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains(&format!("{}/x", stub.host())), "{e}");
    assert!(!store.has_blob(&img.layer_digest()), "corrupt blob stored");
    assert!(
        tmp_files(&store).is_empty(),
        "temporary file left: {:?}",
        tmp_files(&store)
    );
    assert!(
        store.list().unwrap().is_empty(),
        "image tagged despite the failure"
    );
    // A digest mismatch is not a transient failure: one request, no retry.
    assert_eq!(stub.requests_to(img.layer_digest().as_ref()).len(), 1);
}

#[test]
fn a_truncated_layer_is_retried_then_refused() {
    let img = Arc::new(Image::new());
    // Announces the whole length and closes half way, ignoring Range requests.
    let stub = img
        .clone()
        .serve(|_, layer| StubResponse::new(200, layer.to_vec()).cut_after(layer.len() / 2));
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path(), "s");
    let e = client(&stub.host(), Credentials::none())
        .pull(&reference(&stub), &store, &tagged())
        .unwrap_err();
    let Error::GaveUp { attempts, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*attempts, 3);
    assert_eq!(stub.requests_to(img.layer_digest().as_ref()).len(), 3);
    assert!(!store.has_blob(&img.layer_digest()));
    assert!(tmp_files(&store).is_empty(), "{:?}", tmp_files(&store));
    assert!(store.list().unwrap().is_empty());

    // A body that is honest about its (short) length is refused as too short.
    let stub = img
        .clone()
        .serve(|_, layer| StubResponse::new(200, layer[..1000].to_vec()));
    let e = client(&stub.host(), Credentials::none())
        .pull(&reference(&stub), &store, &tagged())
        .unwrap_err();
    match e.root() {
        Error::SizeMismatch {
            expected, actual, ..
        } => assert_eq!((*expected, *actual), (img.layer.len() as u64, 1000)),
        other => panic!("{other:?}"),
    }
    assert!(!store.has_blob(&img.layer_digest()));

    // And one longer than its descriptor is refused at once.
    let stub = img.clone().serve(|_, layer| {
        let mut long = layer.to_vec();
        long.push(0);
        StubResponse::new(200, long)
    });
    let e = client(&stub.host(), Credentials::none())
        .pull(&reference(&stub), &store, &tagged())
        .unwrap_err();
    assert!(matches!(e, Error::SizeMismatch { .. }), "{e:?}");
    assert!(!store.has_blob(&img.layer_digest()));
}

#[test]
fn a_cut_off_download_resumes_with_a_range_request() {
    let img = Arc::new(Image::new());
    let calls = AtomicUsize::new(0);
    let stub = img.clone().serve(move |req, layer| {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return StubResponse::new(200, layer.to_vec()).cut_after(300_000);
        }
        let start: usize = req
            .header("range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        StubResponse::new(206, layer[start..].to_vec()).header(
            "content-range",
            format!("bytes {start}-{}/{}", layer.len() - 1, layer.len()),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path(), "s");
    let pulled = client(&stub.host(), Credentials::none())
        .pull(&reference(&stub), &store, &tagged())
        .unwrap();
    let layer_requests = stub.requests_to(img.layer_digest().as_ref());
    assert_eq!(layer_requests.len(), 2);
    assert_eq!(layer_requests[0].header("range"), None);
    let range = layer_requests[1].header("range").unwrap();
    let resumed_at: u64 = range["bytes=".len()..range.len() - 1].parse().unwrap();
    assert!(resumed_at > 0 && resumed_at <= 300_000, "{range}");
    assert!(store.has_blob(&img.layer_digest()));
    assert_eq!(store.read_blob(&img.layer_digest()).unwrap(), img.layer);
    assert_eq!(pulled.digest(), &sha256_hex_of(&img.manifest));
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn rate_limits_and_server_errors_are_waited_out() {
    let img = Arc::new(Image::new());
    let calls = AtomicUsize::new(0);
    let stub = img
        .clone()
        .serve(move |_, layer| match calls.fetch_add(1, Ordering::SeqCst) {
            0 => StubResponse::new(
                429,
                r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
            )
            .header("retry-after", "1"),
            1 => StubResponse::new(503, "down"),
            _ => StubResponse::new(200, layer.to_vec()),
        });
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path(), "s");
    let retries = std::sync::Mutex::new(Vec::new());
    let record = |e: &strata_registry::BlobEvent<'_>| {
        if let strata_registry::BlobEvent::Retrying { reason, .. } = e {
            retries.lock().unwrap().push(reason.to_string());
        }
    };
    let start = Instant::now();
    client(&stub.host(), Credentials::none())
        .pull(
            &reference(&stub),
            &store,
            &PullOptions {
                progress: Some(&record),
                ..tagged()
            },
        )
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After ignored"
    );
    let retries = retries.lock().unwrap();
    assert_eq!(retries.len(), 2, "{retries:?}");
    assert!(
        retries[0].contains("429") && retries[0].contains("slow down"),
        "{retries:?}"
    );
    assert!(retries[1].contains("503"), "{retries:?}");
    assert!(store.has_blob(&img.layer_digest()));
}

#[test]
fn schema1_and_mismatching_manifests_are_refused() {
    let v1 = br#"{"schemaVersion":1,"name":"x","tag":"old","architecture":"amd64","fsLayers":[],"history":[]}"#;
    let other = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#;
    let stub = Stub::start(move |req| match req.path() {
        "/v2/" => StubResponse::new(200, "{}"),
        "/v2/x/manifests/old" => StubResponse::new(200, v1.to_vec()).header(
            "content-type",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        ),
        _ => StubResponse::new(200, other.to_vec())
            .header("content-type", "application/vnd.oci.image.manifest.v1+json"),
    });
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path(), "s");
    let c = client(&stub.host(), Credentials::none());
    let e = c
        .pull(
            &Reference::parse(&format!("{}/x:old", stub.host())).unwrap(),
            &store,
            &PullOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(e, Error::UnsupportedMediaType { .. }), "{e:?}");
    assert!(
        e.to_string().contains("schema 1") && e.to_string().contains("x:old"),
        "{e}"
    );

    let want = sha256_hex_of(b"what the user pinned");
    let pinned = Reference::parse(&format!("{}/x@{want}", stub.host())).unwrap();
    let e = c
        .pull(&pinned, &store, &PullOptions::default())
        .unwrap_err();
    match &e {
        Error::DigestMismatch {
            what,
            expected,
            actual,
            ..
        } => {
            assert_eq!(*what, "manifest");
            assert_eq!(expected, &want.to_string());
            assert_eq!(actual, &sha256_hex_of(other).to_string());
        }
        other => panic!("{other:?}"),
    }
    assert!(store.list().unwrap().is_empty());
}

#[test]
#[allow(clippy::result_large_err)]
fn a_registry_refusing_oci_manifests_gets_docker_schema2() {
    // Has every blob (HEAD 200) but refuses OCI manifests, as old registries do; takes
    // Docker schema 2.
    let stub = Stub::start(|req| match (req.method.as_str(), req.path()) {
        ("GET", "/v2/") => StubResponse::new(200, "{}"),
        ("HEAD", p) if p.contains("/blobs/") => StubResponse::new(200, ""),
        ("PUT", p) if p.ends_with("/manifests/1") => {
            if req.header("content-type") == Some("application/vnd.docker.distribution.manifest.v2+json") {
                StubResponse::new(201, "").header("docker-content-digest", sha256_hex_of(&req.body).to_string())
            } else {
                StubResponse::new(400, r#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"#)
            }
        }
        _ => StubResponse::new(404, ""),
    });
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path(), "s");
    common::build_image(&store, "app:1", "amd64", &[]);
    let remote = Reference::parse(&format!("{}/team/app:1", stub.host())).unwrap();
    let push = |format| {
        client(&stub.host(), Credentials::none()).push(&store, "app:1", &remote, &strata_registry::PushOptions { format, ..Default::default() })
    };
    // Only the store's bytes: refused, and the error says why and what would work.
    let e = push(ManifestFormat::AsStored).unwrap_err();
    assert!(matches!(e, Error::ManifestRejected { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("team/app:1") && text.contains("MANIFEST_INVALID") && text.contains("--format docker"), "{text}");
    // Blobs the registry has are never uploaded.
    assert!(stub.requests_to("/blobs/uploads/").is_empty());
    // Auto: the converted manifest goes up, under a new digest that is reported.
    let pushed = push(ManifestFormat::Auto).unwrap();
    let stored = store.resolve("app:1").unwrap();
    assert!(pushed.converted);
    assert_ne!(&pushed.digest, stored.manifest_descriptor.digest());
    assert_eq!(pushed.media_type, "application/vnd.docker.distribution.manifest.v2+json");
    let sent = stub.requests_to("/manifests/1").pop().unwrap();
    assert_eq!(sha256_hex_of(&sent.body), pushed.digest);
    let doc: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(doc["config"]["digest"], stored.manifest.config().digest().to_string(), "same config, same image id");
    assert_eq!(doc["layers"][0]["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip");
}
