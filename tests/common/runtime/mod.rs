//! Real container engines for the end-to-end tests: a private `dockerd` and a private rootful
//! `podman`, each living entirely in its own temp dir, plus a tiny HTTP client to check a served
//! image.
//!
//! ```ignore
//! mod common;
//! use common::runtime::{http_get, require_engines, Dockerd, Podman};
//!
//! if !require_engines() { return; }            // panics instead when $CI is set
//! let docker = Dockerd::start().unwrap();     // ~0.7 s; stopped and wiped on drop
//! let image = docker.load(&archive).unwrap(); // "localhost/web:latest" (or an image id)
//! assert_eq!(docker.run(&image, &["busybox", "echo", "ok"]).unwrap().trim(), "ok");
//! let web = docker.serve(&image, 80).unwrap(); // image's own entrypoint, 127.0.0.1:<free port>
//! let (status, body) = web.get("/", Duration::from_secs(20)).unwrap();
//! ```
//!
//! Both engines are configured so that they touch as little of the host as possible and can run
//! side by side with each other, with other private instances (nextest runs test binaries in
//! parallel) and with a system docker or podman:
//!
//! * dockerd gets its own containerd, data root, exec root, pidfile, unix socket (no TCP),
//!   daemon.json (the host's /etc/docker/daemon.json is not read) and key file; no iptables
//!   rules, no ip_forward change, no docker0 (`--bridge none`: containers get only `lo`). For
//!   `serve` a bridge network with a unique bridge name and a free /24 is created on first use
//!   and ports are published by docker-proxy (the userland proxy), which needs no iptables.
//! * podman gets its own containers.conf, storage.conf and registries.conf (the host's are not
//!   read), root, runroot, tmpdir, network config dir and file locks (not the host-wide
//!   /dev/shm/libpod_lock). `run` uses no network; `serve` uses slirp4netns with podman's port
//!   forwarder, so no bridge, iptables rule or sysctl is touched.
//! * Containers started by `run`/`serve` get runc, `--ulimit nofile=1024:1024 --ulimit
//!   nproc=4096:4096` (the engines' defaults ask for more than a process without
//!   CAP_SYS_RESOURCE may set, and runc then fails with "error setting rlimits"), `--pull never`
//!   (no registry is ever contacted) and a cgroup parent owned by the instance.
//!
//! Drop stops everything, kills what is left in the instance's cgroup (and the shims naming its
//! dir), unmounts whatever is still mounted under its dir and removes the dir. The host dirs the
//! engines create on first use (/run/docker, /run/containerd, /run/runc, /run/netns, ...) are
//! shared by all instances: the last strata instance alive on the host removes those that a
//! strata instance created, once they are empty again. See docs/decisions.md for the
//! reasons behind the main flags.


#![allow(dead_code, unused_imports)] // each test binary uses a different subset

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one engine CLI call may take before it is killed (a `load` of a large image is the
/// slowest legitimate call).
pub const CLI_TIMEOUT: Duration = Duration::from_secs(300);
/// How long `Dockerd::start` waits for `docker info` to answer.
pub const DOCKERD_START_TIMEOUT: Duration = Duration::from_secs(60);

/// Explicit limits for every container: within the hard limits of any CI runner, so runc never
/// needs CAP_SYS_RESOURCE to apply them.
const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=4096:4096",
];

/// Host paths the engines create on first use, deepest first: dockerd, containerd and its
/// shims, then podman, runc, netavark's IPAM dir (always initialised, even with no network)
/// and the image library's blob cache (root podman always writes it there). They are shared by
/// every instance on the host; the last strata instance to stop removes the ones a strata
/// instance created, once they are empty again.
const HOST_PATHS: &[&str] = &[
    "/run/docker/plugins",
    "/run/docker",
    "/run/containerd/s",
    "/run/containerd",
    "/etc/docker",
    "/opt/containerd/bin",
    "/opt/containerd/lib",
    "/opt/containerd",
    "/var/lib/containers/cache/blob-info-cache-v1.boltdb",
    "/var/lib/containers/cache",
    "/var/lib/containers",
    "/run/containers/networks",
    "/run/containers",
    "/run/runc",
    "/run/netns",
];
/// Cgroups podman uses when a raw `podman run` is given no --cgroup-parent (deepest first).
const HOST_CGROUPS: &[&str] = &["libpod_parent/conmon", "libpod_parent"];

// ------------------------------------------------------------------------------------------
// Requirements

/// True when docker, podman and runc (with everything they need here: root, containerd,
/// docker-proxy, conmon, slirp4netns, /dev/net/tun) are available. Otherwise: panics when the
/// environment variable CI is set (CI must never skip silently), else prints what is missing
/// and returns false so that the caller can return early.
pub fn require_engines() -> bool {
    let missing = missing_requirements();
    if missing.is_empty() {
        return true;
    }
    let mut msg = format!("the container engine tests need {}", missing.join(", "));
    if missing.iter().any(|m| m.contains('(')) {
        msg.push_str(" (Debian: apt-get install -y docker.io podman runc slirp4netns)");
    }
    if missing.iter().any(|m| m == "root") {
        msg.push_str(" (the engines run rootful: run the tests as root)");
    }
    if std::env::var("CI")
        .map(|v| !v.is_empty() && v != "false" && v != "0")
        .unwrap_or(false)
    {
        panic!("{msg}; CI is set, so this is a failure, not a skip");
    }
    eprintln!("note: skipping: {msg}");
    false
}

fn missing_requirements() -> Vec<String> {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root".to_string());
    }
    for (tool, package) in [
        ("dockerd", "docker.io"),
        ("docker-proxy", "docker.io"),
        ("containerd", "containerd"),
        ("containerd-shim-runc-v2", "containerd"),
        ("podman", "podman"),
        ("conmon", "conmon"),
        ("runc", "runc"),
        ("slirp4netns", "slirp4netns"),
    ] {
        if find_tool(tool).is_none() {
            missing.push(format!("{tool} ({package})"));
        }
    }
    if docker_client().is_none() {
        missing.push("docker (docker.io)".to_string());
    }
    if !Path::new("/dev/net/tun").exists() {
        missing.push("/dev/net/tun (kernel TUN support, for slirp4netns)".to_string());
    }
    missing
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// PATH plus the sbin dirs (dockerd, runc and docker-proxy live in /usr/sbin on Debian, which a
/// non-login PATH may lack).
fn search_path() -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        if !dirs.iter().any(|x| x == Path::new(d)) {
            dirs.push(d.into());
        }
    }
    std::env::join_paths(dirs).expect("PATH entries without ':'")
}

fn find_tool(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&search_path())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The docker client: $STRATA_TEST_DOCKER, else Debian's /usr/bin/docker (the same version as
/// the daemon), else the first `docker` on PATH.
fn docker_client() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("STRATA_TEST_DOCKER") {
        return Some(PathBuf::from(p));
    }
    let debian = Path::new("/usr/bin/docker");
    if debian.is_file() {
        return Some(debian.to_path_buf());
    }
    find_tool("docker")
}

// ------------------------------------------------------------------------------------------
// The engine interface shared by Dockerd and Podman

/// What the tests do with either engine. Dockerd and Podman also have these as inherent
/// methods; the trait lets a test loop over both (`for e in [&docker as &dyn Engine, &podman]`).
pub trait Engine {
    /// "docker" or "podman".
    fn name(&self) -> &'static str;
    /// Runs the engine's CLI against this private instance; never panics (a failure to start
    /// the CLI or a timeout comes back as a failed Output with the reason on stderr).
    fn cli(&self, args: &[&str]) -> Output;
    /// `run --rm` with extra run options `opts` (e.g. `["--entrypoint", "/bin/sh", "-e",
    /// "X=1"]`); `argv` replaces the image's CMD (it is appended to its ENTRYPOINT). Returns
    /// stdout, or an error with the status, stdout and stderr.
    fn run_with(&self, opts: &[&str], image: &str, argv: &[&str]) -> Result<String, String>;
    /// Starts the image detached with extra run options `opts` and `argv` as its CMD (empty:
    /// the image's own entrypoint and cmd), with `container_port` published on 127.0.0.1 at a
    /// free port. The container is removed when the returned Served is dropped.
    fn serve_with(
        &self,
        opts: &[&str],
        image: &str,
        container_port: u16,
        argv: &[&str],
    ) -> Result<Served<'_>, String>;
    /// Removes a container at once (no stop grace period).
    fn force_remove(&self, id: &str) -> Output;

    /// `load -i ARCHIVE` (docker-archive or oci-archive tar); returns the first loaded image
    /// reference (`localhost/name:tag`), or its id when the archive names no tag.
    fn load(&self, archive: &Path) -> Result<String, String> {
        let path = archive
            .to_str()
            .ok_or_else(|| format!("non-UTF-8 path {}", archive.display()))?;
        let out = self.cli(&["load", "-q", "-i", path]);
        check(
            &format!("{} load -i {}", self.name(), archive.display()),
            &out,
        )?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .filter(|l| l.starts_with("Loaded image"))
            .filter_map(|l| l.split_once(": ").map(|(_, r)| r))
            .flat_map(|r| r.split(',').map(str::trim))
            .find(|r| !r.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                format!(
                    "{} load printed no image name:\n{}",
                    self.name(),
                    describe(&out)
                )
            })
    }
    /// `run --rm IMAGE ARGV...` without network; returns stdout.
    fn run(&self, image: &str, argv: &[&str]) -> Result<String, String> {
        self.run_with(&[], image, argv)
    }
    /// `serve_with` with the image's own entrypoint and cmd.
    fn serve(&self, image: &str, container_port: u16) -> Result<Served<'_>, String> {
        self.serve_with(&[], image, container_port, &[])
    }
}

/// A detached container with one port published on 127.0.0.1; removed on drop.
pub struct Served<'a> {
    engine: &'a dyn Engine,
    /// The container id.
    pub id: String,
    /// The port on 127.0.0.1 that reaches the container's port.
    pub host_port: u16,
}

impl Served<'_> {
    /// `http_get` on the published port; on failure the error also has the container's state
    /// and log, which is usually what explains it.
    pub fn get(&self, path: &str, timeout: Duration) -> Result<(u16, String), String> {
        http_get(self.host_port, path, timeout).map_err(|e| {
            format!(
                "{e}\ncontainer {} ({}): {}\n--- its log:\n{}",
                self.id,
                self.engine.name(),
                self.state(),
                self.logs()
            )
        })
    }
    /// The container's stdout and stderr so far.
    pub fn logs(&self) -> String {
        let out = self.engine.cli(&["logs", &self.id]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
    /// "running", "exited (1)", ...
    pub fn state(&self) -> String {
        let out = self.engine.cli(&[
            "inspect",
            "--format",
            "{{.State.Status}} ({{.State.ExitCode}})",
            &self.id,
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Served<'_> {
    fn drop(&mut self) {
        let out = self.engine.force_remove(&self.id);
        if !out.status.success() {
            eprintln!(
                "warning: removing {} container {}: {}",
                self.engine.name(),
                self.id,
                describe(&out)
            );
        }
    }
}

/// Publishes `container_port` on a free loopback port: picks one (the kernel's choice for port
/// 0), then runs `run_detached(host_port)`; when the port was taken in between, tries again.
fn serve_on_free_port<'a>(
    engine: &'a dyn Engine,
    container_port: u16,
    mut run_detached: impl FnMut(u16, &str) -> Output,
) -> Result<Served<'a>, String> {
    let mut last = String::new();
    for attempt in 0..4 {
        let host_port = free_port()?;
        let name = format!("strata-serve-{}-{}", std::process::id(), unique());
        let out = run_detached(host_port, &name);
        if out.status.success() {
            let id = String::from_utf8_lossy(&out.stdout)
                .trim()
                .lines()
                .last()
                .unwrap_or("")
                .to_string();
            let served = Served {
                engine,
                id: if id.is_empty() { name } else { id },
                host_port,
            };
            return Ok(served);
        }
        let _ = engine.force_remove(&name); // a container that was created but could not start
        last = describe(&out);
        let taken = last.contains("address already in use") || last.contains("already allocated");
        if !taken || attempt == 3 {
            break;
        }
    }
    Err(format!(
        "{} run -d (serving port {container_port}) failed:\n{last}",
        engine.name()
    ))
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Implements the inherent `load`/`run`/`run_with`/`serve`/`serve_with` by the trait's.
macro_rules! inherent_engine_methods {
    ($t:ty) => {
        impl $t {
            pub fn load(&self, archive: &Path) -> Result<String, String> {
                Engine::load(self, archive)
            }
            pub fn run(&self, image: &str, argv: &[&str]) -> Result<String, String> {
                Engine::run(self, image, argv)
            }
            pub fn run_with(
                &self,
                opts: &[&str],
                image: &str,
                argv: &[&str],
            ) -> Result<String, String> {
                Engine::run_with(self, opts, image, argv)
            }
            pub fn serve(&self, image: &str, container_port: u16) -> Result<Served<'_>, String> {
                Engine::serve(self, image, container_port)
            }
            pub fn serve_with(
                &self,
                opts: &[&str],
                image: &str,
                container_port: u16,
                argv: &[&str],
            ) -> Result<Served<'_>, String> {
                Engine::serve_with(self, opts, image, container_port, argv)
            }
        }
    };
}

// ------------------------------------------------------------------------------------------
// Dockerd


mod docker;
mod host;
mod podman;

pub use docker::Dockerd;
pub use host::{http_get, mounts_under, sweep_stale_instances};
use host::*;
use podman::{podman_command, podman_remove_all};
pub use podman::Podman;
