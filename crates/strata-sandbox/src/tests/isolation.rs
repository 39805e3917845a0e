//! What the program can see and reach: its own pids, hostname, devices, no network, and
//! no process of its outliving it.

use super::{host_processes, sh, stdout, test_root};
use crate::{run, Command, Error};
use std::time::{Duration, Instant};

#[test]
fn program_is_pid_1_and_sees_only_its_processes() {
    let Some(r) = test_root() else { return };
    let o = sh(
        r.path(),
        "echo $$; echo /proc/[0-9]*; ps -o pid,comm | wc -l",
    );
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "1", "{text}");
    // The shell expands the glob itself: no other process exists, nothing of the host.
    let pids: Vec<&str> = lines[1].split(' ').collect();
    assert!(pids.contains(&"/proc/1") && pids.len() <= 2, "{text}");
    // A header, the shell, ps and wc.
    assert!(
        lines[2].parse::<u32>().unwrap() <= 4,
        "ps lists only the sandbox: {text}"
    );
    // Two commands, or busybox would exec the last one in place of the shell.
    let o = sh(r.path(), "cat /proc/1/cmdline; true");
    assert_eq!(
        o.stdout, b"/bin/sh\0-c\0cat /proc/1/cmdline; true\0",
        "{o:?}"
    );
}

#[test]
fn hostname_is_isolated() {
    let Some(r) = test_root() else { return };
    let host = rustix::system::uname().nodename().to_owned();
    assert_eq!(stdout(&sh(r.path(), "hostname")), "localhost\n");
    let cmd = Command::new("/bin/sh")
        .args(["-c", "hostname; hostname changed-inside; hostname"])
        .hostname("builder");
    assert_eq!(
        stdout(&run(r.path(), &cmd).unwrap()),
        "builder\nchanged-inside\n"
    );
    assert_eq!(
        rustix::system::uname().nodename(),
        host.as_c_str(),
        "the host's name is untouched"
    );
}

#[test]
fn there_is_no_network() {
    let Some(r) = test_root() else { return };
    let o = sh(r.path(), "ip -o link");
    let links = stdout(&o);
    assert_eq!(links.lines().count(), 1, "only the loopback: {links}");
    assert!(
        links.starts_with("1: lo: <LOOPBACK>"),
        "loopback is down: {links}"
    );
    let o = sh(r.path(), "ip -o addr | wc -l");
    assert_eq!(stdout(&o), "0\n", "no address at all");
    // A server on the host's loopback is out of reach.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let o = sh(
        r.path(),
        &format!("echo hello | nc 127.0.0.1 {port}; echo rc=$?"),
    );
    assert!(stdout(&o).contains("rc=1"), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unreachable"),
        "{o:?}"
    );
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "no connection came in"
    );
}

#[test]
fn dev_holds_working_devices() {
    let Some(r) = test_root() else { return };
    let script = "echo lost > /dev/null; wc -c < /dev/null; head -c 5 /dev/zero | wc -c; \
                  head -c 7 /dev/urandom | wc -c; head -c 3 /dev/random | wc -c; \
                  echo x > /dev/full || echo full; stat -c '%n %F %a %t:%T' /dev/null /dev/tty; \
                  for l in fd stdin stdout stderr; do readlink /dev/$l; done; stat -c '%a' /dev/shm; \
                  echo to-stderr > /dev/stderr";
    let o = sh(r.path(), script);
    let want = "0\n5\n7\n3\nfull\n/dev/null character special file 666 1:3\n/dev/tty character special file 666 5:0\n\
                /proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\n1777\n";
    assert_eq!(stdout(&o), want);
    assert!(
        String::from_utf8_lossy(&o.stderr).ends_with("to-stderr\n"),
        "{o:?}"
    );
    assert!(
        !r.path().join("dev").exists(),
        "nothing written to /dev reached the root"
    );
}

#[test]
fn leftover_processes_die_with_the_program() {
    let Some(r) = test_root() else { return };
    let start = Instant::now();
    let o = sh(r.path(), "sleep 4242 & sleep 4243 & echo started");
    assert_eq!(stdout(&o), "started\n");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "returned promptly: {:?}",
        start.elapsed()
    );
    assert!(
        host_processes(&["sleep", "4242"]).is_empty(),
        "background sleep survived"
    );
    assert!(
        host_processes(&["sleep", "4243"]).is_empty(),
        "background sleep survived"
    );
}

#[test]
fn timeout_kills_everything() {
    let Some(r) = test_root() else { return };
    let start = Instant::now();
    let cmd = Command::new("/bin/sh")
        .args(["-c", "sleep 4343 & echo partial; sleep 4344"])
        .timeout(Duration::from_millis(500));
    let err = run(r.path(), &cmd).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("/bin/sh did not finish within 500ms"),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(
        host_processes(&["sleep", "4343"]).is_empty()
            && host_processes(&["sleep", "4344"]).is_empty()
    );
    assert!(
        !r.path().join("proc").exists(),
        "mountpoints removed after a timeout"
    );
}
