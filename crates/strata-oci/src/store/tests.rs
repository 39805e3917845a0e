use super::*;
use crate::compress::Compression;
use crate::config::{build_config, ConfigInput, HistoryEntry, ImageSettings};
use crate::layer::Meta;

/// Stores a one-file layer with `content` and returns the image parts for it.
pub(crate) fn new_image(store: &Store, content: &str) -> NewImage {
    let mut b = LayerBuilder::new();
    b.add_file(
        "etc/content",
        &Meta::new(0o644),
        content.len() as u64,
        content.as_bytes(),
    )
    .unwrap();
    let opts = WriteOptions {
        compression: Compression::default(),
        threads: 2,
    };
    let layer = store.put_layer(b, opts).unwrap();
    let settings = ImageSettings {
        cmd: Some(vec!["/bin/true".into()]),
        ..ImageSettings::default()
    };
    let input = ConfigInput {
        architecture: "amd64".into(),
        os: "linux".into(),
        variant: None,
        created: Some(0),
        history: vec![HistoryEntry {
            created_by: Some(content.into()),
            ..Default::default()
        }],
        diff_ids: vec![layer.diff_id.clone()],
    };
    NewImage {
        config: build_config(&settings, &input).unwrap(),
        layers: vec![layer.descriptor()],
        annotations: BTreeMap::new(),
    }
}

fn r(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap()
}

fn names(store: &Store) -> Vec<String> {
    store
        .list()
        .unwrap()
        .iter()
        .map(|e| e.reference.to_string())
        .collect()
}

fn blob_count(store: &Store) -> usize {
    fs::read_dir(store.blobs_dir()).unwrap().count()
}

#[test]
fn creates_a_valid_layout_and_reopens_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path().join("s")).unwrap();
    let layout: Value =
        serde_json::from_slice(&fs::read(store.root().join("oci-layout")).unwrap()).unwrap();
    assert_eq!(layout["imageLayoutVersion"], "1.0.0");
    let index: Value =
        serde_json::from_slice(&fs::read(store.root().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["manifests"], serde_json::json!([]));
    Store::open(store.root()).unwrap();
    Store::open_or_create(store.root()).unwrap();
    assert!(matches!(
        Store::open(dir.path()),
        Err(Error::BadLayout { .. })
    ));
}

#[test]
fn put_tag_list_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path()).unwrap();
    let image = new_image(&store, "one");
    let desc = store
        .put_image(&image, &[r("app:1"), r("registry.local:5000/app")])
        .unwrap();
    assert_eq!(names(&store), ["app:1", "registry.local:5000/app:latest"]);
    let img = store.resolve("app:1").unwrap();
    assert_eq!(img.manifest_descriptor, desc);
    assert_eq!(img.reference, Some(r("app:1")));
    assert_eq!(img.manifest.layers(), &image.layers);
    assert_eq!(img.config.rootfs().diff_ids().len(), 1);
    assert_eq!(
        sha256_hex_of(&img.config_bytes),
        *img.manifest.config().digest()
    );
    // Default tag, and resolution by manifest digest.
    assert_eq!(
        store
            .resolve("registry.local:5000/app")
            .unwrap()
            .manifest_descriptor,
        desc
    );
    assert_eq!(
        store.resolve(desc.digest().as_ref()).unwrap().reference,
        None
    );
    assert!(matches!(
        store.resolve("app:2"),
        Err(Error::ImageNotFound(_))
    ));
    assert!(matches!(
        store.resolve("Bad Name"),
        Err(Error::InvalidReference { .. })
    ));
    // The index carries the tag as the standard annotation.
    let index: Value = serde_json::from_slice(&fs::read(store.index_path()).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"][REF_NAME_ANNOTATION],
        "app:1"
    );
    assert_eq!(
        index["manifests"][0]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
}

#[test]
fn retag_replaces_and_gc_collects_the_old_image() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path()).unwrap();
    let old = store
        .put_image(&new_image(&store, "old"), &[r("app:latest")])
        .unwrap();
    let new = store
        .put_image(&new_image(&store, "new"), &[r("app:latest")])
        .unwrap();
    assert_eq!(names(&store), ["app:latest"]);
    assert_eq!(store.resolve("app").unwrap().manifest_descriptor, new);
    assert_eq!(blob_count(&store), 6);
    // Young garbage is spared, old garbage goes; the live image keeps all its blobs.
    let spared = store.gc(Duration::from_secs(3600)).unwrap();
    assert_eq!((spared.blobs_removed, spared.blobs_kept_young), (0, 3));
    let report = store.gc(Duration::ZERO).unwrap();
    assert_eq!(report.blobs_removed, 3);
    assert!(report.bytes_freed > 0);
    assert!(!store.has_blob(old.digest()));
    let img = store.resolve("app").unwrap();
    assert!(store.has_blob(img.manifest.layers()[0].digest()));
    assert_eq!(blob_count(&store), 3);
}

#[test]
fn tag_and_untag() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path()).unwrap();
    store
        .put_image(&new_image(&store, "x"), &[r("a:1")])
        .unwrap();
    store.tag("a:1", &r("b:2")).unwrap();
    assert_eq!(names(&store), ["a:1", "b:2"]);
    assert!(store.untag(&r("a:1")).unwrap());
    assert!(!store.untag(&r("a:1")).unwrap());
    assert_eq!(names(&store), ["b:2"]);
    // Still referenced through b:2: nothing to collect.
    assert_eq!(store.gc(Duration::ZERO).unwrap().blobs_removed, 0);
    assert!(store.untag(&r("b:2")).unwrap());
    assert_eq!(store.gc(Duration::ZERO).unwrap().blobs_removed, 3);
    assert!(matches!(
        store.tag("a:1", &r("c:3")),
        Err(Error::ImageNotFound(_))
    ));
}

#[test]
fn crash_before_index_update_leaves_no_listed_image() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path()).unwrap();
    store
        .put_image(&new_image(&store, "kept"), &[r("kept:1")])
        .unwrap();
    let index_before = fs::read(store.index_path()).unwrap();
    // Simulate a build that stored all its blobs (layer, config, manifest) and died
    // before the index was replaced.
    let image = new_image(&store, "crashed");
    let config = JsonBlob::new(&image.config, MediaType::ImageConfig).unwrap();
    store.put_bytes(&config.bytes).unwrap();
    let manifest =
        build_manifest(config.descriptor, image.layers.clone(), &BTreeMap::new()).unwrap();
    let manifest = JsonBlob::new(&manifest, MediaType::ImageManifest).unwrap();
    store.put_bytes(&manifest.bytes).unwrap();
    // ...and a half-written blob left in the temporary directory.
    fs::write(store.tmp_dir().join("blob-partial"), b"partial").unwrap();

    assert_eq!(fs::read(store.index_path()).unwrap(), index_before);
    let reopened = Store::open(dir.path()).unwrap();
    assert_eq!(names(&reopened), ["kept:1"]);
    assert!(reopened
        .resolve(manifest.descriptor.digest().as_ref())
        .is_err());
    let report = reopened.gc(Duration::ZERO).unwrap();
    assert_eq!(report.blobs_removed, 3);
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    reopened.resolve("kept:1").unwrap();
}

#[test]
fn blobs_are_verified() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path()).unwrap();
    let wrong = sha256_hex_of(b"something else");
    assert!(matches!(
        store.put_blob(&b"data"[..], Some(&wrong)),
        Err(Error::DigestMismatch { .. })
    ));
    assert_eq!(blob_count(&store), 0);
    assert_eq!(
        fs::read_dir(store.tmp_dir()).unwrap().count(),
        0,
        "temp file left behind"
    );
    let d = store.put_bytes(b"data").unwrap();
    assert_eq!(store.read_blob(&d).unwrap(), b"data");
    // A blob corrupted on disk is detected when read.
    fs::write(store.blob_path(&d).unwrap(), b"dat4").unwrap();
    assert!(matches!(
        store.read_blob(&d),
        Err(Error::DigestMismatch { .. })
    ));
    let sha512 = Digest::try_from(format!("sha512:{}", "a".repeat(128))).unwrap();
    assert!(matches!(store.blob_path(&sha512), Err(Error::BadDigest(_))));
    assert!(matches!(
        store.open_blob(&wrong),
        Err(Error::BlobNotFound(_))
    ));
}

#[test]
fn put_image_refuses_missing_layers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path()).unwrap();
    let mut image = new_image(&store, "x");
    image.layers[0] = Descriptor::new(MediaType::ImageLayerGzip, 5, sha256_hex_of(b"absent"));
    assert!(matches!(
        store.put_image(&image, &[r("x")]),
        Err(Error::InvalidImage(_))
    ));
    assert!(names(&store).is_empty());
}

#[test]
fn index_bytes_depend_only_on_content() {
    let build = |order: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path()).unwrap();
        for tag in order {
            store
                .put_image(&new_image(&store, tag), &[r(&format!("img:{tag}"))])
                .unwrap();
        }
        fs::read(store.index_path()).unwrap()
    };
    assert_eq!(build(&["a", "b", "c"]), build(&["c", "a", "b"]));
}

#[test]
fn concurrent_writers_lose_no_tags() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path()).unwrap();
    std::thread::scope(|s| {
        for i in 0..4 {
            let store = store.clone();
            s.spawn(move || {
                for j in 0..3 {
                    let tag = format!("t{i}-{j}");
                    store
                        .put_image(&new_image(&store, &tag), &[r(&format!("app:{tag}"))])
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(store.list().unwrap().len(), 12);
}

#[test]
fn a_blob_collected_before_the_tag_is_named() {
    // What a `strata gc --grace 0s` running between stage and tag does to a build.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(dir.path()).unwrap();
    let image = new_image(&store, "raced");
    let staged = store.stage_image(&image).unwrap();
    let report = store.gc(Duration::ZERO).unwrap();
    assert!(report.blobs_removed >= 1);
    let err = store.tag_staged(&staged, &[r("raced:1")]).unwrap_err();
    assert!(matches!(err, Error::BlobCollected { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("strata gc") && text.contains("re-run") && text.contains("raced:1"), "{text}");
    assert!(names(&store).is_empty(), "no tag names an image with missing blobs");
}
