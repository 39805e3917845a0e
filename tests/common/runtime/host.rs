//! Host-side plumbing: HTTP probing, process and mount cleanup, cgroups, markers for
//! shared host paths, and the sweep of instances left by killed test processes.

use super::*;

/// `GET path` over HTTP/1.0 on 127.0.0.1:`host_port`, retried (connection refused, reset,
/// closed without an answer: a proxy that accepted before the server inside listens) until a
/// status line arrives or `timeout` has passed. Returns the status and the body.
pub fn http_get(host_port: u16, path: &str, timeout: Duration) -> Result<(u16, String), String> {
    let deadline = Instant::now() + timeout;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, host_port));
    let mut attempts = 0;
    let mut last = String::from("no attempt");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        attempts += 1;
        match http_get_once(addr, path, left.min(Duration::from_secs(10))) {
            Ok(answer) => return Ok(answer),
            Err(e) => last = e,
        }
        std::thread::sleep(
            Duration::from_millis(100).min(deadline.saturating_duration_since(Instant::now())),
        );
    }
    Err(format!(
        "GET http://127.0.0.1:{host_port}{path}: no HTTP answer within {timeout:?} ({attempts} attempts; last: {last})"
    ))
}

pub(super) fn http_get_once(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(u16, String), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nUser-Agent: strata-tests\r\nConnection: close\r\n\r\n",
        addr.port()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("receive: {e}"))?;
    if raw.is_empty() {
        return Err("connection closed without an answer".into());
    }
    let (head, body) = match find(&raw, b"\r\n\r\n") {
        Some(i) => (&raw[..i], &raw[i + 4..]),
        None => match find(&raw, b"\n\n") {
            Some(i) => (&raw[..i], &raw[i + 2..]),
            None => {
                return Err(format!(
                    "incomplete answer: {:?}",
                    String::from_utf8_lossy(&raw)
                ))
            }
        },
    };
    let head = String::from_utf8_lossy(head);
    let status_line = head.lines().next().unwrap_or("");
    let mut words = status_line.split_whitespace();
    let status = match (
        words.next(),
        words.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => code,
        _ => return Err(format!("not an HTTP status line: {status_line:?}")),
    };
    Ok((status, String::from_utf8_lossy(body).into_owned()))
}

pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ------------------------------------------------------------------------------------------
// Processes, commands

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn umount2(target: *const std::os::raw::c_char, flags: i32) -> i32;
}
pub(super) const SIGTERM: i32 = 15;
pub(super) const SIGKILL: i32 = 9;
pub(super) const MNT_DETACH: i32 = 2;

/// Runs `cmd` with stdin closed, collecting stdout and stderr; kills it after `timeout`. Never
/// panics: a command that cannot start, or is killed, gives a failed Output saying so.
pub(super) fn output_within(cmd: &mut Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed_output(format!("cannot run {cmd:?}: {e}")),
    };
    let (tx, rx) = mpsc::channel();
    for (which, pipe) in [
        (
            0,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            1,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            let _ = tx.send((which, buf));
        });
    }
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                let _ = child.kill();
                break child
                    .wait()
                    .unwrap_or_else(|_| ExitStatus::from_raw(SIGKILL));
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => return failed_output(format!("waiting for {cmd:?}: {e}")),
        }
    };
    // A daemonized grandchild could keep a pipe open: give the readers a bounded time.
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let grace = Instant::now() + Duration::from_secs(5);
    for _ in 0..2 {
        match rx.recv_timeout(grace.saturating_duration_since(Instant::now())) {
            Ok((0, b)) => stdout = b,
            Ok((_, b)) => stderr = b,
            Err(_) => {
                stderr.extend_from_slice(
                    b"\n[harness: an output pipe stayed open after the command exited]",
                );
                break;
            }
        }
    }
    if timed_out {
        stderr.extend_from_slice(
            format!("\n[harness: killed after {timeout:?}: {cmd:?}]").as_bytes(),
        );
    }
    Output {
        status,
        stdout,
        stderr,
    }
}

pub(super) fn failed_output(msg: String) -> Output {
    Output {
        status: ExitStatus::from_raw(127 << 8),
        stdout: Vec::new(),
        stderr: msg.into_bytes(),
    }
}

pub(super) fn check(what: &str, out: &Output) -> Result<(), String> {
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed: {}", describe(out)))
    }
}

/// "exit status: 1\n--- stdout\n...\n--- stderr\n..."
pub(super) fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}

pub(super) fn log_file(path: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}

pub(super) fn tail(path: &Path, lines: usize) -> String {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| format!("({}: {e})", path.display()));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// SIGTERM, up to `grace` to exit, then SIGKILL; always reaps.
pub(super) fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    unsafe { kill(child.id() as i32, SIGTERM) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// SIGKILLs every process whose command line contains `dir` (the instance's own helpers:
/// containerd shims, conmon), except this one; waits up to 5 s for them to go. A killed shim
/// cannot remove its socket in /run/containerd/s/ (named by a hash, not by our dir): those
/// sockets are found through the processes' fds and removed.
pub(super) fn kill_processes_mentioning(dir: &Path) {
    // With the trailing slash: the instance's files, never a dir that merely starts the same.
    let mut needle = dir.as_os_str().as_bytes().to_vec();
    needle.push(b'/');
    let needle = &needle[..];
    let me = std::process::id() as i32;
    let find = || -> Vec<i32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != me)
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| find_bytes(&c, needle))
                    .unwrap_or(false)
            })
            .collect()
    };
    let mut sockets = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = find();
        if pids.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in pids {
            sockets.extend(
                unix_sockets_of(pid)
                    .into_iter()
                    .filter(|p| p.starts_with("/run/containerd/s")),
            );
            unsafe { kill(pid, SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
}

/// The paths of the unix sockets process `pid` has open (bound ones have a path).
pub(super) fn unix_sockets_of(pid: i32) -> Vec<PathBuf> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    std::fs::read_to_string(format!("/proc/{pid}/net/unix"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let path = f.get(7)?;
            inodes
                .iter()
                .any(|i| i == f.get(6).unwrap_or(&""))
                .then(|| PathBuf::from(path))
        })
        .collect()
}

pub(super) fn find_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub(super) fn unique() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A number that differs between instances and processes (bridge names, subnets).
pub(super) fn unique_seed() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut x = (nanos as u64) ^ ((std::process::id() as u64) << 32) ^ ((unique() as u64) << 48);
    // splitmix64 finalizer
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d049bb133111eb);
    (x ^ (x >> 31)) as u32
}

/// /24s of 10.213.0.0/16, starting at a seed-dependent one, that overlap no IPv4 route of the
/// host (every interface address has a route, so this also avoids other bridges).
pub(super) fn free_subnets(seed: u32) -> Vec<String> {
    let routes: Vec<(u32, u32)> = std::fs::read_to_string("/proc/net/route")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let parse = |s: &str| {
                u32::from_str_radix(s, 16)
                    .ok()
                    .map(|v| u32::from_be_bytes(v.to_le_bytes()))
            };
            Some((parse(f.get(1)?)?, parse(f.get(7)?)?))
        })
        .filter(|&(_, mask)| mask != 0) // the default route overlaps everything
        .collect();
    let start = seed % 256;
    (0..256u32)
        .map(|i| (start + i) % 256)
        .filter_map(|n| {
            let net = u32::from_be_bytes([10, 213, n as u8, 0]);
            let mask = 0xffff_ff00u32;
            let overlaps = routes.iter().any(|&(dst, m)| {
                let common = mask & m;
                net & common == dst & common
            });
            (!overlaps).then(|| format!("10.213.{n}.0/24"))
        })
        .collect()
}

/// Where the instance dirs go: $TMPDIR unless it is so long that unix socket paths under it
/// (limit 108 bytes) could break, then /tmp.
pub(super) fn short_temp_root() -> PathBuf {
    let t = std::env::temp_dir();
    if t.as_os_str().len() <= 40 {
        t
    } else {
        PathBuf::from("/tmp")
    }
}

/// Name prefixes of the instance dirs (under the temp root).
pub(super) const DOCKERD_DIR_PREFIX: &str = "strata-engine-dockerd-";
pub(super) const PODMAN_DIR_PREFIX: &str = "strata-engine-podman-";
/// First word of an instance dir's `owner` file: sweep_stale_instances touches no dir without it.
pub(super) const OWNER_TAG: &str = "strata-runtime-rs";

/// Notes in an instance dir which process owns it and its cgroup, for sweep_stale_instances.
pub(super) fn write_owner(dir: &Path, cgroup_parent: &str) -> Result<(), String> {
    std::fs::write(
        dir.join("owner"),
        format!("{OWNER_TAG} {} {cgroup_parent}\n", std::process::id()),
    )
    .map_err(|e| format!("{}: {e}", dir.join("owner").display()))
}

/// Cleans up after test processes that died without running Drop (SIGKILL, Ctrl-C, abort):
/// every instance dir under the temp root whose `owner` file names a process that is gone gets
/// the same treatment as in Drop (its containers removed, its processes and cgroup killed, its
/// bridge deleted, unmounted, removed). Dirs without that file are never touched.
pub fn sweep_stale_instances() {
    let Ok(entries) = std::fs::read_dir(short_temp_root()) else {
        return;
    };
    let mut swept = false;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with(DOCKERD_DIR_PREFIX) || name.starts_with(PODMAN_DIR_PREFIX)) {
            continue;
        }
        let dir = entry.path();
        let owner = std::fs::read_to_string(dir.join("owner")).unwrap_or_default();
        let words: Vec<&str> = owner.split_whitespace().collect();
        let [OWNER_TAG, pid, cgroup] = words[..] else {
            continue;
        };
        if pid.parse::<u32>().is_err() || Path::new("/proc").join(pid).exists() {
            continue; // alive (or not ours to judge)
        }
        if name.starts_with(PODMAN_DIR_PREFIX) {
            let conf = std::fs::read_to_string(dir.join("storage.conf")).unwrap_or_default();
            let driver = conf
                .lines()
                .find_map(|l| l.strip_prefix("driver = "))
                .map(|d| d.trim_matches('"').to_string());
            if let (Some(bin), Some(driver)) = (find_tool("podman"), driver) {
                podman_remove_all(|| podman_command(&bin, &dir, &driver));
            }
        }
        kill_processes_mentioning(&dir);
        if cgroup.starts_with("strata-engine-") {
            let _ = remove_cgroup(cgroup);
        }
        if let Ok(bridge) = std::fs::read_to_string(dir.join("bridge")) {
            let bridge = bridge.trim();
            if bridge.starts_with("strata") && Path::new("/sys/class/net").join(bridge).exists() {
                let _ = output_within(
                    Command::new("ip").args(["link", "delete", bridge]),
                    Duration::from_secs(10),
                );
            }
        }
        if unmount_under(&dir).is_ok() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        swept = true;
    }
    if swept {
        // The shared host dirs, when no instance is left alive.
        drop(HostPaths::record());
    }
}

// ------------------------------------------------------------------------------------------
// Mounts, cgroups, host paths

/// Mount points (from /proc/self/mountinfo, in mount order) and their filesystem types.
pub(super) fn mountinfo() -> Vec<(PathBuf, String)> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let dash = f.iter().position(|&x| x == "-")?;
            Some((
                PathBuf::from(unescape_mount(f.get(4)?)),
                f.get(dash + 1)?.to_string(),
            ))
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash).
pub(super) fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount points at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    mountinfo()
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Unmounts everything at or under `dir`, newest first (lazily when busy). Err lists what is
/// still mounted.
pub(super) fn unmount_under(dir: &Path) -> Result<(), String> {
    for _ in 0..5 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return Ok(());
        }
        for m in mounts.iter().rev() {
            let Ok(c) = CString::new(m.as_os_str().as_bytes()) else {
                continue;
            };
            if unsafe { umount2(c.as_ptr(), 0) } != 0 {
                unsafe { umount2(c.as_ptr(), MNT_DETACH) };
            }
        }
    }
    let left = mounts_under(dir);
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("still mounted: {left:?}"))
    }
}

/// Unmounts what is left under `dir` and removes it; when something cannot be unmounted the
/// dir is kept (removing files through a live mount could reach outside it).
pub(super) fn finish_dir_cleanup(dir: &Path, tmp: Option<tempfile::TempDir>, problems: &mut Vec<String>) {
    match unmount_under(dir) {
        Ok(()) => {
            if let Some(t) = tmp {
                if let Err(e) = t.close() {
                    problems.push(format!("removing {}: {e}", dir.display()));
                }
            }
        }
        Err(e) => {
            problems.push(format!("{e}; keeping {}", dir.display()));
            if let Some(t) = tmp {
                let _ = t.keep();
            }
        }
    }
}

/// The mount points of the cgroup hierarchies (v1 controllers and/or the v2 tree).
pub(super) fn cgroup_roots() -> Vec<PathBuf> {
    mountinfo()
        .into_iter()
        .filter(|(_, t)| t == "cgroup" || t == "cgroup2")
        .map(|(p, _)| p)
        .collect()
}

/// Kills every process in cgroup `name` (under each hierarchy) and removes it with its
/// children, deepest first.
pub(super) fn remove_cgroup(name: &str) -> Result<(), String> {
    let mut left = Vec::new();
    for root in cgroup_roots() {
        let dir = root.join(name);
        if dir.is_dir() && !remove_cgroup_dir(&dir) {
            left.push(dir);
        }
    }
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("cgroups left: {left:?}"))
    }
}

pub(super) fn remove_cgroup_dir(dir: &Path) -> bool {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_dir(&e.path());
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            unsafe { kill(pid, SIGKILL) };
        }
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where instances note the host paths that a strata test engine created (one empty file per
/// path) and which instances are alive (`live/PID-N`). The host paths are shared by every
/// instance, in this and in other test processes, so only the last one to stop removes them.
pub(super) const MARKER_DIR: &str = "/run/strata-test-engines";

pub(super) fn marker(path: &Path) -> PathBuf {
    Path::new(MARKER_DIR).join(
        path.to_string_lossy()
            .trim_start_matches('/')
            .replace('/', "%"),
    )
}

/// Writes an empty file under MARKER_DIR (twice if needed: the last instance of another
/// process may be removing the dirs right then).
pub(super) fn touch_marker(file: &Path) -> bool {
    (0..2).any(|_| {
        let _ = std::fs::create_dir_all(file.parent().unwrap_or(Path::new(MARKER_DIR)));
        std::fs::write(file, b"").is_ok()
    })
}

/// The host paths the engines create and share (HOST_PATHS, HOST_CGROUPS under each cgroup
/// hierarchy), which of them are ours (they did not exist when the instance started, or a
/// strata instance had noted them as created), and the instance's `live` file.
pub(super) struct HostPaths {
    ours: Vec<PathBuf>,
    live: PathBuf,
}

pub(super) fn all_host_paths() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = HOST_PATHS.iter().map(PathBuf::from).collect();
    for root in cgroup_roots() {
        all.extend(HOST_CGROUPS.iter().map(|c| root.join(c)));
    }
    all
}

impl HostPaths {
    /// Registers the instance and notes which host paths are ours.
    pub(super) fn record() -> HostPaths {
        let live =
            Path::new(MARKER_DIR)
                .join("live")
                .join(format!("{}-{}", std::process::id(), unique()));
        touch_marker(&live);
        let ours = all_host_paths()
            .into_iter()
            .filter(|p| {
                if p.symlink_metadata().is_ok() {
                    marker(p).exists()
                } else {
                    touch_marker(&marker(p))
                }
            })
            .collect();
        HostPaths { ours, live }
    }
}

impl Drop for HostPaths {
    /// Unregisters the instance. The last one alive removes the paths of ours, and those any
    /// instance noted: a dir only when empty (and unmounted first when it has become a mount
    /// point: podman bind-mounts /run/netns onto itself), a file always.
    fn drop(&mut self) {
        // Paths of ours that exist stay noted for whichever instance stops last.
        for path in &self.ours {
            if path.symlink_metadata().is_ok() {
                touch_marker(&marker(path));
            }
        }
        let _ = std::fs::remove_file(&self.live);
        let others = std::fs::read_dir(Path::new(MARKER_DIR).join("live"))
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let pid = name.split('-').next().unwrap_or("");
                        let alive = !pid.is_empty() && Path::new("/proc").join(pid).exists();
                        if !alive {
                            let _ = std::fs::remove_file(e.path()); // a crashed process's
                        }
                        alive
                    })
                    .count()
            })
            .unwrap_or(0);
        if others > 0 {
            return;
        }
        for path in all_host_paths() {
            if !self.ours.contains(&path) && !marker(&path).exists() {
                continue;
            }
            match path.symlink_metadata() {
                Ok(m) if m.is_dir() => {
                    let empty = std::fs::read_dir(&path)
                        .map(|mut d| d.next().is_none())
                        .unwrap_or(false);
                    if empty && mountinfo().iter().any(|(m, _)| *m == path) {
                        if let Ok(c) = CString::new(path.as_os_str().as_bytes()) {
                            unsafe { umount2(c.as_ptr(), MNT_DETACH) };
                        }
                    }
                    let _ = std::fs::remove_dir(&path);
                }
                Ok(_) => {
                    let _ = std::fs::remove_file(&path);
                }
                Err(_) => {}
            }
            if path.symlink_metadata().is_err() {
                let _ = std::fs::remove_file(marker(&path));
            }
        }
        let _ = std::fs::remove_dir(Path::new(MARKER_DIR).join("live"));
        let _ = std::fs::remove_dir(MARKER_DIR); // only when empty
    }
}

