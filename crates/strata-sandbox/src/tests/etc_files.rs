//! The generated `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`: what the program
//! reads, and that none of it is left in the root, whatever the root had there.

use super::{backends, listing, stdout, test_root};
use crate::{Command, Network};
use std::path::Path;

const SHOW: &str = "cat /etc/hosts; echo --; cat /etc/resolv.conf; echo --; cat /etc/hostname";

fn expected(hostname: &str, resolv: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n--\n{resolv}--\n{hostname}\n"
    )
}

const NO_SERVER: &str = "# no network in this sandbox, so no name server\n";

/// Runs [`SHOW`] (and `extra`, which prints `tail`) in `root` with both executors, checks
/// what the program read and that the root is as it was.
fn check(root: &Path, extra: &str, tail: &str) {
    std::thread::sleep(std::time::Duration::from_millis(20));
    let before = listing(root);
    for (name, sb) in backends().iter() {
        let cmd = Command::new("/bin/sh")
            .args(["-c", &format!("{SHOW}; {extra}")])
            .hostname("builder");
        let o = sb.run(root, &cmd).unwrap();
        let want = expected("builder", NO_SERVER) + tail;
        assert_eq!(stdout(&o), want, "{name}: {o:?}");
        assert!(o.status.success(), "{name}: {o:?}");
        assert_eq!(listing(root), before, "{name}: the root is as it was");
    }
}

#[test]
fn generated_in_a_root_without_etc() {
    let Some(r) = test_root() else { return };
    std::fs::remove_dir(r.path().join("etc")).unwrap();
    // Writing to them changes only the sandbox's copies.
    check(
        r.path(),
        "echo '10.0.0.1 extra' >> /etc/hosts; echo x > /etc/resolv.conf",
        "",
    );
    assert!(!r.path().join("etc").exists());
}

#[test]
fn generated_in_an_etc_without_them() {
    let Some(r) = test_root() else { return };
    std::fs::write(r.path().join("etc/os-release"), "ID=test\n").unwrap();
    check(r.path(), "echo '10.0.0.1 extra' >> /etc/hosts", "");
    let mut names: Vec<_> = std::fs::read_dir(r.path().join("etc"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["os-release"]);
}

#[test]
fn the_roots_own_files_are_untouched() {
    let Some(r) = test_root() else { return };
    let etc = r.path().join("etc");
    std::fs::write(etc.join("hosts"), "127.0.0.1 from-the-image\n").unwrap();
    std::fs::write(etc.join("resolv.conf"), "nameserver 192.0.2.53\n").unwrap();
    std::fs::write(etc.join("hostname"), "image\n").unwrap();
    check(
        r.path(),
        "echo '10.0.0.1 extra' >> /etc/hosts; echo changed > /etc/hostname",
        "",
    );
    assert_eq!(
        std::fs::read_to_string(etc.join("hosts")).unwrap(),
        "127.0.0.1 from-the-image\n"
    );
}

#[test]
fn a_linked_resolv_conf_is_mounted_where_it_leads() {
    let Some(r) = test_root() else { return };
    // As in images with systemd-resolved: the link's target is missing.
    std::os::unix::fs::symlink(
        "../run/systemd/resolve/stub-resolv.conf",
        r.path().join("etc/resolv.conf"),
    )
    .unwrap();
    check(
        r.path(),
        "readlink /etc/resolv.conf",
        "../run/systemd/resolve/stub-resolv.conf\n",
    );
    assert!(!r.path().join("run").exists());
    // The target exists, through an absolute link that must resolve inside the root.
    std::fs::create_dir_all(r.path().join("run/resolve")).unwrap();
    std::fs::write(
        r.path().join("run/resolve/resolv.conf"),
        "nameserver 192.0.2.1\n",
    )
    .unwrap();
    std::fs::remove_file(r.path().join("etc/resolv.conf")).unwrap();
    std::os::unix::fs::symlink("/run/resolve/resolv.conf", r.path().join("etc/resolv.conf"))
        .unwrap();
    check(r.path(), "true", "");
    assert_eq!(
        std::fs::read_to_string(r.path().join("run/resolve/resolv.conf")).unwrap(),
        "nameserver 192.0.2.1\n"
    );
}

#[test]
fn host_network_gets_the_hosts_resolv_conf() {
    let Some(r) = test_root() else { return };
    let host = std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_else(|_| "# the host has no /etc/resolv.conf\n".into());
    let before = listing(r.path());
    for (name, sb) in backends().iter() {
        let cmd = Command::new("/bin/sh")
            .args(["-c", SHOW])
            .network(Network::Host);
        let o = sb.run(r.path(), &cmd).unwrap();
        let want = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n--\n{host}--\nlocalhost\n"
        );
        assert_eq!(stdout(&o), want, "{name}: {o:?}");
        assert_eq!(listing(r.path()), before, "{name}");
    }
}

#[test]
fn a_directory_where_a_file_belongs_is_refused() {
    let Some(r) = test_root() else { return };
    std::fs::create_dir(r.path().join("etc/hosts")).unwrap();
    for (name, sb) in backends().iter() {
        let err = sb.run(r.path(), &Command::new("/bin/true")).unwrap_err();
        assert!(
            err.to_string().contains("/etc/hosts is a")
                && err.to_string().contains("not a regular file"),
            "{name}: {err}"
        );
    }
    std::fs::remove_dir(r.path().join("etc/hosts")).unwrap();
    std::os::unix::fs::symlink("/dev/null", r.path().join("etc/hosts")).unwrap();
    for (name, sb) in backends().iter() {
        let err = sb.run(r.path(), &Command::new("/bin/true")).unwrap_err();
        assert!(
            err.to_string().contains("inside a sandbox mount"),
            "{name}: {err}"
        );
        assert!(!r.path().join("dev").exists(), "{name}");
    }
}
