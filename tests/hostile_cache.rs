//! Hostile or damaged input on the way from the RPM cache into an image, through the real
//! `strata` binary: a bit flipped in a cached RPM, a package whose content does not match
//! its own header, setuid files of owners the image lacks, payloads too large for memory or
//! for the staging file system — and the cases that already held (`..` in payload paths,
//! hardlinks led outside through a planted symlink, device nodes), so they stay held.
//! A checksum mismatch of a downloaded RPM is covered in strata-fetch's tests/fetch.rs.

mod common;

use common::*;
use serde_json::Value;
use sha2::Digest;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A spec file for rpmbuild: `name`, extra preamble/macro lines, the `%install` body and the
/// `%files` body.
fn rpm_spec(name: &str, head: &str, install: &str, files: &str) -> String {
    format!(
        "{head}\nName: {name}\nVersion: 1\nRelease: 1\nSummary: hostile fixture\nLicense: MIT\nBuildArch: noarch\n\
         %description\nHostile fixture.\n%install\n{install}\n%files\n{files}\n"
    )
}

/// Builds each spec text with rpmbuild into `dir/repo/Packages`, runs `patch` on the built
/// files (if given), then publishes the repo with createrepo_c; returns the repo.
fn repo(dir: &Path, specs: &[String], patch: impl FnOnce(&Path)) -> PathBuf {
    require_tool("rpmbuild");
    require_tool("createrepo_c");
    let repo = dir.join("repo");
    let packages = repo.join("Packages");
    std::fs::create_dir_all(&packages).unwrap();
    let mut files = Vec::new();
    for (i, text) in specs.iter().enumerate() {
        let f = dir.join(format!("fixture-{i}.spec"));
        std::fs::write(&f, text).unwrap();
        files.push(f);
    }
    let out = run(Command::new("rpmbuild")
        .env("HOME", rpm_home(dir))
        .env("SOURCE_DATE_EPOCH", "1704067200")
        .args(["-bb", "--quiet"])
        .arg("--define")
        .arg(format!("_topdir {}", dir.join("rpmbuild").display()))
        .arg("--define")
        .arg(format!("_rpmdir {}", packages.display()))
        .args(["--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm"])
        .args(["--define", "use_source_date_epoch_as_buildtime 1"])
        .args(["--define", "__os_install_post %{nil}"])
        .args(&files));
    assert_ok("rpmbuild of the hostile fixtures", &out);
    patch(&packages);
    let out = run(Command::new("createrepo_c").args(["--quiet", "--no-database"]).arg(&repo));
    assert_ok("createrepo_c", &out);
    repo
}

/// A spec with one repo and one image `app` of `packages`; scriptlets skipped (the fixtures
/// have none, and these tests are about files, not the sandbox).
fn image_spec(dir: &Path, repo: &Path, packages: &[&str]) -> PathBuf {
    write_json(
        &dir.join("spec.json"),
        &serde_json::json!({
            "repos": [{ "id": "hostile", "baseurl": repo.display().to_string() }],
            "images": { "app": { "packages": packages, "scriptlets": "skip" } },
        }),
    )
}

/// `strata compose SPEC --store DIR/STORE --json` with the cache in `dir/cache` and staging
/// left to strata's own choice unless `staging` names a place.
fn compose(dir: &Path, spec: &Path, store: &str, staging: Option<&Path>, extra: &[&str]) -> std::process::Output {
    let mut cmd = strata(&dir.join("cache"));
    cmd.env_remove("STRATA_STAGING_DIR");
    if let Some(s) = staging {
        cmd.env("STRATA_STAGING_DIR", s);
    }
    run(cmd.arg("compose").arg(spec).arg("--store").arg(dir.join(store)).arg("--json").args(extra))
}

fn manifest_of(out: &std::process::Output) -> String {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)));
    v["images"]["app"]["manifest"].as_str().unwrap().to_string()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// Where the payload starts: after the lead and the two headers (the signature header is
/// padded to 8 bytes).
fn payload_offset(rpm: &[u8]) -> usize {
    let be32 = |at: usize| u32::from_be_bytes(rpm[at..at + 4].try_into().unwrap()) as usize;
    let mut off = 96;
    off += 16 + be32(off + 8) * 16 + be32(off + 12);
    off = (off + 7) & !7;
    off + 16 + be32(off + 8) * 16 + be32(off + 12)
}

/// A content file of `size` bytes that compresses poorly enough to have a real payload.
fn content_cmd(path: &str, size: usize) -> String {
    format!("mkdir -p $(dirname %{{buildroot}}{path}) && head -c {size} /dev/urandom > %{{buildroot}}{path}")
}

#[test]
fn a_bit_flipped_in_a_cached_rpm_is_caught_evicted_and_fetched_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let repo = repo(dir, &[rpm_spec("tiny", "", &content_cmd("/usr/share/tiny/data", 64 << 10), "/usr/share/tiny/data")], |_| {});
    let spec = image_spec(dir, &repo, &["tiny"]);
    let clean = compose(dir, &spec, "clean", None, &[]);
    assert_ok("compose from a clean cache", &clean);

    let rpm = repo.join("Packages/tiny-1-1.noarch.rpm");
    let original = std::fs::read(&rpm).unwrap();
    let entry = dir.join("cache/rpms/sha256").join(sha256_hex(&original));
    let mut flipped = original.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x01;
    std::fs::write(&entry, &flipped).unwrap();

    let again = compose(dir, &spec, "again", None, &[]);
    assert_ok("compose from a damaged cache", &again);
    let err = stderr(&again);
    assert!(err.contains("tiny-1-1.noarch") && err.contains("does not match the lock's sha256 checksum"), "the damage is reported: {err}");
    assert_eq!(std::fs::read(&entry).unwrap(), original, "the entry was fetched again");
    assert_eq!(manifest_of(&again), manifest_of(&clean), "the image is the clean build's");
}

#[test]
fn content_not_matching_its_header_digest_is_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let good = "GOOD-CONTENT ".repeat(64);
    let evil = good.replace("GOOD", "EVIL");
    let install = format!("mkdir -p %{{buildroot}}/usr/share/crafted\nprintf '%s' '{good}' > %{{buildroot}}/usr/share/crafted/data");
    // An uncompressed payload, so the content can be patched in place; the payload digest in
    // the header is fixed up, the file's own digest left alone: only the per-file check can
    // see the difference (and the repo's checksum is of the patched file).
    let text = rpm_spec("crafted", "%define _binary_payload w.ufdio", &install, "/usr/share/crafted/data");
    let repo = repo(dir, &[text], |packages| {
        let path = packages.join("crafted-1-1.noarch.rpm");
        let mut rpm = std::fs::read(&path).unwrap();
        let off = payload_offset(&rpm);
        let old = sha256_hex(&rpm[off..]);
        let at = off + rpm[off..].windows(good.len()).position(|w| w == good.as_bytes()).expect("the content is in the payload");
        rpm[at..at + evil.len()].copy_from_slice(evil.as_bytes());
        let new = sha256_hex(&rpm[off..]);
        let mut fixed = 0;
        while let Some(i) = rpm[..off].windows(old.len()).position(|w| w == old.as_bytes()) {
            rpm[i..i + new.len()].copy_from_slice(new.as_bytes());
            fixed += 1;
        }
        assert!(fixed > 0, "the header carries the payload digest");
        std::fs::write(&path, rpm).unwrap();
    });
    let spec = image_spec(dir, &repo, &["crafted"]);
    let out = compose(dir, &spec, "store", Some(&dir.join("staging")), &[]);
    let err = assert_fails("compose of a package whose content differs from its header", &out);
    let (want, got) = (sha256_hex(good.as_bytes()), sha256_hex(evil.as_bytes()));
    for part in ["crafted-1-1.noarch", "/usr/share/crafted/data", &want, &got, "corrupt as its repository serves it"] {
        assert!(err.contains(part), "the error says {part:?}: {err}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("staging")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(leftovers.is_empty(), "no half-built root is left: {leftovers:?}");
    let tags = run(strata(&dir.join("cache")).arg("images").arg("--store").arg(dir.join("store")));
    assert!(!stdout(&tags).contains("app"), "no image was stored: {}", stdout(&tags));
}

#[test]
fn setid_bits_of_owners_the_image_lacks_are_cleared_as_rpm_root_does() {
    require_tool("rpm");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let install = "mkdir -p %{buildroot}/usr/bin\nprintf '#!/bin/sh\\n' > %{buildroot}/usr/bin/suidtool\n\
                   printf '#!/bin/sh\\n' > %{buildroot}/usr/bin/sgidtool\nprintf '#!/bin/sh\\n' > %{buildroot}/usr/bin/both";
    let files = "%attr(4750, ghostuser, root) /usr/bin/suidtool\n%attr(2755, root, ghostgroup) /usr/bin/sgidtool\n\
                 %attr(6755, ghostuser, ghostgroup) /usr/bin/both";
    let repo = repo(dir, &[rpm_spec("setid", "", install, files)], |_| {});
    let spec = image_spec(dir, &repo, &["setid"]);
    let out = compose(dir, &spec, "store", None, &[]);
    assert_ok("compose", &out);
    let err = stderr(&out);
    assert!(err.contains("/usr/bin/suidtool: user ghostuser does not exist - using root; setuid bit cleared"), "{err}");
    assert!(err.contains("/usr/bin/sgidtool: group ghostgroup does not exist - using root; setgid bit cleared"), "{err}");
    let image = umoci_unpack(&dir.join("store"), "app:latest", &dir.join("unpacked"));

    // The real rpm, installing the same file into an empty root.
    let rpm_root = dir.join("rpm-root");
    std::fs::create_dir_all(&rpm_root).unwrap();
    let out = run(Command::new("rpm").env("HOME", rpm_home(dir)).arg("--root").arg(&rpm_root).args(["-i", "--nodeps", "--nosignature"]).arg(repo.join("Packages/setid-1-1.noarch.rpm")));
    assert_ok("rpm --root -i", &out);
    for (file, want) in [("suidtool", 0o750), ("sgidtool", 0o755), ("both", 0o755)] {
        let ours = std::fs::metadata(image.join("usr/bin").join(file)).unwrap();
        let rpms = std::fs::metadata(rpm_root.join("usr/bin").join(file)).unwrap();
        assert_eq!((ours.mode() & 0o7777, ours.uid(), ours.gid()), (rpms.mode() & 0o7777, rpms.uid(), rpms.gid()), "{file}: strata vs rpm --root");
        assert_eq!(ours.mode() & 0o7777, want, "{file}");
    }
}

#[test]
fn a_small_root_is_staged_in_memory_and_a_large_one_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // 1.1 GiB of declared content (sparse at build time, a few kB compressed): above the
    // 1 GiB most staged on a tmpfs.
    let big = "mkdir -p %{buildroot}/usr/share/big && truncate -s 1100M %{buildroot}/usr/share/big/blob";
    let specs = [
        rpm_spec("tiny", "", &content_cmd("/usr/share/tiny/data", 4096), "/usr/share/tiny/data"),
        rpm_spec("big", "%define _binary_payload w3.zstdio", big, "/usr/share/big/blob"),
    ];
    let repo = repo(dir, &specs, |_| {});
    let shm_is_tmpfs = rustix::fs::statfs("/dev/shm").is_ok_and(|s| s.f_type == 0x0102_1994);
    assert!(shm_is_tmpfs, "this test needs /dev/shm to be a tmpfs");

    let spec = image_spec(dir, &repo, &["tiny"]);
    let out = compose(dir, &spec, "store", None, &["-v"]);
    assert_ok("compose of a small image", &out);
    assert!(stderr(&out).contains("staging on a tmpfs"), "{}", stderr(&out));

    // The large one must go to CACHE/staging. That is made a file, so the compose stops at
    // the choice instead of writing 1.1 GiB: the error shows where it went, and nothing
    // reached /dev/shm.
    let spec = image_spec(dir, &repo, &["big"]);
    let disk = dir.join("cache/staging");
    std::fs::remove_dir_all(&disk).ok();
    std::fs::write(&disk, b"in the way").unwrap();
    let shm_before = shm_used();
    let out = compose(dir, &spec, "store", None, &["-v"]);
    let err = assert_fails("compose of a large image", &out);
    assert!(err.contains("staging on disk: the root is larger than 1.0 GiB"), "{err}");
    assert!(err.contains(&format!("cannot create the staging directory {}", disk.display())), "{err}");
    assert!(shm_used() < shm_before + (64 << 20), "nothing large was written to /dev/shm");
}

fn shm_used() -> u64 {
    let st = rustix::fs::statvfs("/dev/shm").unwrap();
    (st.f_blocks - st.f_bfree) * st.f_frsize
}

/// A tmpfs of `size` at `path`, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(path: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(path).unwrap();
        let out = run(Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(path));
        assert_ok("mount -t tmpfs (the test runs as root, as compose does)", &out);
        Mount(path.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn too_little_room_for_the_root_is_said_before_anything_is_extracted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let repo = repo(dir, &[rpm_spec("tiny", "", &content_cmd("/usr/share/tiny/data", 4096), "/usr/share/tiny/data")], |_| {});
    let spec = image_spec(dir, &repo, &["tiny"]);
    let small = Mount::tmpfs(&dir.join("small"), "16m");
    let staging = small.0.join("staging");
    let out = compose(dir, &spec, "store", Some(&staging), &[]);
    let err = assert_fails("compose into a 16 MiB staging file system", &out);
    assert!(err.contains(&format!("not enough space to stage it in {}", staging.display())), "{err}");
    assert!(err.contains("it needs about 64.") && err.contains("and 16.0 MiB is free there"), "needed vs available: {err}");
    assert!(err.contains("STRATA_STAGING_DIR"), "a hint: {err}");
    let entries: Vec<_> = std::fs::read_dir(&staging).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(entries.is_empty(), "nothing was extracted: {entries:?}");
}

/// Replaces every `from` in `rpm` (header and uncompressed payload alike) with `to`, of the
/// same length, and fixes the payload digest in the header to match, as a hostile builder
/// would: only strata's own checks stand between the result and the image.
fn rewrite(rpm: &Path, from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut b = std::fs::read(rpm).unwrap();
    let off = payload_offset(&b);
    let old = sha256_hex(&b[off..]);
    let mut n = 0;
    while let Some(i) = b.windows(from.len()).position(|w| w == from) {
        b[i..i + to.len()].copy_from_slice(to);
        n += 1;
    }
    assert!(n > 0, "{} holds no {:?}", rpm.display(), String::from_utf8_lossy(from));
    let new = sha256_hex(&b[off..]);
    while let Some(i) = b[..off].windows(old.len()).position(|w| w == old.as_bytes()) {
        b[i..i + new.len()].copy_from_slice(new.as_bytes());
    }
    std::fs::write(rpm, b).unwrap();
}

#[test]
fn held_payload_paths_with_dotdot_are_refused_and_write_nothing_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let host = tempfile::tempdir_in("/tmp").unwrap();
    let target = host.path().join("pwned");
    // Built as /QQ/QQ/.../HOST/pwned, then rewritten to /../../.../HOST/pwned.
    let depth = "/QQ".repeat(8);
    let path = format!("{depth}{}", target.display());
    let install = format!("mkdir -p %{{buildroot}}{} && echo pwned > %{{buildroot}}{path}", Path::new(&path).parent().unwrap().display());
    let text = rpm_spec("dotdot", "%define _binary_payload w.ufdio", &install, &path);
    let repo = repo(dir, &[text], |p| rewrite(&p.join("dotdot-1-1.noarch.rpm"), b"/QQ/", b"/../"));
    let spec = image_spec(dir, &repo, &["dotdot"]);
    let out = compose(dir, &spec, "store", Some(&dir.join("staging")), &[]);
    let err = assert_fails("compose of a package with `..` in a path", &out);
    assert!(err.contains("dotdot-1-1.noarch") && err.contains(".."), "{err}");
    assert!(!target.exists(), "{} was written outside the image", target.display());
}

#[test]
fn held_hardlinks_through_a_planted_symlink_stay_inside() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let host = tempfile::tempdir_in("/tmp").unwrap();
    // One package plants /opt/escape -> HOST (a real directory on the host); the next ships
    // a hardlinked pair under /opt/escape.
    let plant = format!("mkdir -p %{{buildroot}}/opt && ln -s {} %{{buildroot}}/opt/escape", host.path().display());
    let pair = "mkdir -p %{buildroot}/opt/escape && echo x > %{buildroot}/opt/escape/a && ln %{buildroot}/opt/escape/a %{buildroot}/opt/escape/b";
    let specs = [rpm_spec("planter", "", &plant, "/opt/escape"), rpm_spec("linker", "Requires: planter", pair, "/opt/escape/a\n/opt/escape/b")];
    let repo = repo(dir, &specs, |_| {});
    let spec = image_spec(dir, &repo, &["linker"]);
    let out = compose(dir, &spec, "store", Some(&dir.join("staging")), &[]);
    // Refused or confined, never outside: the host directory stays empty.
    let outside: Vec<_> = std::fs::read_dir(host.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(outside.is_empty(), "written on the host: {outside:?}\n{}", stderr(&out));
}

#[test]
fn held_device_nodes_in_a_payload_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let text = rpm_spec("devnode", "", "mkdir -p %{buildroot}/dev", "%dev(b, 8, 0) /dev/strata-hostile-disk");
    let repo = repo(dir, &[text], |_| {});
    let spec = image_spec(dir, &repo, &["devnode"]);
    let out = compose(dir, &spec, "store", Some(&dir.join("staging")), &[]);
    let err = assert_fails("compose of a package with a block device", &out);
    assert!(err.contains("/dev/strata-hostile-disk") && err.contains("device node"), "{err}");
    assert!(!Path::new("/dev/strata-hostile-disk").exists(), "a device node appeared on the host");
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("staging")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(leftovers.is_empty(), "the staging root holding the node is gone: {leftovers:?}");
}
