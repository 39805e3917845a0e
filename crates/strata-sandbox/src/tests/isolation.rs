//! What the program can see and reach: its own pids, hostname, devices, network, what of
//! the host's kernel it may change, and no process of its outliving it.

use super::{backends, host_processes, sh, stdout, test_root};
use crate::{Command, Error, Network};
use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

#[test]
fn program_is_pid_1_and_sees_only_its_processes() {
    let Some(r) = test_root() else { return };
    for (name, sb) in backends().iter() {
        let o = sh(
            sb,
            r.path(),
            "echo $$; echo /proc/[0-9]*; ps -o pid,comm | wc -l",
        );
        let text = stdout(&o);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "1", "{name}: {text}");
        // The shell expands the glob itself: no other process exists, nothing of the host.
        let pids: Vec<&str> = lines[1].split(' ').collect();
        assert!(
            pids.contains(&"/proc/1") && pids.len() <= 2,
            "{name}: {text}"
        );
        // A header, the shell, ps and wc.
        assert!(
            lines[2].parse::<u32>().unwrap() <= 4,
            "{name}: ps lists only the sandbox: {text}"
        );
        // Two commands, or busybox would exec the last one in place of the shell.
        let o = sh(sb, r.path(), "cat /proc/1/cmdline; true");
        assert_eq!(
            o.stdout, b"/bin/sh\0-c\0cat /proc/1/cmdline; true\0",
            "{name}: {o:?}"
        );
    }
}

#[test]
fn hostname_is_isolated() {
    let Some(r) = test_root() else { return };
    let host = rustix::system::uname().nodename().to_owned();
    for (name, sb) in backends().iter() {
        assert_eq!(
            stdout(&sh(sb, r.path(), "hostname")),
            "localhost\n",
            "{name}"
        );
        // As under docker, the program cannot set it (sethostname needs CAP_SYS_ADMIN and
        // docker's seccomp profile refuses it).
        let cmd = Command::new("/bin/sh")
            .args([
                "-c",
                "hostname; cat /etc/hostname; hostname changed-inside 2>/dev/null; hostname",
            ])
            .hostname("builder");
        assert_eq!(
            stdout(&sb.run(r.path(), &cmd).unwrap()),
            "builder\nbuilder\nbuilder\n",
            "{name}"
        );
        assert_eq!(
            rustix::system::uname().nodename(),
            host.as_c_str(),
            "{name}: the host's name is untouched"
        );
    }
}

/// An address of the host's own that is not loopback, if it has one.
fn host_address() -> Option<std::net::IpAddr> {
    // Connecting a UDP socket sends nothing; it only picks the source address.
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    Some(s.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback())
}

#[test]
fn no_network_but_a_loopback_of_its_own() {
    let Some(r) = test_root() else { return };
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    for (name, sb) in backends().iter() {
        let o = sh(sb, r.path(), "ip -o link");
        let links = stdout(&o);
        assert_eq!(
            links.lines().count(),
            1,
            "{name}: only the loopback: {links}"
        );
        assert!(
            links.starts_with("1: lo: <LOOPBACK,UP,LOWER_UP>"),
            "{name}: the loopback is up: {links}"
        );
        let o = sh(sb, r.path(), "ip -o addr");
        let addrs = stdout(&o);
        assert!(
            addrs.contains("inet 127.0.0.1/8") && addrs.lines().count() <= 2,
            "{name}: only the loopback's addresses: {addrs}"
        );
        // Its own loopback works (a server and a client inside)...
        let o = sh(
            sb,
            r.path(),
            // The listener's stdin stays open (busybox nc may hang up as soon as its stdin
            // ends, before the client's line arrives), the client retries until the
            // listener is up, and the line is awaited in the file: on a loaded machine a
            // fixed pause lost one race or the other now and then.
            "(sleep 30 & echo $! > /tmp/sleeper; wait) 2>/dev/null | nc -l -p 7777 > /tmp/got & l=$!; i=0; \
             until echo inside | nc 127.0.0.1 7777 2>/dev/null; do i=$((i+1)); [ $i -ge 100 ] && break; sleep 0.1; done; \
             j=0; until [ -s /tmp/got ] || [ $j -ge 100 ]; do j=$((j+1)); sleep 0.1; done; \
             kill $l $(cat /tmp/sleeper) 2>/dev/null; cat /tmp/got",
        );
        assert_eq!(stdout(&o), "inside\n", "{name}: {o:?}");
        // ...but a server on the host's loopback is not on it, and the host's other
        // addresses are unreachable.
        let o = sh(
            sb,
            r.path(),
            &format!("echo hello | nc -w 2 127.0.0.1 {port}; echo rc=$?"),
        );
        assert!(stdout(&o).contains("rc=1"), "{name}: {o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("refused"),
            "{name}: {o:?}"
        );
        if let Some(ip) = host_address() {
            let o = sh(
                sb,
                r.path(),
                &format!("echo hello | nc -w 2 {ip} {port}; echo rc=$?"),
            );
            assert!(stdout(&o).contains("rc=1"), "{name}: {o:?}");
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("unreachable"),
                "{name}: {o:?}"
            );
        }
        assert_eq!(
            listener.accept().unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock,
            "{name}: no connection came in"
        );
    }
}

#[test]
fn host_network_is_the_hosts() {
    let Some(r) = test_root() else { return };
    let mut host_links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    host_links.sort();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    for (name, sb) in backends().iter() {
        let cmd = Command::new("/bin/sh")
            .args(["-c", "ls /sys/class/net; ip -o link | wc -l"])
            .network(Network::Host);
        let o = sb.run(r.path(), &cmd).unwrap();
        let text = stdout(&o);
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let count: usize = lines.pop().unwrap().parse().unwrap();
        lines.sort();
        assert_eq!(lines, host_links, "{name}: the host's interfaces");
        assert_eq!(count, host_links.len(), "{name}: {text}");
        // The host's loopback is the program's.
        let cmd = Command::new("/bin/sh")
            .args([
                "-c",
                &format!("echo hello-{name} | nc -w 5 127.0.0.1 {port}"),
            ])
            .network(Network::Host);
        let got = std::thread::scope(|s| {
            let accept = s.spawn(|| {
                let (mut c, _) = listener.accept().unwrap();
                let mut got = String::new();
                c.read_to_string(&mut got).unwrap();
                got
            });
            let o = sb.run(r.path(), &cmd).unwrap();
            assert!(o.status.success(), "{name}: {o:?}");
            accept.join().unwrap()
        });
        assert_eq!(got, format!("hello-{name}\n"));
    }
}

#[test]
fn dev_holds_working_devices() {
    let Some(r) = test_root() else { return };
    let script = "echo lost > /dev/null; wc -c < /dev/null; head -c 5 /dev/zero | wc -c; \
                  head -c 7 /dev/urandom | wc -c; head -c 3 /dev/random | wc -c; \
                  echo x > /dev/full || echo full; stat -c '%n %F %a %t:%T' /dev/null /dev/tty; \
                  for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done; \
                  stat -c '%a' /dev/shm; echo shm > /dev/shm/x && cat /dev/shm/x; \
                  stat -c '%n %F' /dev/pts/ptmx /dev/mqueue; echo to-stderr > /dev/stderr";
    for (name, sb) in backends().iter() {
        let o = sh(sb, r.path(), script);
        let want = "0\n5\n7\n3\nfull\n/dev/null character special file 666 1:3\n/dev/tty character special file 666 5:0\n\
                    /proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\npts/ptmx\n1777\nshm\n\
                    /dev/pts/ptmx character special file\n/dev/mqueue directory\n";
        assert_eq!(stdout(&o), want, "{name}: {o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).ends_with("to-stderr\n"),
            "{name}: {o:?}"
        );
        assert!(
            !r.path().join("dev").exists(),
            "{name}: nothing written to /dev reached the root"
        );
    }
}

#[test]
fn both_executors_mount_the_same_things() {
    let Some(r) = test_root() else { return };
    // Mountpoint, type and the flags that matter, as the program sees them.
    let script = "awk 2>/dev/null; while read -r id parent major root point opts rest; do \
                  fs=${rest#*- }; echo \"$point ${fs%% *} $opts\"; done < /proc/self/mountinfo";
    let mut seen = Vec::new();
    for (name, sb) in backends().iter() {
        let mut lines: Vec<String> = stdout(&sh(sb, r.path(), script))
            .lines()
            .map(|l| {
                // Mount options beyond ro/rw and the nosuid/nodev/noexec trio are
                // reported per filesystem and may differ in order: keep those.
                let mut f = l.split(' ');
                let (point, fs, opts) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
                let mut keep: Vec<&str> = opts
                    .split(',')
                    .filter(|o| ["ro", "rw", "nosuid", "nodev", "noexec"].contains(o))
                    .collect();
                keep.sort();
                format!("{point} {fs} {}", keep.join(","))
            })
            .collect();
        lines.sort();
        seen.push((name, lines));
    }
    // Where they differ by design: the namespace executor binds the host's device nodes
    // into a nodev /dev and makes the root nodev (runc relies on the devices cgroup), and
    // its masks bind the host's /dev/null, a devtmpfs file.
    let normalize = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| !crate::spec::DEVICES.iter().any(|(d, _, _)| l.starts_with(&format!("{d} "))))
            .map(|l| {
                let (point, rest) = l.split_once(' ').unwrap();
                let (fs, opts) = rest.split_once(' ').unwrap_or((rest, ""));
                let opts: Vec<&str> = opts
                    .split(',')
                    .filter(|o| !(*o == "nodev" && (point == "/" || point == "/dev")))
                    .filter(|o| !(fs == "devtmpfs" && *o == "nosuid"))
                    .collect();
                let fs = if fs == "devtmpfs" { "tmpfs" } else { fs };
                let opts = if fs == "tmpfs" && point.starts_with("/proc/") { "rw".to_string() } else { opts.join(",") };
                format!("{point} {fs} {opts}")
            })
            .collect()
    };
    let (first, rest) = seen.split_first().unwrap();
    for other in rest {
        assert_eq!(normalize(&first.1), normalize(&other.1), "{} and {} differ", first.0, other.0);
    }
    let builtin = &seen.iter().find(|(n, _)| *n == "builtin").unwrap().1;
    for point in ["/", "/dev"] {
        let line = builtin.iter().find(|l| l.starts_with(&format!("{point} "))).unwrap();
        assert!(line.contains("nodev"), "a node made in {point} cannot be opened: {line}");
    }
    let points: Vec<&str> = first
        .1
        .iter()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    for want in [
        "/",
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/etc/hosts",
    ] {
        assert!(points.contains(&want), "{want} in {points:?}");
    }
}

#[test]
fn the_hosts_kernel_settings_are_out_of_reach() {
    let Some(r) = test_root() else { return };
    let masked: Vec<&str> = crate::spec::MASKED_PATHS
        .iter()
        .copied()
        .filter(|p| std::path::Path::new(p).is_file())
        .collect();
    // Not in every kernel.
    let sysrq = std::path::Path::new("/proc/sysrq-trigger").exists();
    let mut script = "echo 1 > /proc/sys/vm/drop_caches; touch /sys/strata".to_string();
    if sysrq {
        script.push_str("; echo x > /proc/sysrq-trigger");
    }
    for (name, sb) in backends().iter() {
        let o = sh(sb, r.path(), &script);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            err.matches("Read-only file system").count(),
            2 + usize::from(sysrq),
            "{name}: /proc/sys, /sys (and /proc/sysrq-trigger) are read-only: {err}"
        );
        for path in &masked {
            let o = sh(sb, r.path(), &format!("wc -c < {path}"));
            assert_eq!(
                stdout(&o),
                "0\n",
                "{name}: {path} reads as /dev/null: {o:?}"
            );
        }
    }
}

#[test]
fn leftover_processes_die_with_the_program() {
    let Some(r) = test_root() else { return };
    for (name, sb) in backends().iter() {
        let start = Instant::now();
        let o = sh(sb, r.path(), "sleep 4242 & sleep 4243 & echo started");
        assert_eq!(stdout(&o), "started\n", "{name}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{name}: returned promptly: {:?}",
            start.elapsed()
        );
        assert!(
            host_processes(&["sleep", "4242"]).is_empty()
                && host_processes(&["sleep", "4243"]).is_empty(),
            "{name}: a background sleep survived"
        );
    }
}

#[test]
fn timeout_kills_everything() {
    let Some(r) = test_root() else { return };
    for (name, sb) in backends().iter() {
        let start = Instant::now();
        // A tree: the shell, a subshell and their sleeps.
        let cmd = Command::new("/bin/sh")
            .args([
                "-c",
                "sleep 4343 & (sleep 4345 & sleep 4346) & echo partial; sleep 4344",
            ])
            .timeout(Duration::from_millis(500));
        let err = sb.run(r.path(), &cmd).unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{name}: {err}");
        assert!(
            err.to_string()
                .starts_with("/bin/sh did not finish within 500ms"),
            "{name}: {err}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{name}: {:?}",
            start.elapsed()
        );
        for n in ["4343", "4344", "4345", "4346"] {
            assert!(
                host_processes(&["sleep", n]).is_empty(),
                "{name}: sleep {n} survived"
            );
        }
        assert!(
            !r.path().join("proc").exists() && !r.path().join("etc/hosts").exists(),
            "{name}: mountpoints removed after a timeout"
        );
    }
}
