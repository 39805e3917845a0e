//! Private container engines for end-to-end tests: a dockerd with its own data root and
//! socket, and podman with its own storage, both started on demand and fully removed on
//! drop (processes stopped, mounts undone, directories deleted).
//!
//! Choices forced by the machines this runs on (see docs/decisions.md): runc as the
//! runtime, explicit nofile/nproc ulimits, no bridge networking (docker's bridge cannot be
//! created here), so checks run with `--network none` and the web server with
//! `--network host`, reached on 127.0.0.1.

use super::{assert_ok, run, stdout};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

pub const ULIMITS: [&str; 4] = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"];

/// A container engine the tests can drive the same way.
pub trait Engine {
    fn name(&self) -> &'static str;
    fn cmd(&self) -> Command;
    fn exec(&self, args: &[&str]) -> Output {
        run(self.cmd().args(args))
    }
}

pub struct Dockerd {
    dir: tempfile::TempDir,
    child: Child,
    sock: PathBuf,
}

impl Dockerd {
    pub fn start() -> Dockerd {
        super::require_tool("dockerd");
        super::require_tool("runc");
        let dir = tempfile::Builder::new().prefix("strata-dockerd-").tempdir().unwrap();
        let sock = dir.path().join("docker.sock");
        let log = std::fs::File::create(dir.path().join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--data-root").arg(dir.path().join("data"))
            .arg("--exec-root").arg(dir.path().join("exec"))
            .arg("--pidfile").arg(dir.path().join("dockerd.pid"))
            .arg("-H").arg(format!("unix://{}", sock.display()))
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let d = Dockerd { dir, child, sock };
        let start = Instant::now();
        loop {
            if d.exec(&["info"]).status.success() {
                return d;
            }
            assert!(start.elapsed() < Duration::from_secs(90), "dockerd did not come up:\n{}", d.log_tail());
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default();
        text.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Engine for Dockerd {
    fn name(&self) -> &'static str {
        "docker"
    }
    fn cmd(&self) -> Command {
        // Debian's client, matching the daemon (a newer client may sit earlier in PATH).
        let mut c = Command::new(if Path::new("/usr/bin/docker").exists() { "/usr/bin/docker" } else { "docker" });
        c.arg("-H").arg(format!("unix://{}", self.sock.display()));
        c
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = self.exec(&["rm", "-f", "strata-web"]);
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        unmount_below(self.dir.path());
    }
}

pub struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    pub fn new() -> Podman {
        super::require_tool("podman");
        super::require_tool("runc");
        Podman { dir: tempfile::Builder::new().prefix("strata-podman-").tempdir().unwrap() }
    }
}

impl Engine for Podman {
    fn name(&self) -> &'static str {
        "podman"
    }
    fn cmd(&self) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        c.arg("--root").arg(d.join("root"))
            .arg("--runroot").arg(d.join("run"))
            .arg("--tmpdir").arg(d.join("tmp"))
            .args(["--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--storage-driver", "overlay"]);
        c
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.exec(&["rm", "-af"]);
        let _ = self.exec(&["system", "reset", "-f"]);
        unmount_below(self.dir.path());
    }
}

/// Lazily unmounts everything mounted below `dir`, deepest first.
fn unmount_below(dir: &Path) {
    let prefix = dir.to_string_lossy().into_owned();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mounts.lines().filter_map(|l| l.split(' ').nth(4)).filter(|p| p.starts_with(&prefix)).collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").arg("-l").arg(p).status();
    }
}

/// Loads a docker-archive, asserting success.
pub fn load(engine: &dyn Engine, archive: &Path) {
    let out = engine.exec(&["load", "-i", archive.to_str().unwrap()]);
    assert_ok(&format!("{} load", engine.name()), &out);
}

/// Runs `argv` in `image` (argv[0] as entrypoint), no network; returns stdout+stderr.
pub fn run_in(engine: &dyn Engine, image: &str, argv: &[String]) -> String {
    let mut args: Vec<&str> = vec!["run", "--rm", "--network", "none"];
    args.extend(ULIMITS);
    args.extend(["--entrypoint", argv[0].as_str(), image]);
    args.extend(argv[1..].iter().map(String::as_str));
    let out = engine.exec(&args);
    assert_ok(&format!("{} run {image} {argv:?}", engine.name()), &out);
    format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr))
}

/// Starts `image` with its own entrypoint on the host network, GETs `path` on
/// 127.0.0.1:`port`, stops it; returns (status, body).
pub fn serve_and_get(engine: &dyn Engine, image: &str, port: u16, path: &str) -> (u16, String) {
    let mut args: Vec<&str> = vec!["run", "-d", "--name", "strata-web", "--network", "host"];
    args.extend(ULIMITS);
    args.push(image);
    let out = engine.exec(&args);
    assert_ok(&format!("{} run -d {image}", engine.name()), &out);
    let got = http_get(port, path, Duration::from_secs(30));
    let logs = engine.exec(&["logs", "strata-web"]);
    let _ = engine.exec(&["rm", "-f", "strata-web"]);
    got.unwrap_or_else(|e| panic!("{}: GET {path} on port {port}: {e}\ncontainer log:\n{}{}", engine.name(), stdout(&logs), String::from_utf8_lossy(&logs.stderr)))
}

/// HTTP/1.0 GET on 127.0.0.1, retried until the server answers or `timeout` passes.
pub fn http_get(port: u16, path: &str, timeout: Duration) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let start = Instant::now();
    loop {
        let attempt = (|| -> std::io::Result<(u16, String)> {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut resp = String::new();
            s.read_to_string(&mut resp)?;
            let status = resp.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
            let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
            Ok((status, body))
        })();
        match attempt {
            Ok(r) => return Ok(r),
            Err(e) if start.elapsed() > timeout => return Err(e.to_string()),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}
