//! Who the program runs as, where, with which capabilities and limits.

use super::{backends, sh, stdout, test_root};
use crate::{resolve_user, Capabilities, Command, Error, ResolvedUser, Rlimit};
use std::path::Path;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
                      bob:x:1001:100::/home/bob:/bin/sh\n\
                      broken:x:notanumber:1::/:/bin/sh\n";
const GROUP: &str = "root:x:0:\nwheel:x:10:root,alice\nusers:x:100:alice,bob\nstaff:x:50:\n";

fn accounts(root: &Path) {
    std::fs::write(root.join("etc/passwd"), PASSWD).unwrap();
    std::fs::write(root.join("etc/group"), GROUP).unwrap();
}

/// `uid gid groups HOME` as `id` and the shell see them.
fn identity(out: &str) -> String {
    out.trim().to_string()
}

#[test]
fn users_in_dockers_forms() {
    let Some(r) = test_root() else { return };
    accounts(r.path());
    let cases = [
        // Named: its gid, and the groups that list it.
        ("alice", "1000 1000 1000 10 100 /home/alice"),
        // By uid with an entry: the same as by name.
        ("1000", "1000 1000 1000 10 100 /home/alice"),
        // A group given: that gid, and no supplementary groups.
        ("alice:staff", "1000 50 50 /home/alice"),
        ("alice:4242", "1000 4242 4242 /home/alice"),
        ("bob:wheel", "1001 10 10 /home/bob"),
        // Numbers are taken as they are (buildkit does not look them up), HOME still is.
        ("1000:50", "1000 50 50 /home/alice"),
        ("root:root", "0 0 0 /root"),
        // Ids in no file are allowed, as docker allows them.
        ("4242", "4242 0 0 /"),
        ("4242:4343", "4242 4343 4343 /"),
        // Docker's default: uid 0 and the groups that list root.
        ("", "0 0 0 10 /root"),
    ];
    let script = "echo $(id -u) $(id -g) $(id -G) $HOME";
    for (name, sb) in backends().iter() {
        for (user, want) in cases {
            let cmd = Command::new("/bin/sh").args(["-c", script]).user(user);
            let o = sb.run(r.path(), &cmd).unwrap();
            assert_eq!(identity(&stdout(&o)), want, "{name}: user {user:?}: {o:?}");
        }
        // The pipes are the user's, as with runc, so the /dev links to them open.
        let cmd = Command::new("/bin/sh")
            .args([
                "-c",
                "echo out > /dev/stdout; echo err > /dev/stderr; cat /dev/stdin",
            ])
            .stdin_bytes(b"in\n".to_vec())
            .user("alice");
        let o = sb.run(r.path(), &cmd).unwrap();
        assert_eq!(
            (stdout(&o).as_str(), o.stderr.as_slice()),
            ("out\nin\n", &b"err\n"[..]),
            "{name}"
        );
        // Without a user: root, no supplementary groups, nothing inherited from strata.
        let o = sh(sb, r.path(), script);
        assert_eq!(identity(&stdout(&o)), "0 0 0 /root", "{name}");
    }
}

#[test]
fn unknown_names_are_errors() {
    let Some(r) = test_root() else { return };
    accounts(r.path());
    for (name, sb) in backends().iter() {
        for (user, problem) in [
            ("nobody", "no user \"nobody\" in the image's /etc/passwd"),
            (
                "alice:nogroup",
                "no group \"nogroup\" in the image's /etc/group",
            ),
            ("broken", "no user \"broken\" in the image's /etc/passwd"),
        ] {
            let cmd = Command::new("/bin/true").user(user);
            let err = sb.run(r.path(), &cmd).unwrap_err();
            assert!(matches!(err, Error::User { .. }), "{name}: {err}");
            assert!(err.to_string().contains(problem), "{name}: {err}");
            assert!(err
                .to_string()
                .starts_with(&format!("user {user:?} in image root")));
        }
    }
}

#[test]
fn account_files_are_read_inside_the_root() {
    let Some(r) = test_root() else { return };
    // A host file the root's /etc/passwd points at by an absolute link: inside the root
    // the link leads nowhere, so the user is unknown.
    let host = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(host.path(), "mallory:x:0:0::/:/bin/sh\n").unwrap();
    std::os::unix::fs::symlink(host.path(), r.path().join("etc/passwd")).unwrap();
    let err = resolve_user(r.path(), "mallory").unwrap_err();
    assert!(matches!(err, Error::User { .. }), "{err}");
    // A link inside the root is followed, as the program would follow it.
    std::fs::remove_file(r.path().join("etc/passwd")).unwrap();
    std::fs::create_dir(r.path().join("etc/accounts")).unwrap();
    std::fs::write(
        r.path().join("etc/accounts/passwd"),
        "carol:x:2000:2000::/c:/bin/sh\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/accounts/passwd", r.path().join("etc/passwd")).unwrap();
    assert_eq!(
        resolve_user(r.path(), "carol").unwrap(),
        ResolvedUser {
            uid: 2000,
            gid: 2000,
            additional_gids: vec![],
            home: "/c".into()
        }
    );
    // No files at all: numbers work, names do not, the default is plain root.
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(resolve_user(empty.path(), "7:8").unwrap().uid, 7);
    assert_eq!(resolve_user(empty.path(), "7").unwrap().gid, 0);
    assert!(resolve_user(empty.path(), "root").is_err());
    assert_eq!(
        resolve_user(empty.path(), "").unwrap(),
        ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: "/".into()
        }
    );
    // Beyond docker's range.
    assert!(resolve_user(empty.path(), "2147483648").is_err());
}

#[test]
fn working_directory() {
    let Some(r) = test_root() else { return };
    accounts(r.path());
    std::fs::create_dir_all(r.path().join("srv/app")).unwrap();
    std::os::unix::fs::symlink("/srv/app", r.path().join("app")).unwrap();
    std::fs::create_dir(r.path().join("secret")).unwrap();
    std::fs::set_permissions(
        r.path().join("secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    for (name, sb) in backends().iter() {
        assert_eq!(stdout(&sh(sb, r.path(), "pwd")), "/\n", "{name}");
        for (cwd, want) in [
            ("/srv/app", "/srv/app\n"),
            ("/app", "/srv/app\n"),
            ("/tmp", "/tmp\n"),
        ] {
            let cmd = Command::new("/bin/sh")
                .args(["-c", "pwd; touch here"])
                .cwd(cwd);
            let o = sb.run(r.path(), &cmd).unwrap();
            assert_eq!(stdout(&o), want, "{name}: {o:?}");
        }
        assert!(r.path().join("srv/app/here").exists() && r.path().join("tmp/here").exists());
        for (cwd, problem) in [
            ("/nope", "does not exist"),
            ("/bin/busybox", "is not a directory"),
        ] {
            let err = sb
                .run(r.path(), &Command::new("/bin/true").cwd(cwd))
                .unwrap_err();
            assert!(
                matches!(&err, Error::BadRoot { problem: p, .. } if p == &format!("working directory {cwd} {problem}")),
                "{name}: {err}"
            );
        }
        // Entered before the ids change, as runc does: the user starts in a directory
        // only root may enter, and can do nothing there.
        let cmd = Command::new("/bin/sh")
            .args(["-c", "pwd; ls"])
            .cwd("/secret")
            .user("alice");
        let o = sb.run(r.path(), &cmd).unwrap();
        assert_eq!(stdout(&o), "/secret\n", "{name}: {o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
            "{name}: {o:?}"
        );
    }
}

/// A capability set line of `/proc/self/status`, as a number.
fn cap_line(status: &str, name: &str) -> u64 {
    let line = status.lines().find(|l| l.starts_with(name)).unwrap();
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

#[test]
fn capabilities() {
    let Some(r) = test_root() else { return };
    accounts(r.path());
    let own = crate::caps::own();
    const DOCKER: u64 = 0xa804_25fb;
    for (name, sb) in backends().iter() {
        let status = |caps, user: Option<&str>| {
            let mut cmd = Command::new("/bin/cat")
                .arg("/proc/self/status")
                .capabilities(caps);
            if let Some(u) = user {
                cmd = cmd.user(u);
            }
            stdout(&sb.run(r.path(), &cmd).unwrap())
        };
        const NET_RAW: u64 = 1 << 13;
        let scriptlet = status(Capabilities::Scriptlet, None);
        let docker = status(Capabilities::DockerDefault, None);
        for set in ["CapBnd:", "CapPrm:", "CapEff:"] {
            assert_eq!(
                cap_line(&docker, set),
                DOCKER & own,
                "{name}: {set} docker's"
            );
            assert_eq!(
                cap_line(&scriptlet, set),
                DOCKER & own & !NET_RAW,
                "{name}: {set} docker's less net_raw"
            );
        }
        for caps in [Capabilities::Scriptlet, Capabilities::DockerDefault] {
            let alice = status(caps, Some("alice"));
            assert_eq!(cap_line(&alice, "CapEff:"), 0, "{name}: a user has none");
            assert_eq!(cap_line(&alice, "CapPrm:"), 0, "{name}");
            assert_eq!(cap_line(&alice, "CapInh:"), 0, "{name}");
            assert_eq!(cap_line(&alice, "CapAmb:"), 0, "{name}");
            // Both run under the seccomp filter (mode 2).
            assert!(alice.lines().any(|l| l == "Seccomp:\t2"), "{name}: {alice}");
            // And neither may mount.
            let cmd = Command::new("/bin/sh")
                .args(["-c", "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m"])
                .capabilities(caps);
            assert!(!sb.run(r.path(), &cmd).unwrap().status.success(), "{name}");
        }
    }
}

#[test]
fn rlimits_as_configured() {
    let Some(r) = test_root() else { return };
    let script = "echo $(ulimit -Sn) $(ulimit -Hn) $(ulimit -Su) $(ulimit -Hu)";
    for (name, sb) in backends().iter() {
        assert_eq!(
            stdout(&sh(sb, r.path(), script)),
            "1024 1024 4096 4096\n",
            "{name}"
        );
        let cmd = Command::new("/bin/sh")
            .args(["-c", script])
            .rlimit(Rlimit::Nofile, 512, 2048)
            .rlimit(Rlimit::Nproc, 100, 200);
        assert_eq!(
            stdout(&sb.run(r.path(), &cmd).unwrap()),
            "512 2048 100 200\n",
            "{name}"
        );
        let cmd = Command::new("/bin/sh")
            .args(["-c", "ulimit -c; ulimit -Hc"])
            .rlimit(Rlimit::Core, 0, 0);
        assert_eq!(stdout(&sb.run(r.path(), &cmd).unwrap()), "0\n0\n", "{name}");
    }
}
