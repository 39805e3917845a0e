//! Helpers for the `strata build` tests: a private store and cache, and a tiny base image
//! made from busybox-static (a shell and coreutils in 1 MiB) by `strata build` itself.

use super::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Builds {
    pub dir: tempfile::TempDir,
}

/// The applets the base image links to busybox.
const APPLETS: [&str; 24] = [
    "sh", "ls", "cat", "rm", "mkdir", "echo", "id", "pwd", "mv", "cp", "wget", "test", "touch", "chmod", "ln", "grep", "sleep", "true", "false", "env", "printf", "stat", "readlink", "nc",
];

impl Builds {
    pub fn new() -> Builds {
        Builds { dir: tempfile::tempdir().unwrap() }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn store(&self) -> PathBuf {
        self.path().join("store")
    }
    pub fn strata(&self) -> Command {
        strata(&self.path().join("cache"))
    }
    /// `strata build --store STORE ARGS... CONTEXT`
    pub fn build(&self, context: &Path, args: &[&str]) -> Output {
        run(self.strata().arg("build").arg("--store").arg(self.store()).args(args).arg(context))
    }
    #[track_caller]
    pub fn build_json(&self, context: &Path, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.build(context, &all);
        assert_ok(&format!("strata build {}", context.display()), &out);
        serde_json::from_slice(&out.stdout).unwrap()
    }
    /// A context folder `name` with these files (relative path → content).
    pub fn context(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let d = self.path().join(name);
        for (p, c) in files {
            let path = d.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, c).unwrap();
        }
        d
    }
    /// Builds `bb:latest`: busybox-static with its applets, `/etc/passwd` and `/etc/group`
    /// with root and app (1000), `/etc/motd`, a sticky `/tmp`.
    pub fn busybox_base(&self) -> PathBuf {
        require_tool("busybox");
        let ctx = self.path().join("bb");
        let root = ctx.join("root");
        for d in ["bin", "etc", "tmp"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let busybox = ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| Path::new(p).exists()).expect("busybox-static");
        std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
        }
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n").unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
        std::fs::write(root.join("etc/motd"), "welcome\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY root/ /\nCMD [\"/bin/sh\"]\n").unwrap();
        let out = self.build(&ctx, &["-t", "bb"]);
        assert_ok("building the busybox base", &out);
        ctx
    }
    /// The image's unpacked root (umoci), in a scratch dir kept by the returned guard.
    pub fn unpack(&self, image: &str) -> (tempfile::TempDir, PathBuf) {
        let shm = Path::new("/dev/shm");
        let scratch = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir_in(self.path()) }.unwrap();
        let root = umoci_unpack(&self.store(), &format!("{image}:latest"), &scratch.path().join("u"));
        (scratch, root)
    }
    /// The stored image's manifest, config and annotations (`strata inspect`).
    pub fn inspect(&self, image: &str) -> Value {
        let out = run(self.strata().arg("inspect").arg(image).arg("--store").arg(self.store()));
        assert_ok("strata inspect", &out);
        serde_json::from_slice(&out.stdout).unwrap()
    }
}
