//! gpgcheck: RPMs signed by `rpmsign` with throwaway keys (RSA, EdDSA, DSA; header-only and
//! rpm v3 header+payload signatures), checked by the cache with the repo's keys.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;
use strata_fetch::{
    FetchError, FetchJob, FetchOptions, GpgKey, NoProgress, PackageError, RpmCache,
};
use strata_repo::Fetcher;

struct Fixture {
    dir: PathBuf,
    /// Fingerprint of key `a`, the RSA key most packages are signed with.
    fpr_a: String,
}

impl Fixture {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn key(&self, name: &str) -> GpgKey {
        GpgKey::File(self.file(&format!("{name}.asc")))
    }
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (the gpg tests need gnupg and rpm's rpmsign)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Keys and signed packages, made once per test run in a throwaway GNUPGHOME.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Result<Fixture, String>> = OnceLock::new();
    // A failed set-up is kept as an error: retrying it from the next test would race with
    // the gpg-agent of the first attempt.
    let made = F.get_or_init(|| {
        std::panic::catch_unwind(make_fixture).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "fixture set-up panicked".into())
        })
    });
    made.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

/// The absolute path of `tool` on PATH: rpm execs `%__gpg` without searching PATH.
fn which(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{tool}` not found on PATH (the gpg tests need gnupg and rpm's rpmsign)")
        })
}

fn make_fixture() -> Fixture {
    {
        // One directory per test process: nextest runs each test in its own process, and
        // two processes regenerating one GNUPGHOME race on its keyring.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("strata-fetch-gpg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let home = dir.join("gnupg");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let gpg = || {
            let mut c = Command::new(which("gpg"));
            c.env("GNUPGHOME", &home)
                .args(["--batch", "--quiet", "--passphrase", ""]);
            c
        };
        for (name, algo) in [
            ("a", "rsa2048"),
            ("b", "rsa2048"),
            ("e", "ed25519"),
            ("d", "dsa2048"),
        ] {
            run(gpg().args([
                "--quick-gen-key",
                &format!("Strata Test {name} <{name}@strata.invalid>"),
                algo,
                "sign",
                "never",
            ]));
            let public =
                run(gpg().args(["--armor", "--export", &format!("{name}@strata.invalid")]));
            std::fs::write(dir.join(format!("{name}.asc")), public).unwrap();
        }
        let both = run(gpg().args([
            "--armor",
            "--export",
            "b@strata.invalid",
            "a@strata.invalid",
        ]));
        std::fs::write(dir.join("b+a.asc"), both).unwrap();
        let colons = String::from_utf8(run(gpg().args([
            "--with-colons",
            "--fingerprint",
            "a@strata.invalid",
        ])))
        .unwrap();
        let fpr_a = colons
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .unwrap()
            .trim_matches(':')
            .to_string();

        let source = corpus_rpms()
            .into_iter()
            .find(|p| p.to_string_lossy().contains("/dash-"))
            .unwrap();
        let sign = |name: &str, key: &str, extra: &[&str]| {
            let out = dir.join(name);
            std::fs::copy(&source, &out).unwrap();
            run(Command::new("rpmsign")
                .env("GNUPGHOME", &home)
                .arg("--addsign")
                .args(extra)
                .args(["--define", &format!("__gpg {}", which("gpg").display())])
                .args(["--define", &format!("_gpg_name {key}@strata.invalid")])
                .arg(&out)
                .stdin(std::process::Stdio::null()));
            out
        };
        sign("signed-a.rpm", "a", &[]);
        sign("signed-e.rpm", "e", &[]);
        sign("signed-d.rpm", "d", &[]);
        let v3 = sign("v3-a.rpm", "a", &["--rpmv3"]);
        std::fs::copy(&source, dir.join("unsigned.rpm")).unwrap();

        // Header+payload signature only, as old packages have: hide the header signature.
        let mut bytes = std::fs::read(&v3).unwrap();
        let (sig_index, count) = (96 + 16, be32(&bytes[96 + 8..]) as usize);
        let entry = (0..count)
            .map(|i| sig_index + 16 * i)
            .find(|&e| be32(&bytes[e..]) == 268)
            .unwrap();
        bytes[entry..entry + 4].copy_from_slice(&9999u32.to_be_bytes());
        std::fs::write(dir.join("legacy-a.rpm"), &bytes).unwrap();

        // One byte of the signed header changed.
        let mut bytes = std::fs::read(dir.join("signed-a.rpm")).unwrap();
        let (main, main_len) = main_header(&bytes);
        bytes[main + main_len - 40] ^= 0x20;
        std::fs::write(dir.join("tampered-header.rpm"), &bytes).unwrap();
        // One byte of the payload changed: the header still verifies, its payload digest not.
        let mut bytes = std::fs::read(dir.join("signed-a.rpm")).unwrap();
        let n = bytes.len();
        bytes[n - 100] ^= 0x20;
        std::fs::write(dir.join("tampered-payload.rpm"), &bytes).unwrap();

        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", &home)
            .args(["--kill", "gpg-agent"])
            .status();
        Fixture { dir, fpr_a }
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

/// Offset and length of the main header (magic through data).
fn main_header(b: &[u8]) -> (usize, usize) {
    let len = |at: usize| 16 + 16 * be32(&b[at + 8..]) as usize + be32(&b[at + 12..]) as usize;
    let sig_len = len(96);
    let main = 96 + sig_len + (8 - sig_len % 8) % 8;
    (main, len(main))
}

fn job(file: &str, keys: Option<Vec<GpgKey>>) -> FetchJob {
    let path = fixture().file(file);
    FetchJob {
        gpg_keys: keys,
        ..job_for(&path, path.display().to_string())
    }
}

fn fetch(cache_dir: &Path, jobs: &[FetchJob]) -> Result<Vec<PathBuf>, Vec<PackageError>> {
    let cache = RpmCache::open(cache_dir)
        .unwrap()
        .with_fetcher(Fetcher::with_backoff(vec![Duration::from_millis(1); 2]));
    let opts = FetchOptions {
        backoff: vec![Duration::from_millis(1); 2],
        ..FetchOptions::default()
    };
    cache
        .fetch_all(jobs, &opts, &NoProgress)
        .map_err(|e| match e {
            FetchError::Packages { failed, .. } => failed,
            other => panic!("{other}"),
        })
}

fn fetch_one_err(job: FetchJob) -> PackageError {
    let tmp = tempfile::tempdir().unwrap();
    let mut failed = fetch(tmp.path(), &[job]).unwrap_err();
    assert!(temp_files(tmp.path()).is_empty());
    failed.remove(0)
}

#[test]
fn good_signatures_verify() {
    let f = fixture();
    let inline = GpgKey::Data(std::fs::read(f.file("e.asc")).unwrap());
    let jobs = [
        job("signed-a.rpm", Some(vec![f.key("a")])),
        job("signed-e.rpm", Some(vec![inline])),
        job("signed-d.rpm", Some(vec![f.key("b"), f.key("d")])),
        // Both header and header+payload signatures.
        job("v3-a.rpm", Some(vec![f.key("b+a")])),
        job("legacy-a.rpm", Some(vec![f.key("a")])),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let paths = fetch(tmp.path(), &jobs).unwrap();
    assert_eq!(paths.len(), 5);
}

#[test]
fn unsigned_package_with_gpgcheck_is_refused() {
    let f = fixture();
    let e = fetch_one_err(job("unsigned.rpm", Some(vec![f.key("a")])));
    let name = "unsigned";
    assert_eq!(
        e.to_string(),
        format!("package {name} is not signed, but repo base has gpgcheck=1")
    );
    // Without gpgcheck the same file is fine.
    let tmp = tempfile::tempdir().unwrap();
    fetch(tmp.path(), &[job("unsigned.rpm", None)]).unwrap();
}

#[test]
fn tampered_packages_are_refused_and_not_cached() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let header = job("tampered-header.rpm", Some(vec![f.key("a")]));
    let failed = fetch(tmp.path(), std::slice::from_ref(&header)).unwrap_err();
    assert!(
        matches!(failed[0], PackageError::BadSignature { .. }),
        "{}",
        failed[0]
    );
    assert!(
        failed[0].to_string().contains("bad signature"),
        "{}",
        failed[0]
    );
    let cache = RpmCache::open(tmp.path()).unwrap();
    assert!(!cache.path_of(&header.checksum).unwrap().exists());

    // The lock's checksum matches the tampered file, but its header names another payload:
    // refused even without gpgcheck, since rpm would refuse to install it.
    for keys in [Some(vec![f.key("a")]), None] {
        let e = fetch_one_err(job("tampered-payload.rpm", keys));
        let msg = e.to_string();
        assert!(
            matches!(e, PackageError::Corrupt { .. }) && msg.contains("payload has sha256 digest"),
            "{msg}"
        );
    }
}

#[test]
fn signature_by_another_key_is_refused() {
    let f = fixture();
    for file in ["signed-a.rpm", "legacy-a.rpm"] {
        let e = fetch_one_err(job(file, Some(vec![f.key("b"), f.key("e")])));
        let PackageError::UnknownKey { key_id, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(*key_id, f.fpr_a);
        assert!(
            e.to_string().contains("not among the gpgkeys of repo base"),
            "{e}"
        );
    }
}

#[test]
fn cached_packages_are_checked_again_each_time() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    fetch(tmp.path(), &[job("signed-a.rpm", Some(vec![f.key("a")]))]).unwrap();
    let failed = fetch(tmp.path(), &[job("signed-a.rpm", Some(vec![f.key("b")]))]).unwrap_err();
    assert!(
        matches!(failed[0], PackageError::UnknownKey { .. }),
        "{}",
        failed[0]
    );
    // A job without gpgcheck uses the same verified entry.
    fetch(tmp.path(), &[job("signed-a.rpm", None)]).unwrap();
}

#[test]
fn unusable_keys_fail_before_any_download() {
    let f = fixture();
    let server = Server::start(&f.dir);
    let garbage = f.file("garbage.asc");
    std::fs::write(
        &garbage,
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----\n",
    )
    .unwrap();
    let cases = [
        (vec![], "no gpgkey is configured"),
        (
            vec![GpgKey::File(garbage)],
            "is not a usable OpenPGP public key",
        ),
        (
            vec![GpgKey::File("/nonexistent/RPM-GPG-KEY".into())],
            "cannot read gpgkey /nonexistent/RPM-GPG-KEY",
        ),
        (
            vec![f.key("a"), GpgKey::Data(b"junk".to_vec())],
            "(given inline) is not a usable OpenPGP public key",
        ),
    ];
    for (keys, want) in cases {
        let path = f.file("signed-a.rpm");
        let j = FetchJob {
            gpg_keys: Some(keys),
            ..job_for(&path, server.url_of(&path))
        };
        let msg = fetch_one_err(j).to_string();
        assert!(
            msg.contains("repo base has gpgcheck=1, but") && msg.contains(want),
            "{msg}"
        );
    }
    assert_eq!(server.total_hits(), 0);
}
