//! End to end against a real registry (distribution 2.8, Debian's `docker-registry`):
//! push and pull round trips checked with skopeo, Docker v2 schema 2 images, multi-arch
//! indexes, chunked uploads, cross-repository mounts, and the three auth modes.

mod common;

use common::token::{Grant, TokenServer, User};
use common::{
    build_image, client, new_store, noise, skopeo, skopeo_digest, tmp_files, Auth, Registry,
};
use strata_oci::oci_spec::image::Digest;
use strata_oci::reference::ImageRef;
use strata_oci::sha256_hex_of;
use strata_registry::{
    BlobKind, Client, ClientConfig, Credential, Credentials, Error, ManifestFormat, Outcome, Platform, PullOptions,
    PushOptions, Reference, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn tagged(tag: &str) -> PullOptions<'static> {
    PullOptions {
        tags: vec![ImageRef::parse(tag).unwrap()],
        ..PullOptions::default()
    }
}

#[test]
fn push_then_pull_round_trip_matches_skopeo_and_the_store() {
    let reg = Registry::start(Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let a = new_store(dir.path(), "a");
    let built = build_image(
        &a,
        "app:1",
        "amd64",
        &[("usr/share/blob", noise(200_000, 1))],
    );
    let c = client(&reg.host(), Credentials::none());
    let remote = r(&format!("{}/strata/app:1", reg.host()));

    let events = std::sync::Mutex::new(Vec::new());
    let record = |e: &strata_registry::BlobEvent<'_>| {
        events.lock().unwrap().push(format!("{e:?}"));
    };
    let pushed = c
        .push(
            &a,
            "app:1",
            &remote,
            &PushOptions {
                progress: Some(&record),
                ..PushOptions::default()
            },
        )
        .unwrap();
    assert_eq!(
        &pushed.digest,
        built.digest(),
        "the manifest went up unchanged"
    );
    assert_eq!(pushed.media_type, OCI_MANIFEST);
    assert!(pushed
        .blobs
        .iter()
        .all(|b| b.outcome == Outcome::Transferred));
    assert_eq!(
        skopeo_digest(&remote.to_string()),
        built.digest().to_string()
    );
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.starts_with("Bytes")),
        "no progress events"
    );

    // Pushing again uploads nothing.
    let again = c
        .push(&a, "app:1", &remote, &PushOptions::default())
        .unwrap();
    assert!(again.blobs.iter().all(|b| b.outcome == Outcome::Present));

    let b = new_store(dir.path(), "b");
    let pulled = c.pull(&remote, &b, &tagged("base:1")).unwrap();
    assert_eq!(pulled.digest(), built.digest());
    assert_eq!(pulled.manifest().digest(), built.digest());
    let local = a.resolve("app:1").unwrap();
    let there = b.resolve("base:1").unwrap();
    assert_eq!(there.manifest_descriptor.digest(), built.digest());
    assert_eq!(
        there.manifest.config().digest(),
        local.manifest.config().digest()
    );
    let layers = |m: &strata_oci::oci_spec::image::ImageManifest| {
        m.layers()
            .iter()
            .map(|l| l.digest().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(layers(&there.manifest), layers(&local.manifest));
    assert_eq!(there.config_bytes, local.config_bytes);
    assert_eq!(pulled.config.architecture().to_string(), "amd64");
    assert_eq!(pulled.blobs[0].kind, BlobKind::Config);
    assert!(pulled
        .blobs
        .iter()
        .all(|b| b.outcome == Outcome::Transferred));
    assert!(tmp_files(&b).is_empty());
    // Other OCI tools read what was pulled.
    let v: serde_json::Value = serde_json::from_slice(&skopeo(&[
        "inspect",
        &format!("oci:{}:base:1", b.root().display()),
    ]))
    .unwrap();
    assert_eq!(v["Digest"], built.digest().to_string());

    // Pulling again into the same store downloads nothing; by digest it is the same image.
    let by_digest = remote.with_digest(built.digest().clone());
    let again = c.pull(&by_digest, &b, &PullOptions::default()).unwrap();
    assert!(again.blobs.iter().all(|b| b.outcome == Outcome::Present));
    assert_eq!(again.digest(), built.digest());
}

#[test]
fn plain_http_needs_the_insecure_mark() {
    let reg = Registry::start(Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let strict = Client::new(ClientConfig {
        retry: common::quick_retry(),
        ..ClientConfig::default()
    });
    let e = strict
        .pull(
            &r(&format!("{}/x:1", reg.host())),
            &new_store(dir.path(), "s"),
            &PullOptions::default(),
        )
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&reg.host()) && text.contains("https://"),
        "{text}"
    );
}

#[test]
fn chunked_upload_cross_repository_mount_and_unknown_manifest() {
    let reg = Registry::start(Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let a = new_store(dir.path(), "a");
    let built = build_image(&a, "big:1", "amd64", &[("data", noise(700_000, 2))]);
    let c = client(&reg.host(), Credentials::none());
    let first = r(&format!("{}/team/first:1", reg.host()));
    let small_chunks = PushOptions {
        chunk_size: 128 * 1024,
        ..PushOptions::default()
    };
    let pushed = c.push(&a, "big:1", &first, &small_chunks).unwrap();
    assert_eq!(&pushed.digest, built.digest());
    // ~700 kB in 128 KiB chunks: the big layer went up as six PATCHes, the config in one PUT.
    let patches = reg
        .log()
        .matches("\"PATCH /v2/team/first/blobs/uploads/")
        .count();
    assert_eq!(patches, 6, "{}", reg.log());

    let second = r(&format!("{}/team/second:1", reg.host()));
    let mounted = c
        .push(
            &a,
            "big:1",
            &second,
            &PushOptions {
                mount_from: vec!["team/first".into()],
                ..PushOptions::default()
            },
        )
        .unwrap();
    assert!(
        mounted.blobs.iter().all(|b| b.outcome == Outcome::Mounted),
        "{:?}",
        mounted.blobs
    );
    assert_eq!(
        skopeo_digest(&second.to_string()),
        built.digest().to_string()
    );

    // The chunked blob arrived intact: a fresh pull verifies every digest.
    let b = new_store(dir.path(), "b");
    let pulled = c.pull(&second, &b, &tagged("big:1")).unwrap();
    assert_eq!(pulled.digest(), built.digest());

    let e = c
        .pull(
            &first.with_tag("nope").unwrap(),
            &b,
            &PullOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(e, Error::ManifestUnknown { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("{}/team/first", reg.host())) && text.contains("nope"),
        "{text}"
    );
}

#[test]
fn docker_schema2_images_pull_and_push_unchanged() {
    let reg = Registry::start(Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let a = new_store(dir.path(), "a");
    build_image(&a, "app:1", "amd64", &[]);
    let docker_ref = format!("{}/strata/docker:1", reg.host());
    skopeo(&[
        "copy",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        &format!("oci:{}:app:1", a.root().display()),
        &format!("docker://{docker_ref}"),
    ]);
    let remote_digest = skopeo_digest(&docker_ref);
    let c = client(&reg.host(), Credentials::none());
    let b = new_store(dir.path(), "b");
    let pulled = c.pull(&r(&docker_ref), &b, &tagged("d:1")).unwrap();
    assert_eq!(pulled.digest().to_string(), remote_digest);
    assert_eq!(pulled.resolved.media_type, DOCKER_MANIFEST);
    assert_eq!(pulled.manifest().media_type().to_string(), DOCKER_MANIFEST);
    let stored = b.resolve("d:1").unwrap();
    assert_eq!(
        stored.manifest_descriptor.digest().to_string(),
        remote_digest
    );

    // Pushed back as it is: still Docker schema 2, same digest.
    let back = r(&format!("{}/strata/back:1", reg.host()));
    let pushed = c.push(&b, "d:1", &back, &PushOptions::default()).unwrap();
    assert_eq!(pushed.media_type, DOCKER_MANIFEST);
    assert_eq!(pushed.digest.to_string(), remote_digest);
    assert_eq!(skopeo_digest(&back.to_string()), remote_digest);
}

#[test]
fn oci_images_push_as_docker_schema2_exactly_as_skopeo_converts_them() {
    let reg = Registry::start(Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let a = new_store(dir.path(), "a");
    build_image(&a, "app:1", "amd64", &[("etc/motd", b"hi\n".to_vec())]);
    let by_skopeo = format!("{}/strata/skopeo:1", reg.host());
    skopeo(&["copy", "--format", "v2s2", "--dest-tls-verify=false", &format!("oci:{}:app:1", a.root().display()), &format!("docker://{by_skopeo}")]);
    let c = client(&reg.host(), Credentials::none());
    let ours = r(&format!("{}/strata/ours:1", reg.host()));
    let pushed = c.push(&a, "app:1", &ours, &PushOptions { format: ManifestFormat::Docker, ..PushOptions::default() }).unwrap();
    assert!(pushed.converted);
    assert_eq!(pushed.media_type, DOCKER_MANIFEST);
    assert_eq!(pushed.digest.to_string(), skopeo_digest(&by_skopeo), "the same bytes as skopeo's conversion");
    assert_eq!(skopeo_digest(&ours.to_string()), pushed.digest.to_string());
    // It pulls back as the same image: the same config, so the same image id.
    let b = new_store(dir.path(), "b");
    c.pull(&ours, &b, &tagged("back:1")).unwrap();
    assert_eq!(b.resolve("back:1").unwrap().manifest.config().digest(), a.resolve("app:1").unwrap().manifest.config().digest());
}

#[test]
fn multi_arch_index_picks_the_platform() {
    let reg = Registry::start(Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let a = new_store(dir.path(), "a");
    let amd = build_image(&a, "m:amd64", "amd64", &[]);
    let arm = build_image(&a, "m:arm64", "arm64", &[]);
    let c = client(&reg.host(), Credentials::none());
    let repo = format!("{}/strata/multi", reg.host());
    for (tag, d) in [("m:amd64", &amd), ("m:arm64", &arm)] {
        let by_digest = r(&format!("{repo}@{}", d.digest()));
        let p = c
            .push(&a, tag, &by_digest, &PushOptions::default())
            .unwrap();
        assert_eq!(&p.digest, d.digest());
    }
    let entry = |d: &strata_oci::oci_spec::image::Descriptor, arch: &str, variant: Option<&str>| {
        let mut platform = serde_json::json!({"os": "linux", "architecture": arch});
        if let Some(v) = variant {
            platform["variant"] = v.into();
        }
        serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d.digest().to_string(),
                           "size": d.size(), "platform": platform})
    };
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [entry(&arm, "arm64", Some("v8")), entry(&amd, "amd64", None)]});
    let index_bytes = serde_json::to_vec(&index).unwrap();
    let index_digest = c
        .push_manifest(&r(&format!("{repo}:latest")), &index_bytes, OCI_INDEX)
        .unwrap();
    assert_eq!(index_digest, sha256_hex_of(&index_bytes));
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{repo}:latest"),
    ]);
    assert_eq!(
        sha256_hex_of(&raw),
        index_digest,
        "the registry serves our exact bytes"
    );

    let b = new_store(dir.path(), "b");
    let pulled = c.pull(&r(&repo), &b, &tagged("multi:1")).unwrap();
    assert_eq!(
        pulled.digest(),
        &index_digest,
        "the reference resolved to the index"
    );
    assert_eq!(pulled.resolved.media_type, OCI_INDEX);
    assert_eq!(pulled.manifest().digest(), amd.digest());
    assert_eq!(pulled.resolved.platform, Some(Platform::linux_amd64()));
    assert_eq!(
        b.resolve("multi:1").unwrap().manifest_descriptor.digest(),
        amd.digest()
    );

    let arm_opts = PullOptions {
        platform: Platform::parse("linux/arm64").unwrap(),
        ..tagged("multi:arm")
    };
    let pulled = c
        .pull(&r(&format!("{repo}@{index_digest}")), &b, &arm_opts)
        .unwrap();
    assert_eq!(pulled.manifest().digest(), arm.digest());
    assert_eq!(pulled.config.architecture().to_string(), "arm64");

    let s390 = PullOptions {
        platform: Platform::parse("linux/s390x").unwrap(),
        ..PullOptions::default()
    };
    let e = c.pull(&r(&repo), &b, &s390).unwrap_err();
    match &e {
        Error::NoMatchingPlatform {
            wanted, available, ..
        } => {
            assert_eq!(wanted, "linux/s390x");
            assert_eq!(available, "linux/arm64, linux/amd64");
        }
        other => panic!("{other:?}"),
    }

    // An index pulled by a digest it does not have is refused before anything is fetched.
    let wrong = Digest::try_from(format!("sha256:{}", "0".repeat(64))).unwrap();
    let e = c
        .pull(&r(&repo).with_digest(wrong), &b, &PullOptions::default())
        .unwrap_err();
    assert!(matches!(e, Error::ManifestUnknown { .. }), "{e:?}");
}

#[test]
fn htpasswd_basic_auth_from_an_auth_file() {
    let reg = Registry::start(Auth::Htpasswd(vec![("alice".into(), "s3cret".into())]));
    let dir = tempfile::tempdir().unwrap();
    let a = new_store(dir.path(), "a");
    let built = build_image(&a, "app:1", "amd64", &[]);
    let remote = r(&format!("{}/private/app:1", reg.host()));

    let e = client(&reg.host(), Credentials::none())
        .push(&a, "app:1", &remote, &PushOptions::default())
        .unwrap_err();
    match &e {
        Error::Unauthorized { realm, detail, .. } => {
            assert_eq!(realm.as_deref(), Some("strata-test"));
            assert!(detail.contains("no credentials"), "{detail}");
        }
        other => panic!("{other:?}"),
    }

    let mut wrong = Credentials::none();
    wrong.insert(&reg.host(), Credential::basic("alice", "wrong"));
    let e = client(&reg.host(), wrong)
        .push(&a, "app:1", &remote, &PushOptions::default())
        .unwrap_err();
    assert!(e.to_string().contains("credentials refused"), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("{}/private/app", reg.host())),
        "{e}"
    );

    // The way a user logs in: an auth file with a base64 `auth` entry.
    let auth_file = dir.path().join("auth.json");
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "alice:s3cret");
    std::fs::write(
        &auth_file,
        format!(
            r#"{{"auths":{{"http://{}":{{"auth":"{b64}"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let mut creds = Credentials::none();
    creds.add_file(&auth_file).unwrap();
    let c = client(&reg.host(), creds);
    let pushed = c
        .push(&a, "app:1", &remote, &PushOptions::default())
        .unwrap();
    assert_eq!(&pushed.digest, built.digest());
    let b = new_store(dir.path(), "b");
    let pulled = c.pull(&remote, &b, &tagged("app:1")).unwrap();
    assert_eq!(pulled.digest(), built.digest());
}

#[test]
fn bearer_tokens_per_repository_and_action() {
    let tokens = TokenServer::start(vec![
        User {
            name: "alice".into(),
            password: "pw".into(),
            grant: Grant::All,
            access_token: false,
        },
        User {
            name: "bob".into(),
            password: "pw".into(),
            grant: Grant::PullOnly,
            access_token: true,
        },
    ]);
    let reg = Registry::start(Auth::Token {
        realm: tokens.realm(),
        cert: tokens.cert.clone(),
    });
    let dir = tempfile::tempdir().unwrap();
    let a = new_store(dir.path(), "a");
    let built = build_image(&a, "app:1", "amd64", &[]);
    let host = reg.host();
    let creds = |user: &str| {
        let mut c = Credentials::none();
        c.insert(&host, Credential::basic(user, "pw"));
        c
    };

    let alice = client(&host, creds("alice"));
    let one = r(&format!("{host}/team/one:1"));
    let pushed = alice
        .push(&a, "app:1", &one, &PushOptions::default())
        .unwrap_or_else(|e| panic!("{e}\n{}", reg.log()));
    assert_eq!(&pushed.digest, built.digest());
    // A second repository gets its own token; the mount asks for pull on the source too.
    let two = r(&format!("{host}/team/two:1"));
    let mounted = alice
        .push(
            &a,
            "app:1",
            &two,
            &PushOptions {
                mount_from: vec!["team/one".into()],
                ..PushOptions::default()
            },
        )
        .unwrap();
    assert!(
        mounted.blobs.iter().all(|b| b.outcome == Outcome::Mounted),
        "{:?}",
        mounted.blobs
    );
    let scopes = tokens.scopes_requested();
    assert!(
        scopes.contains(&vec!["repository:team/one:pull,push".to_string()]),
        "{scopes:?}"
    );
    assert!(
        scopes
            .iter()
            .any(|s| s.contains(&"repository:team/two:pull,push".to_string())
                && s.contains(&"repository:team/one:pull".to_string())),
        "{scopes:?}"
    );

    // bob may pull (his token comes in the `access_token` field) but not push.
    let bob = client(&host, creds("bob"));
    let b = new_store(dir.path(), "b");
    let pulled = bob.pull(&two, &b, &tagged("two:1")).unwrap();
    assert_eq!(pulled.digest(), built.digest());
    let e = bob
        .push(
            &a,
            "app:1",
            &r(&format!("{host}/team/three:1")),
            &PushOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(e, Error::Denied { .. }), "{e:?}");
    assert!(e.to_string().contains("team/three"), "{e}");

    let e = client(&host, Credentials::none())
        .pull(&one, &b, &PullOptions::default())
        .unwrap_err();
    match &e {
        Error::Unauthorized { realm, detail, .. } => {
            assert_eq!(realm.as_deref(), Some(tokens.realm().as_str()));
            assert!(detail.contains("anonymous"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    let e = client(&host, {
        let mut c = Credentials::none();
        c.insert(&host, Credential::basic("alice", "nope"));
        c
    })
    .pull(&one, &b, &PullOptions::default())
    .unwrap_err();
    assert!(
        e.to_string().contains("alice") && e.to_string().contains(&tokens.realm()),
        "{e}"
    );
}
