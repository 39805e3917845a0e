//! Output paths against what a user (or a hostile script) may name: `strata save -o`, `strata
//! rpm -o`, `--lock`, through the real binary. Streams (`-`, `/dev/stdout`, FIFOs, `/dev/full`)
//! are written through and stay what they are; regular files are replaced only when the whole
//! output was written; directories and disks are refused untouched (docs/decisions.md,
//! "Output paths"). Plus: a push killed at any moment never publishes half an image.

mod common;

#[path = "../crates/strata-registry/tests/common/mod.rs"]
#[allow(unused_imports)]
mod registry;

use common::build::Builds;
use common::*;
use std::io::Read;
use std::os::unix::fs::{symlink, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A store with `img:latest`, a one-file image built from scratch (no base, no runtime).
fn tiny_image() -> Builds {
    let b = Builds::new();
    let ctx = b.context("tiny", &[("Dockerfile", "FROM scratch\nCOPY hello /hello\n"), ("hello", "hello\n")]);
    assert_ok("building the tiny image", &b.build(&ctx, &["-t", "img"]));
    b
}

fn save(b: &Builds, output: &Path, extra: &[&str]) -> std::process::Output {
    run(b.strata().args(["save", "img", "--store"]).arg(b.store()).arg("-o").arg(output).args(extra))
}

/// The archive's `manifest.json` names `img:latest` and the config and layer files it holds
/// are in it: what `docker load` reads.
#[track_caller]
fn assert_docker_archive(bytes: &[u8]) {
    let mut names = Vec::new();
    let mut manifest = None;
    for e in tar::Archive::new(bytes).entries().expect("a tar") {
        let mut e = e.expect("a tar entry");
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name == "manifest.json" {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            manifest = Some(serde_json::from_str::<serde_json::Value>(&s).unwrap());
        }
        names.push(name);
    }
    let m = manifest.unwrap_or_else(|| panic!("no manifest.json in {names:?}"));
    assert_eq!(m[0]["RepoTags"][0], "img:latest", "{m}");
    for f in std::iter::once(&m[0]["Config"]).chain(m[0]["Layers"].as_array().unwrap()) {
        assert!(names.contains(&f.as_str().unwrap().to_string()), "{f} missing from {names:?}");
    }
}

#[test]
fn dev_full_fails_with_enospc_and_stays_a_device_even_through_a_symlink() {
    let b = tiny_image();
    let link = b.path().join("to-full");
    symlink("/dev/full", &link).unwrap();
    for target in [Path::new("/dev/full"), link.as_path()] {
        let err = assert_fails(&format!("save -o {}", target.display()), &save(&b, target, &[]));
        assert!(err.contains("No space left on device"), "{err}");
        assert!(std::fs::symlink_metadata("/dev/full").unwrap().file_type().is_char_device(), "/dev/full is still a device");
    }
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link is still a link");
    // /dev/null takes everything, and stays /dev/null.
    assert_ok("save -o /dev/null", &save(&b, Path::new("/dev/null"), &[]));
    assert!(std::fs::symlink_metadata("/dev/null").unwrap().file_type().is_char_device());
}

#[test]
fn dash_and_dev_stdout_write_a_loadable_archive_to_the_pipe() {
    let b = tiny_image();
    for target in ["-", "/dev/stdout"] {
        let out = save(&b, Path::new(target), &[]);
        assert_ok(&format!("save -o {target}"), &out);
        assert_docker_archive(&out.stdout);
    }
    assert!(std::fs::symlink_metadata("/dev/stdout").unwrap().file_type().is_symlink(), "the host's /dev/stdout is untouched");
    // stdout redirected to a file: /dev/stdout is that descriptor, written as it is open.
    let file = b.path().join("redirected.tar");
    let status = b
        .strata()
        .args(["save", "img", "-o", "/dev/stdout", "--store"])
        .arg(b.store())
        .stdout(std::fs::File::create(&file).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    assert_docker_archive(&std::fs::read(&file).unwrap());
    // What skopeo (docker's archive reader) sees in it.
    require_tool("skopeo");
    // skopeo (docker's archive format, via containers/image) copies it out, checking every
    // layer against the config's diff_ids.
    let out = run(Command::new("skopeo").arg("copy").arg(format!("docker-archive:{}", file.display())).arg(format!("oci:{}:x", b.path().join("copied").display())));
    assert_ok("skopeo copy docker-archive:", &out);
}

#[test]
fn a_fifo_gets_the_bytes_and_stays_a_fifo() {
    let b = tiny_image();
    let fifo = b.path().join("pipe");
    assert_ok("mkfifo", &run(Command::new("mkfifo").arg(&fifo)));
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            std::fs::File::open(&fifo).unwrap().read_to_end(&mut bytes).unwrap();
            bytes
        })
    };
    assert_ok("save -o FIFO", &save(&b, &fifo, &[]));
    assert_docker_archive(&reader.join().unwrap());
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn directories_disks_and_kernel_files_are_refused_untouched() {
    let b = tiny_image();
    let dir = b.path().join("a-dir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("kept"), "kept").unwrap();
    let link = b.path().join("to-dir");
    symlink(&dir, &link).unwrap();
    // A block device node (7:0, a loop device) made here, never opened.
    let disk = b.path().join("disk");
    assert_ok("mknod", &run(Command::new("mknod").arg(&disk).args(["b", "7", "0"])));
    let cases: [(&Path, &str); 4] = [(&dir, "is a directory"), (&link, "is a directory"), (&disk, "block device"), (Path::new("/proc/sys/kernel/hostname"), "kernel interface")];
    for (target, says) in cases {
        let err = assert_fails(&format!("save -o {}", target.display()), &save(&b, target, &[]));
        assert!(err.contains(says) && err.contains("refusing"), "{}: {err}", target.display());
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "nothing written into the directory");
    assert!(std::fs::symlink_metadata(&disk).unwrap().file_type().is_block_device());
    // For an OCI layout, a directory is the point; a file in its place is refused.
    let file = b.path().join("plain");
    std::fs::write(&file, "plain").unwrap();
    let err = assert_fails("save --format oci -o FILE", &save(&b, &file, &["--format", "oci"]));
    assert!(err.contains("not a directory"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "plain");
    // strata rpm -o names a folder too.
    let err = assert_fails("rpm -o FILE", &run(b.strata().args(["rpm", "img", "--store"]).arg(b.store()).arg("-o").arg(&file)));
    assert!(err.contains("not a directory"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "plain");
}

/// Temporary files strata left in `dir` (`.NAME.*.tmp`).
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.file_name().unwrap().to_string_lossy().ends_with(".tmp")).collect()
}

#[test]
fn an_existing_file_is_replaced_only_on_success_and_a_symlink_to_it_stays() {
    let b = tiny_image();
    let out_dir = b.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let file = out_dir.join("img.tar");
    std::fs::write(&file, "previous archive").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = out_dir.join("latest.tar");
    symlink("img.tar", &link).unwrap();

    // A save that fails half-way (a layer blob is gone from the store) changes nothing.
    let inspect = b.inspect("img");
    let layer = inspect["layers"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
    let blob = b.store().join("blobs/sha256").join(&layer);
    let kept = b.path().join("kept-blob");
    std::fs::rename(&blob, &kept).unwrap();
    assert_fails("save with a missing layer", &save(&b, &link, &[]));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "previous archive");
    assert!(leftovers(&out_dir).is_empty(), "{:?}", leftovers(&out_dir));

    // A save that succeeds replaces the file the link names, keeping its mode; the link stays.
    std::fs::rename(&kept, &blob).unwrap();
    assert_ok("save through the link", &save(&b, &link, &[]));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_docker_archive(&std::fs::read(&file).unwrap());
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o640);
    assert!(leftovers(&out_dir).is_empty());
    // A folder that does not exist is named, not a temporary file inside it.
    let err = assert_fails("save into a missing folder", &save(&b, &b.path().join("missing/x.tar"), &[]));
    assert!(err.contains("missing") && err.contains("does not exist") && !err.contains(".x.tar."), "{err}");
}

#[test]
fn the_lock_file_follows_the_same_rule() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_fixture_repo(dir.path(), &[pkg("a", "1", &[])]);
    let spec = simple_spec(dir.path(), "fixture", repo.to_str().unwrap(), &[("web", &["a"])]);
    let cache = dir.path().join("cache");
    let resolve_to = |lock: &Path| resolve(&spec, &cache, &["--lock", lock.to_str().unwrap()]);

    let err = assert_fails("--lock /dev/full", &resolve_to(Path::new("/dev/full")));
    assert!(err.contains("No space left on device"), "{err}");
    assert!(std::fs::symlink_metadata("/dev/full").unwrap().file_type().is_char_device());
    let err = assert_fails("--lock DIR", &resolve_to(dir.path()));
    assert!(err.contains("is a directory"), "{err}");
    // A FIFO gets the lock and stays a FIFO (and is not read back first: that would hang).
    let fifo = dir.path().join("lock.fifo");
    assert_ok("mkfifo", &run(Command::new("mkfifo").arg(&fifo)));
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(&fifo).unwrap())
    };
    assert_ok("--lock FIFO", &resolve_to(&fifo));
    let text = reader.join().unwrap();
    assert!(text.contains("\"web\""), "{text}");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    // The default lock beside a spec from someone's repository is never a link: a committed
    // `NAME.lock -> /some/file` would have root replace that file.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    symlink(&victim, spec.with_extension("lock")).unwrap();
    let err = assert_fails("a symlinked default lock", &resolve(&spec, &cache, &[]));
    assert!(err.contains(&*spec.with_extension("lock").to_string_lossy()) && err.contains("symlink") && err.contains("--lock"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    // /dev/stdout: the lock on the pipe, after the summary.
    let out = resolve_to(Path::new("/dev/stdout"));
    assert_ok("--lock /dev/stdout", &out);
    assert!(stdout(&out).contains("\"packages\""), "{}", stdout(&out));
}

#[test]
fn a_push_killed_at_any_moment_never_publishes_half_an_image() {
    let reg = registry::Registry::start(registry::Auth::None);
    let host = reg.host();
    let b = Builds::new();
    {
        // Three incompressible 6 MiB files: the push takes long enough to be cut anywhere.
        let store = strata_oci::store::Store::open_or_create(b.store()).unwrap();
        let files: Vec<(&str, Vec<u8>)> = ["a", "b", "c"].iter().enumerate().map(|(i, n)| (*n, registry::noise(6 << 20, i as u64))).collect();
        registry::build_image(&store, "big:1", "amd64", &files);
    }
    for (i, delay_ms) in [0u64, 30, 100, 250, 600, 1200].iter().enumerate() {
        let remote = format!("{host}/team/big:k{i}");
        let mut child = b
            .strata()
            .args(["push", "big:1", &remote, "--insecure-registry", &host, "--store"])
            .arg(b.store())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(*delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Either the tag is not there at all, or everything it names can be copied.
        let inspect = Command::new("skopeo").args(["inspect", "--tls-verify=false", "--raw"]).arg(format!("docker://{remote}")).output().unwrap();
        if inspect.status.success() {
            let into = b.path().join(format!("copy{i}"));
            let out = run(Command::new("skopeo").args(["copy", "--src-tls-verify=false"]).arg(format!("docker://{remote}")).arg(format!("oci:{}:x", into.display())));
            assert_ok(&format!("copying the image a push killed after {delay_ms} ms published"), &out);
        }
    }
    // And a push after all that completes.
    let remote = format!("{host}/team/big:done");
    assert_ok("a full push", &run(b.strata().args(["push", "big:1", &remote, "--insecure-registry", &host, "--store"]).arg(b.store())));
}

#[test]
fn an_archive_is_not_written_to_a_terminal() {
    let b = tiny_image();
    require_tool("script");
    // `script` gives the command a pseudo-terminal as stdout; -e returns its exit status.
    let cmd = format!("{} save img -o /dev/stdout --store {}", env!("CARGO_BIN_EXE_strata"), b.store().display());
    let out = run(Command::new("script").args(["-qec", &cmd, "/dev/null"]).env("STRATA_CACHE_DIR", b.path().join("cache")));
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("refusing to write an image archive to a terminal"), "{}", stdout(&out));
}
