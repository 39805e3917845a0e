use super::*;
use crate::archive::{save_docker_archive, save_oci_archive, LayerForm};
use crate::store::tests::new_image;
use std::collections::BTreeMap as Map;

fn source(dir: &std::path::Path) -> Store {
    let store = Store::open_or_create(dir.join("src")).unwrap();
    let mut image = new_image(&store, "hello");
    // Annotations only the original manifest carries: a rebuilt one would lose them.
    image.annotations.insert("org.example.note".into(), "kept".into());
    store.put_image(&image, &[ImageRef::parse("app:1").unwrap()]).unwrap();
    let other = new_image(&store, "other");
    store.put_image(&other, &[ImageRef::parse("registry.example:5000/team/other:2").unwrap()]).unwrap();
    store
}

fn fresh(dir: &std::path::Path, name: &str) -> Store {
    Store::open_or_create(dir.join(name)).unwrap()
}

fn names(store: &Store) -> Vec<String> {
    store.list().unwrap().iter().map(|e| e.reference.to_string()).collect()
}

#[test]
fn docker_archive_round_trip_keeps_the_manifest_digest() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    for form in [LayerForm::Uncompressed, LayerForm::AsStored] {
        let tar = save_docker_archive(&src, &["app:1", "registry.example:5000/team/other:2"], form, Vec::new()).unwrap();
        let out = fresh(dir.path(), &format!("{form:?}"));
        let got = load_docker_archive(&out, &tar[..], &ImportOptions::default()).unwrap();
        assert_eq!(got.len(), 2);
        for (imported, name) in got.iter().zip(["app:1", "registry.example:5000/team/other:2"]) {
            let want = src.resolve(name).unwrap();
            assert_eq!(&imported.manifest_digest, want.manifest_descriptor.digest(), "{form:?} {name}");
            assert_eq!(imported.image_id, crate::archive::image_id(&want));
            assert!(imported.original_manifest);
            assert_eq!(imported.repo_tags, [name]);
            let back = out.resolve(name).unwrap();
            assert_eq!(back.manifest_descriptor.digest(), want.manifest_descriptor.digest());
            for l in back.manifest.layers() {
                assert_eq!(out.read_blob(l.digest()).unwrap(), src.read_blob(l.digest()).unwrap());
            }
        }
        assert_eq!(names(&out), ["app:1", "registry.example:5000/team/other:2"]);
    }
}

/// A docker-archive from elsewhere (no StrataManifest): layers recompressed to the same blobs,
/// a fresh manifest.
#[test]
fn foreign_docker_archive_gets_a_fresh_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let tar = save_docker_archive(&src, &["app:1"], LayerForm::Uncompressed, Vec::new()).unwrap();
    let manifest = format!("blobs/sha256/{}", src.resolve("app:1").unwrap().manifest_descriptor.digest().digest());
    let tar = rewrite(&tar, |name, data| {
        if name == manifest {
            None
        } else if name == "manifest.json" {
            let mut v: Value = serde_json::from_slice(data).unwrap();
            v[0].as_object_mut().unwrap().remove(STRATA_MANIFEST_KEY);
            v[0]["RepoTags"] = serde_json::json!(["docker.io/library/app:1"]);
            Some(serde_json::to_vec(&v).unwrap())
        } else {
            Some(data.to_vec())
        }
    });
    let out = fresh(dir.path(), "out");
    let got = load_docker_archive(&out, &tar[..], &ImportOptions::default()).unwrap();
    assert!(!got[0].original_manifest);
    let (want, back) = (src.resolve("app:1").unwrap(), out.resolve("docker.io/library/app:1").unwrap());
    assert_ne!(back.manifest_descriptor.digest(), want.manifest_descriptor.digest(), "annotations are gone");
    assert_eq!(back.manifest.layers(), want.manifest.layers());
    assert_eq!(back.config_bytes, want.config_bytes);
    // With the original manifest among the blobs but no StrataManifest key (docker ≥ 25's
    // containerd store writes one), it is found and used.
    let tar = rewrite(&save_docker_archive(&src, &["app:1"], LayerForm::AsStored, Vec::new()).unwrap(), |name, data| {
        Some(if name == "manifest.json" { String::from_utf8_lossy(data).replace(STRATA_MANIFEST_KEY, "Other").into_bytes() } else { data.to_vec() })
    });
    let got = load_docker_archive(&fresh(dir.path(), "out2"), &tar[..], &ImportOptions::default()).unwrap();
    assert!(got[0].original_manifest);
    assert_eq!(&got[0].manifest_digest, want.manifest_descriptor.digest());
}

#[test]
fn select_and_tag_policy() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let tar = save_docker_archive(&src, &["app:1", "registry.example:5000/team/other:2"], LayerForm::Uncompressed, Vec::new()).unwrap();
    let out = fresh(dir.path(), "out");
    let opts = |select, tags| ImportOptions { select, tags, ..ImportOptions::default() };
    let as_x = TagPolicy::As(vec![ImageRef::parse("x:y").unwrap()]);
    let err = load_docker_archive(&out, &tar[..], &opts(Select::All, as_x.clone())).unwrap_err();
    assert!(err.to_string().contains("holds 2 images"), "{err}");
    let got = load_docker_archive(&out, &tar[..], &opts(Select::Index(1), as_x.clone())).unwrap();
    assert_eq!(got[0].repo_tags, ["registry.example:5000/team/other:2"]);
    assert_eq!(names(&out), ["x:y"]);
    let got = load_docker_archive(&out, &tar[..], &opts(Select::Name("docker.io/library/app:1".into()), TagPolicy::Untagged)).unwrap();
    assert_eq!(got[0].repo_tags, ["app:1"]);
    assert_eq!(names(&out), ["x:y"], "untagged: nothing listed");
    let err = load_docker_archive(&out, &tar[..], &opts(Select::Name("nope:1".into()), TagPolicy::Untagged)).unwrap_err();
    assert!(err.to_string().contains("app:1"), "lists what the archive holds: {err}");
    let err = load_docker_archive(&out, &tar[..], &opts(Select::Index(2), TagPolicy::Untagged)).unwrap_err();
    assert!(err.to_string().contains("@0 to @1"), "{err}");
}

/// `Select::Only` (skopeo's `docker-archive:FILE` with no NAME:TAG or @N): one image loads;
/// none or several are refused naming the count, the images and how to choose, and nothing
/// is tagged.
#[test]
fn only_image_of_a_docker_archive() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let only = ImportOptions { select: Select::Only, ..ImportOptions::default() };
    let one = save_docker_archive(&src, &["app:1"], LayerForm::Uncompressed, Vec::new()).unwrap();
    let out = fresh(dir.path(), "one");
    let got = load_docker_archive(&out, &one[..], &only).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].manifest_digest, src.resolve("app:1").unwrap().manifest_descriptor.digest());
    assert_eq!(names(&out), ["app:1"]);

    let two = save_docker_archive(&src, &["app:1", "registry.example:5000/team/other:2"], LayerForm::Uncompressed, Vec::new()).unwrap();
    let unnamed = edit_json(&two, "manifest.json", |v| v.as_array_mut().unwrap().iter_mut().for_each(|r| drop(r.as_object_mut().unwrap().remove("RepoTags"))));
    let none = edit_json(&one, "manifest.json", |v| *v = serde_json::json!([]));
    let cases: [(&str, &[u8], &[&str]); 3] = [
        ("two named", &two, &["lists 2 images: app:1, registry.example:5000/team/other:2\n", "docker-archive:FILE:NAME:TAG", "docker-archive:FILE:@N (N from 0 to 1)"]),
        ("two unnamed", &unnamed, &["lists 2 images: @0, @1\nhint: choose one by its position: docker-archive:FILE:@N (N from 0 to 1)"]),
        ("none", &none, &["lists no image"]),
    ];
    for (what, tar, want) in cases {
        let out = fresh(dir.path(), what);
        assert_refused(&out, what, load_docker_archive(&out, tar, &only), want);
        // The same archive with the image chosen loads (the refusal is about choosing only).
        if what != "none" {
            let pick = ImportOptions { select: Select::Index(1), ..ImportOptions::default() };
            assert_eq!(load_docker_archive(&out, tar, &pick).unwrap().len(), 1, "{what}");
        }
    }
}

/// An image with several names is listed once with all of them; a long list is cut short
/// (a hostile manifest.json may list thousands).
#[test]
fn only_refusal_lists_images_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let one = save_docker_archive(&src, &["app:1"], LayerForm::Uncompressed, Vec::new()).unwrap();
    let many = edit_json(&one, "manifest.json", |v| {
        let row = v[0].clone();
        *v = (0..12)
            .map(|i| {
                let mut r = row.clone();
                r["RepoTags"] = if i == 0 { serde_json::json!(["app:1", "app:latest"]) } else { serde_json::json!([format!("app:{}", i + 1)]) };
                r
            })
            .collect();
    });
    let out = fresh(dir.path(), "out");
    let err = load_docker_archive(&out, &many[..], &ImportOptions { select: Select::Only, ..ImportOptions::default() }).unwrap_err().to_string();
    assert!(err.contains("lists 12 images: app:1 (also app:latest), app:2, "), "{err}");
    assert!(err.contains("app:10 and 2 more\n"), "{err}");
    assert!(!err.contains("app:11"), "{err}");
    assert!(names(&out).is_empty());
}

/// `Select::Only` (skopeo's `oci-archive:FILE` with no REF) on oci-archives of one, two
/// named, two unnamed and no image.
#[test]
fn only_image_of_an_oci_archive() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let only = ImportOptions { select: Select::Only, ..ImportOptions::default() };
    let one = save_oci_archive(&src, &["app:1"], Vec::new()).unwrap();
    let out = fresh(dir.path(), "one");
    let got = load_oci_archive(&out, &one[..], &only).unwrap();
    assert_eq!(&got[0].manifest_digest, src.resolve("app:1").unwrap().manifest_descriptor.digest());
    assert_eq!(names(&out), ["app:1"]);

    let two = save_oci_archive(&src, &["app:1", "registry.example:5000/team/other:2"], Vec::new()).unwrap();
    let unnamed = edit_json(&two, "index.json", |v| v["manifests"].as_array_mut().unwrap().iter_mut().for_each(|e| drop(e.as_object_mut().unwrap().remove("annotations"))));
    let none = edit_json(&one, "index.json", |v| v["manifests"] = serde_json::json!([]));
    let cases: [(&str, &[u8], &[&str]); 3] = [
        ("two named", &two, &["lists 2 images: app:1, registry.example:5000/team/other:2\n", "hint: choose one: oci-archive:FILE:REF"]),
        ("two unnamed", &unnamed, &["lists 2 images: @0, @1\n", "have no ref name", "oci-archive:FILE:REF cannot choose one"]),
        ("none", &none, &["lists no image"]),
    ];
    for (what, tar, want) in cases {
        let out = fresh(dir.path(), what);
        assert_refused(&out, what, load_oci_archive(&out, tar, &only), want);
    }
    // Named, the archive of two gives either image.
    let out = fresh(dir.path(), "by-name");
    let got = load_oci_archive(&out, &two[..], &ImportOptions { select: Select::Name("registry.example:5000/team/other:2".into()), ..ImportOptions::default() }).unwrap();
    assert_eq!(got[0].repo_tags, ["registry.example:5000/team/other:2"]);
    assert_eq!(names(&out), ["registry.example:5000/team/other:2"]);
}

#[test]
fn oci_archive_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let tar = save_oci_archive(&src, &["app:1"], Vec::new()).unwrap();
    let out = fresh(dir.path(), "out");
    let got = load_oci_archive(&out, &tar[..], &ImportOptions::default()).unwrap();
    let want = src.resolve("app:1").unwrap();
    assert_eq!(&got[0].manifest_digest, want.manifest_descriptor.digest());
    assert_eq!(got[0].repo_tags, ["app:1"]);
    assert_eq!(out.resolve("app:1").unwrap().manifest_descriptor.digest(), want.manifest_descriptor.digest());
    // A docker-archive is told apart from an oci-archive, with a hint.
    let err = load_docker_archive(&fresh(dir.path(), "o2"), &tar[..], &ImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("oci-archive:FILE"), "{err}");
    let dtar = save_docker_archive(&src, &["app:1"], LayerForm::Uncompressed, Vec::new()).unwrap();
    let err = load_oci_archive(&fresh(dir.path(), "o3"), &dtar[..], &ImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("docker-archive:FILE"), "{err}");
}

#[test]
fn oci_archive_blob_not_matching_its_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let want = src.resolve("app:1").unwrap();
    let config = format!("blobs/sha256/{}", want.manifest.config().digest().digest());
    let tar = save_oci_archive(&src, &["app:1"], Vec::new()).unwrap();
    let tar = rewrite(&tar, |name, data| Some(if name == config { b"{\"x\":1}".to_vec() } else { data.to_vec() }));
    let out = fresh(dir.path(), "out");
    let err = load_oci_archive(&out, &tar[..], &ImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains(&config) && err.to_string().contains("not the one its name claims"), "{err}");
    assert!(names(&out).is_empty());
}

/// Each hostile docker-archive is refused naming its cause, and nothing is tagged.
#[test]
fn hostile_docker_archives_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let good = save_docker_archive(&src, &["app:1"], LayerForm::Uncompressed, Vec::new()).unwrap();
    let img = src.resolve("app:1").unwrap();
    let layer = format!("blobs/sha256/{}", img.config.rootfs().diff_ids()[0].trim_start_matches("sha256:"));
    let other_layer = {
        let other = src.resolve("registry.example:5000/team/other:2").unwrap();
        let d = &other.manifest.layers()[0];
        let mut plain = Vec::new();
        crate::compress::Codec::Gzip.decoder(src.open_blob(d.digest()).unwrap()).unwrap().read_to_end(&mut plain).unwrap();
        plain
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("absolute path", append(&good, raw_entry("/etc/passwd", b'0', b"x", "")), "absolute path"),
        ("dot-dot", append(&good, raw_entry("a/../../x", b'0', b"x", "")), "\"..\" in path"),
        ("symlink out", append(&good, raw_entry("evil", b'2', b"", "../../etc/shadow")), "outside the archive"),
        ("absolute symlink", append(&good, raw_entry("evil", b'2', b"", "/etc/shadow")), "absolute path /etc/shadow"),
        ("device", append(&good, raw_entry("dev", b'3', b"", "")), "only files, directories and links"),
        ("duplicate", append(&good, raw_entry("manifest.json", b'0', b"[]", "")), "manifest.json appears twice"),
        ("wrong layer", rewrite(&good, |n, d| Some(if n == layer { other_layer.clone() } else { d.to_vec() })), "its config's diff_id says"),
        ("missing layer", rewrite(&good, |n, d| (n != layer).then(|| d.to_vec())), "which the archive does not hold"),
        ("huge manifest.json", rewrite(&good, |n, d| Some(if n == "manifest.json" { vec![b' '; MAX_JSON as usize + 1] } else { d.to_vec() })), "over the limit"),
        ("huge JSON manifest.json", rewrite(&good, |n, d| Some(if n == "manifest.json" { let mut v = b"[".to_vec(); v.resize(MAX_JSON as usize + 1, b' '); v } else { d.to_vec() })), "over the limit"),
        ("bad tag", rewrite(&good, |n, d| Some(if n == "manifest.json" { String::from_utf8_lossy(d).replace("app:1", "UPPER:1").into_bytes() } else { d.to_vec() })), "not usable"),
        ("not a tar", b"hello, this is not a tar at all".repeat(40), "reading the archive"),
    ];
    for (what, tar, cause) in cases {
        let out = fresh(dir.path(), what);
        let err = load_docker_archive(&out, &tar[..], &ImportOptions::default()).expect_err(what);
        assert!(err.to_string().contains(cause), "{what}: {err}");
        assert!(names(&out).is_empty(), "{what}: something was tagged");
    }
}

/// docker before 25 wrote `<id>/layer.tar`, repeated layers as relative symlinks: followed
/// inside the archive.
#[test]
fn relative_layer_symlinks_inside_the_archive_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let good = save_docker_archive(&src, &["app:1"], LayerForm::Uncompressed, Vec::new()).unwrap();
    let img = src.resolve("app:1").unwrap();
    let layer = format!("blobs/sha256/{}", img.config.rootfs().diff_ids()[0].trim_start_matches("sha256:"));
    let tar = rewrite(&good, |n, d| {
        Some(if n == "manifest.json" { String::from_utf8_lossy(d).replace(&layer, "old/layer.tar").into_bytes() } else { d.to_vec() })
    });
    let tar = append(&tar, raw_entry("old/layer.tar", b'2', b"", &format!("../{layer}")));
    let out = fresh(dir.path(), "out");
    let got = load_docker_archive(&out, &tar[..], &ImportOptions::default()).unwrap();
    assert_eq!(&got[0].manifest_digest, img.manifest_descriptor.digest());
}

// ---- building archives by hand ----

/// Rebuilds a tar with `f` mapping each file's content (None drops it).
fn rewrite(tar: &[u8], mut f: impl FnMut(&str, &[u8]) -> Option<Vec<u8>>) -> Vec<u8> {
    let mut files = Map::new();
    for e in tar::Archive::new(tar).entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type().is_file() {
            let name = String::from_utf8(e.path_bytes().to_vec()).unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            if let Some(d) = f(&name, &data) {
                files.insert(name, d);
            }
        }
    }
    let mut out = Vec::new();
    for (name, data) in files {
        out.extend(raw_entry(&name, b'0', &data, ""));
    }
    out.extend([0u8; 1024]);
    out
}

/// Asserts a load was refused with each of `want` in its message, and tagged nothing.
#[track_caller]
fn assert_refused(out: &Store, what: &str, loaded: Result<Vec<Imported>>, want: &[&str]) {
    let err = loaded.expect_err(what).to_string();
    for w in want {
        assert!(err.contains(w), "{what}: {w:?} not in {err}");
    }
    assert!(names(out).is_empty(), "{what}: something was tagged");
}

/// Rebuilds a tar with its JSON file `name` changed by `f`.
fn edit_json(tar: &[u8], name: &str, f: impl Fn(&mut Value)) -> Vec<u8> {
    rewrite(tar, |n, d| {
        Some(if n == name {
            let mut v: Value = serde_json::from_slice(d).unwrap();
            f(&mut v);
            serde_json::to_vec(&v).unwrap()
        } else {
            d.to_vec()
        })
    })
}

/// Inserts an entry before the end-of-archive blocks.
fn append(tar: &[u8], entry: Vec<u8>) -> Vec<u8> {
    let mut out = tar[..tar.len() - 1024].to_vec();
    // The writer may pad past the two zero blocks; find the true end.
    while out.len() >= 512 && out[out.len() - 512..].iter().all(|&b| b == 0) {
        out.truncate(out.len() - 512);
    }
    out.extend(entry);
    out.extend([0u8; 1024]);
    out
}

/// One ustar entry written by hand, so names the tar crate's builder refuses can be made.
fn raw_entry(name: &str, kind: u8, data: &[u8], link: &str) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::new(kind));
    let bytes = h.as_mut_bytes();
    bytes[..name.len()].copy_from_slice(name.as_bytes());
    bytes[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}
