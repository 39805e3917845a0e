//! The OCI runtime config a command becomes.

use super::test_root;
use crate::spec::Prepared;
use crate::{Capabilities, Command, MountSource, Network, Rlimit, DEFAULT_STATE_DIR};
use serde_json::{json, Value};
use std::path::Path;

fn config(root: &Path, cmd: &Command) -> Value {
    let p = Prepared::new(root, cmd, Path::new(DEFAULT_STATE_DIR), false).unwrap();
    serde_json::to_value(crate::oci::config(&p).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    let mut s: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    s.sort();
    s
}

#[test]
fn a_dockerfile_run_as_a_config() {
    let Some(r) = test_root() else { return };
    std::fs::write(
        r.path().join("etc/passwd"),
        "app:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(r.path().join("etc/group"), "ops:x:20:app\n").unwrap();
    let context = tempfile::tempdir().unwrap();
    std::fs::write(context.path().join("token"), "secret").unwrap();
    let bind = |path: std::path::PathBuf, readonly| MountSource::Bind { path, readonly };
    let cmd = Command::new("/bin/sh")
        .mount("/src/", bind(context.path().to_path_buf(), true))
        .mount(
            "/run/secrets/token",
            bind(context.path().join("token"), false),
        )
        .mount(
            "/var/cache",
            MountSource::Tmpfs {
                size: Some(1 << 20),
            },
        )
        .args(["-c", "make"])
        .env("B", "2")
        .env("A", "1")
        .user("app")
        .cwd("/tmp")
        .hostname("build-1")
        .capabilities(Capabilities::DockerDefault);
    let c = config(r.path(), &cmd);
    let root = r.path().canonicalize().unwrap();
    assert_eq!(c["ociVersion"], "1.0.2");
    assert_eq!(c["root"], json!({"path": root, "readonly": false}));
    assert_eq!(c["hostname"], "build-1");
    let p = &c["process"];
    assert_eq!(p["terminal"], false);
    assert_eq!(p["args"], json!(["/bin/sh", "-c", "make"]));
    assert_eq!(
        p["env"],
        json!([
            "A=1",
            "B=2",
            "HOME=/home/app",
            "PATH=/sbin:/bin:/usr/sbin:/usr/bin"
        ])
    );
    assert_eq!(p["cwd"], "/tmp");
    // umask 022 (18) as docker's RUN and rpm's scriptlets, whatever strata's own umask.
    assert_eq!(
        p["user"],
        json!({"uid": 1000, "gid": 1000, "additionalGids": [20], "umask": 18})
    );
    assert_eq!(p["noNewPrivileges"], false);
    assert_eq!(
        p["rlimits"],
        json!([
            {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
            {"type": "RLIMIT_NPROC", "soft": 4096, "hard": 4096}
        ])
    );
    let docker = [
        "CAP_AUDIT_WRITE",
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_MKNOD",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_RAW",
        "CAP_SETFCAP",
        "CAP_SETGID",
        "CAP_SETPCAP",
        "CAP_SETUID",
        "CAP_SYS_CHROOT",
    ];
    for set in ["bounding", "effective", "permitted"] {
        assert_eq!(strings(&p["capabilities"][set]), docker, "{set}");
    }
    for set in ["inheritable", "ambient"] {
        assert_eq!(p["capabilities"][set], json!([]), "{set}");
    }
    let l = &c["linux"];
    let namespaces: Vec<&str> = l["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["pid", "ipc", "uts", "mount", "network"]);
    assert!(
        l.get("cgroupsPath").is_none(),
        "runc names the cgroup itself"
    );
    assert_eq!(
        l["resources"],
        json!({"devices": [{"allow": false, "access": "rwm"}],
               "pids": {"limit": 2048},
               "memory": {"limit": crate::cgroup::default_memory()}})
    );
    assert_eq!(l["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(l["maskedPaths"].as_array().unwrap().len(), 10);
    assert!(strings(&l["readonlyPaths"]).contains(&"/proc/sys".to_string()));
    let mounts: Vec<(&str, &str)> = c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["destination"].as_str().unwrap(),
                m["type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        mounts,
        [
            ("/proc", "proc"),
            ("/dev", "tmpfs"),
            ("/dev/pts", "devpts"),
            ("/dev/shm", "tmpfs"),
            ("/dev/mqueue", "mqueue"),
            ("/sys", "sysfs"),
            ("/etc/hosts", "bind"),
            ("/etc/resolv.conf", "bind"),
            ("/etc/hostname", "bind"),
            ("/src", "bind"),
            ("/run/secrets/token", "bind"),
            ("/var/cache", "tmpfs"),
        ]
    );
    // The caller's, in its order: binds with the host path made canonical, ro as asked;
    // a tmpfs made for the run gets 1777.
    let context = context.path().canonicalize().unwrap();
    assert_eq!(
        c["mounts"][9],
        json!({"destination": "/src", "type": "bind", "source": context,
               "options": ["rbind", "nosuid", "nodev", "ro"]})
    );
    assert_eq!(
        c["mounts"][10],
        json!({"destination": "/run/secrets/token", "type": "bind",
               "source": context.join("token"), "options": ["rbind", "nosuid", "nodev"]})
    );
    assert_eq!(
        c["mounts"][11],
        json!({"destination": "/var/cache", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "mode=1777", "size=1048576"]})
    );
    let sys = &c["mounts"][5]["options"];
    assert!(strings(sys).contains(&"ro".to_string()));
    // The bind sources are the run's own generated files.
    let hosts = c["mounts"][6]["source"].as_str().unwrap();
    assert!(
        hosts.starts_with(DEFAULT_STATE_DIR) && hosts.ends_with("/hosts"),
        "{hosts}"
    );
}

#[test]
fn a_scriptlet_as_a_config() {
    let Some(r) = test_root() else { return };
    let cmd = Command::new("/bin/sh")
        .arg("/dev/.strata/script")
        .file("script", b"true\n".to_vec(), 0o700)
        .network(Network::Host)
        .rlimit(Rlimit::Nofile, 4096, 8192);
    let c = config(r.path(), &cmd);
    let p = &c["process"];
    assert_eq!(
        p["user"],
        json!({"uid": 0, "gid": 0, "umask": 18}),
        "no lookup, no groups"
    );
    assert_eq!(
        p["env"],
        json!(["HOME=/", "PATH=/sbin:/bin:/usr/sbin:/usr/bin"])
    );
    assert_eq!(
        p["rlimits"][1],
        json!({"type": "RLIMIT_NOFILE", "soft": 4096, "hard": 8192})
    );
    // Docker's set less CAP_NET_RAW, only the standard devices, the limits, seccomp.
    let bounding = strings(&p["capabilities"]["bounding"]);
    assert_eq!(bounding.len(), 13, "{bounding:?}");
    assert!(!bounding.contains(&"CAP_NET_RAW".to_string()));
    assert!(!bounding.contains(&"CAP_SYS_ADMIN".to_string()));
    assert_eq!(
        c["linux"]["resources"]["devices"],
        json!([{"allow": false, "access": "rwm"}])
    );
    assert_eq!(c["linux"]["resources"]["pids"]["limit"], 2048);
    assert_eq!(c["linux"]["seccomp"]["defaultErrnoRet"], 1);
    let namespaces: Vec<&str> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        namespaces,
        ["pid", "ipc", "uts", "mount"],
        "the host's network"
    );
    let files = c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/dev/.strata")
        .unwrap();
    assert_eq!(files["type"], "bind");
    assert_eq!(
        strings(&files["options"]),
        ["bind", "nodev", "nosuid"],
        "programs there run"
    );
}
