//! The private podman instance.

use super::*;

/// A private rootful podman: its own config files, storage, run dir, tmp dir, network config dir
/// and locks, all in one temp dir. There is no daemon; drop removes every container and the dir.
pub struct Podman {
    tmp: Option<tempfile::TempDir>,
    dir: PathBuf,
    podman_bin: PathBuf,
    storage_driver: String,
    cgroup_parent: String,
    /// `podman info` worked: drop may run podman to remove containers.
    ready: bool,
    host_paths: HostPaths,
}

impl Podman {
    /// Sets up the private configuration and checks it with `podman info`. The storage driver is
    /// $STRATA_TEST_PODMAN_STORAGE_DRIVER, else overlay (kernel overlayfs), else vfs when
    /// overlay does not work here (e.g. when the temp dir is itself on overlayfs).
    pub fn new() -> Result<Podman, String> {
        let podman_bin = find_tool("podman").ok_or("podman not found (apt-get install podman)")?;
        let id = format!("{}-{}", std::process::id(), unique());
        let cgroup_parent = format!("strata-engine-podman-{id}");
        sweep_stale_instances();
        let host_paths = HostPaths::record();
        let tmp = tempfile::Builder::new()
            .prefix(PODMAN_DIR_PREFIX)
            .tempdir_in(short_temp_root())
            .map_err(|e| format!("temp dir: {e}"))?;
        let dir = tmp.path().canonicalize().map_err(|e| e.to_string())?;
        write_owner(&dir, &cgroup_parent)?;
        let forced = std::env::var("STRATA_TEST_PODMAN_STORAGE_DRIVER").ok();
        let mut p = Podman {
            tmp: Some(tmp),
            dir: dir.clone(),
            podman_bin,
            storage_driver: forced.clone().unwrap_or_else(|| "overlay".to_string()),
            cgroup_parent,
            ready: false,
            host_paths,
        };
        for sub in ["root", "runroot", "tmp", "networks"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
        }
        let s = |sub: &str| dir.join(sub).display().to_string();
        // Only these files are read: CONTAINERS_CONF and CONTAINERS_STORAGE_CONF replace the
        // system and user configuration. lock_type "file": the default "shm" lock segment
        // (/dev/shm/libpod_lock) is shared by every root podman on the host and is re-created
        // when a fresh runroot is seen, which a side-by-side instance must not do.
        let conf = format!(
            "[containers]\nnetns = \"none\"\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
             log_driver = \"k8s-file\"\n\n\
             [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
             tmp_dir = {tmp:?}\nimage_copy_tmp_dir = {tmp:?}\nlock_type = \"file\"\n\n\
             [network]\nnetwork_config_dir = {net:?}\n",
            tmp = s("tmp"),
            net = s("networks"),
        );
        std::fs::write(dir.join("containers.conf"), conf).map_err(|e| e.to_string())?;
        std::fs::write(
            dir.join("registries.conf"),
            "unqualified-search-registries = []\n",
        )
        .map_err(|e| e.to_string())?;
        std::fs::write(dir.join("auth.json"), "{}\n").map_err(|e| e.to_string())?;
        let mut last = String::new();
        let drivers: Vec<String> = match forced {
            Some(d) => vec![d],
            None => vec!["overlay".into(), "vfs".into()],
        };
        for driver in drivers {
            p.storage_driver = driver.clone();
            let storage = format!(
                "[storage]\ndriver = {driver:?}\ngraphroot = {root:?}\nrunroot = {run:?}\n",
                root = s("root"),
                run = s("runroot"),
            );
            std::fs::write(dir.join("storage.conf"), storage).map_err(|e| e.to_string())?;
            let out = p.podman(&["info", "--format", "{{.Store.GraphDriverName}}"]);
            if out.status.success() {
                p.ready = true;
                return Ok(p);
            }
            last = format!("with storage driver {driver}: {}", describe(&out));
            // Whatever the failed driver left must not confuse the next one.
            let _ = unmount_under(&dir.join("root"));
            let _ = std::fs::remove_dir_all(dir.join("root"));
            let _ = std::fs::remove_dir_all(dir.join("runroot"));
            for sub in ["root", "runroot"] {
                std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
            }
        }
        Err(format!("podman info failed {last}"))
    }

    /// `podman --root ... ARGS...` against this private instance (bounded by CLI_TIMEOUT).
    pub fn podman(&self, args: &[&str]) -> Output {
        output_within(self.command().args(args), CLI_TIMEOUT)
    }

    /// A podman Command with the private configuration, for stdin piping and the like. The
    /// global flags repeat the config files on purpose: even if a config file were ignored,
    /// nothing could land in the host's storage.
    pub fn command(&self) -> Command {
        podman_command(&self.podman_bin, &self.dir, &self.storage_driver)
    }

    /// The storage driver in use ("overlay" or "vfs").
    pub fn storage_driver(&self) -> &str {
        &self.storage_driver
    }

    /// The instance's dir (storage, configuration).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cgroup (under each hierarchy) that holds the containers of `run` and `serve`.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }
}

/// `podman` with the private configuration of the instance in `d`.
pub(super) fn podman_command(podman_bin: &Path, d: &Path, storage_driver: &str) -> Command {
    let mut cmd = Command::new(podman_bin);
    for var in [
        "CONTAINER_HOST",
        "CONTAINER_CONNECTION",
        "CONTAINERS_REGISTRIES_CONF_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("PATH", search_path())
        .env("CONTAINERS_CONF", d.join("containers.conf"))
        .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
        .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
        .env("REGISTRY_AUTH_FILE", d.join("auth.json"))
        // `podman load` unpacks archives into $TMPDIR (default /var/tmp).
        .env("TMPDIR", d.join("tmp"))
        .arg("--root")
        .arg(d.join("root"))
        .arg("--runroot")
        .arg(d.join("runroot"))
        .arg("--tmpdir")
        .arg(d.join("tmp"))
        .arg("--network-config-dir")
        .arg(d.join("networks"))
        .args(["--storage-driver", storage_driver])
        .args([
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ]);
    cmd
}

/// Removes every pod and container of a podman instance (its slirp4netns, port forwarder and
/// network namespace go with them).
pub(super) fn podman_remove_all(cmd: impl Fn() -> Command) -> Vec<String> {
    let mut problems = Vec::new();
    for args in [
        &["pod", "rm", "--all", "--force"][..],
        &["rm", "--all", "--force", "--time", "0", "--volumes"],
    ] {
        let out = output_within(cmd().args(args), Duration::from_secs(120));
        if !out.status.success() {
            problems.push(format!("podman {}: {}", args.join(" "), describe(&out)));
        }
    }
    problems
}

impl Engine for Podman {
    fn name(&self) -> &'static str {
        "podman"
    }
    fn cli(&self, args: &[&str]) -> Output {
        self.podman(args)
    }
    fn run_with(&self, opts: &[&str], image: &str, argv: &[&str]) -> Result<String, String> {
        let parent = format!("/{}", self.cgroup_parent);
        let mut args = vec![
            "run",
            "--rm",
            "--pull",
            "never",
            "--network",
            "none",
            "--cgroup-parent",
            &parent,
        ];
        args.extend(ULIMITS);
        args.extend(opts);
        args.push(image);
        args.extend(argv);
        let out = self.podman(&args);
        check(&format!("podman {}", args.join(" ")), &out)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
    fn serve_with(
        &self,
        opts: &[&str],
        image: &str,
        container_port: u16,
        argv: &[&str],
    ) -> Result<Served<'_>, String> {
        let parent = format!("/{}", self.cgroup_parent);
        serve_on_free_port(self, container_port, |host_port, name| {
            let publish = format!("127.0.0.1:{host_port}:{container_port}");
            let mut args = vec![
                "run",
                "-d",
                "--name",
                name,
                "--pull",
                "never",
                "--cgroup-parent",
                &parent,
            ];
            // slirp4netns: user-mode networking, ports forwarded by podman's rootlessport; no
            // bridge, iptables rule or ip_forward change on the host.
            args.extend(["--network", "slirp4netns", "--publish", &publish]);
            args.extend(ULIMITS);
            args.extend(opts);
            args.push(image);
            args.extend(argv);
            self.podman(&args)
        })
    }
    fn force_remove(&self, id: &str) -> Output {
        self.podman(&["rm", "--force", "--time", "0", "--volumes", id])
    }
}

inherent_engine_methods!(Podman);

impl Drop for Podman {
    fn drop(&mut self) {
        let mut problems = Vec::new();
        if self.ready {
            problems = podman_remove_all(|| self.command());
        }
        // After a crash: conmon (its command line names our dirs) and container processes.
        kill_processes_mentioning(&self.dir);
        if let Err(e) = remove_cgroup(&self.cgroup_parent) {
            problems.push(e);
        }
        finish_dir_cleanup(&self.dir, self.tmp.take(), &mut problems);
        // Then `host_paths` is dropped: the last instance removes the shared host dirs.
        if !problems.is_empty() {
            eprintln!(
                "warning: cleaning up the private podman at {}:\n{}",
                self.dir.display(),
                problems.join("\n")
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// HTTP

