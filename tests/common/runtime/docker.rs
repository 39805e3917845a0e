//! The private dockerd instance.

use super::*;

/// A private docker daemon (with its own containerd) started for the tests; stopped and wiped
/// on drop.
pub struct Dockerd {
    tmp: Option<tempfile::TempDir>,
    dir: PathBuf,
    socket: PathBuf,
    docker_bin: PathBuf,
    containerd: Option<Child>,
    dockerd: Option<Child>,
    cgroup_parent: String,
    /// The bridge network for `serve`, created on first use: (network name, bridge name).
    network: Mutex<Option<(String, String)>>,
    host_paths: HostPaths,
    /// How long `start` took (containerd + dockerd until `docker info` answered).
    pub startup: Duration,
}

impl Dockerd {
    /// Starts containerd and dockerd in a fresh temp dir and waits until `docker info` answers
    /// (at most DOCKERD_START_TIMEOUT); on failure the error has the tail of both logs.
    pub fn start() -> Result<Dockerd, String> {
        let t0 = Instant::now();
        let dockerd_bin =
            find_tool("dockerd").ok_or("dockerd not found (apt-get install docker.io)")?;
        let containerd_bin =
            find_tool("containerd").ok_or("containerd not found (apt-get install containerd)")?;
        let docker_bin =
            docker_client().ok_or("docker client not found (apt-get install docker.io)")?;
        sweep_stale_instances();
        let host_paths = HostPaths::record();
        let tmp = tempfile::Builder::new()
            .prefix(DOCKERD_DIR_PREFIX)
            .tempdir_in(short_temp_root())
            .map_err(|e| format!("temp dir: {e}"))?;
        let dir = tmp.path().canonicalize().map_err(|e| e.to_string())?;
        let id = format!("{}-{}", std::process::id(), unique());
        let cgroup_parent = format!("strata-engine-dockerd-{id}");
        write_owner(&dir, &cgroup_parent)?;
        let mut d = Dockerd {
            tmp: Some(tmp),
            socket: dir.join("docker.sock"),
            dir: dir.clone(),
            docker_bin,
            containerd: None,
            dockerd: None,
            cgroup_parent,
            network: Mutex::new(None),
            host_paths,
            startup: Duration::ZERO,
        };
        // From here on, an early return drops `d`, which cleans up whatever was started.
        let cd = dir.join("containerd");
        for sub in ["containerd", "data", "exec", "client"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
        }
        let cd_sock = cd.join("containerd.sock");
        // containerd 1.6 config v2. The opt plugin would otherwise create /opt/containerd.
        let toml = format!(
            "version = 2\nroot = {root:?}\nstate = {state:?}\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\n\
             [grpc]\n  address = {sock:?}\n\n[debug]\n  level = \"warn\"\n\n\
             [plugins]\n  [plugins.\"io.containerd.internal.v1.opt\"]\n    path = {opt:?}\n",
            root = cd.join("root").display().to_string(),
            state = cd.join("state").display().to_string(),
            sock = cd_sock.display().to_string(),
            opt = cd.join("opt").display().to_string(),
        );
        std::fs::write(cd.join("config.toml"), toml).map_err(|e| e.to_string())?;
        // daemon.json: only what has no command-line flag. The key file would otherwise be
        // written to /etc/docker/key.json.
        let key = dir.join("key.json");
        std::fs::write(
            dir.join("daemon.json"),
            format!(
                "{{\"deprecated-key-path\": {:?}}}\n",
                key.display().to_string()
            ),
        )
        .map_err(|e| e.to_string())?;

        let containerd = Command::new(&containerd_bin)
            .arg("--config")
            .arg(cd.join("config.toml"))
            .env("PATH", search_path())
            .stdin(Stdio::null())
            .stdout(log_file(&dir.join("containerd.log"))?)
            .stderr(log_file(&dir.join("containerd.log"))?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", containerd_bin.display()))?;
        d.containerd = Some(containerd);
        let deadline = Instant::now() + DOCKERD_START_TIMEOUT;
        while UnixStream::connect(&cd_sock).is_err() {
            if let Some(status) = d
                .containerd
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!(
                    "containerd exited ({status}) during start-up\n{}",
                    d.logs_tail(40)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "containerd did not listen within {DOCKERD_START_TIMEOUT:?}\n{}",
                    d.logs_tail(40)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }

        let mut cmd = Command::new(&dockerd_bin);
        cmd.arg("--config-file")
            .arg(dir.join("daemon.json"))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", d.socket.display()))
            .arg("--containerd")
            .arg(&cd_sock)
            // No docker0, no iptables rules, no sysctl changes: the host's network is untouched
            // (and a system dockerd's rules are not flushed). Default network: none.
            .args([
                "--bridge",
                "none",
                "--iptables=false",
                "--ip-forward=false",
                "--ip-masq=false",
            ])
            .args(["--userland-proxy=true"])
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            .arg("--cgroup-parent")
            .arg(format!("/{}", d.cgroup_parent))
            .args(["--default-runtime", "runc"])
            .args([
                "--default-ulimit",
                "nofile=1024:1024",
                "--default-ulimit",
                "nproc=4096:4096",
            ])
            .args(["--shutdown-timeout", "5", "--log-level", "warn"]);
        if let Ok(driver) = std::env::var("STRATA_TEST_DOCKER_STORAGE_DRIVER") {
            cmd.arg("--storage-driver").arg(driver);
        }
        let dockerd = cmd
            .env("PATH", search_path())
            .stdin(Stdio::null())
            .stdout(log_file(&dir.join("dockerd.log"))?)
            .stderr(log_file(&dir.join("dockerd.log"))?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", dockerd_bin.display()))?;
        d.dockerd = Some(dockerd);
        loop {
            let out = output_within(
                d.command().args(["info", "--format", "{{.ServerVersion}}"]),
                Duration::from_secs(10),
            );
            if out.status.success() {
                break;
            }
            if let Some(status) = d.dockerd.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!(
                    "dockerd exited ({status}) during start-up\n{}",
                    d.logs_tail(40)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "dockerd did not answer `docker info` within {DOCKERD_START_TIMEOUT:?}; last answer:\n{}\n{}",
                    describe(&out),
                    d.logs_tail(40)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        d.startup = t0.elapsed();
        Ok(d)
    }

    /// `docker -H unix://<private socket> ARGS...` (bounded by CLI_TIMEOUT).
    pub fn docker(&self, args: &[&str]) -> Output {
        output_within(self.command().args(args), CLI_TIMEOUT)
    }

    /// A docker client Command pointed at this daemon (for stdin piping and the like); the
    /// user's ~/.docker config, contexts and DOCKER_* variables are not used.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.docker_bin);
        for var in [
            "DOCKER_HOST",
            "DOCKER_CONTEXT",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
            "DOCKER_API_VERSION",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("DOCKER_CONFIG", self.dir.join("client"))
            .arg("--host")
            .arg(self.host());
        cmd
    }

    /// `unix:///tmp/strata-engine-dockerd-XXXX/docker.sock`, for other clients (DOCKER_HOST).
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The instance's dir (daemon data, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cgroup (under each hierarchy) that holds this daemon's containers.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// The bridge of the `serve` network, once `serve` has created it.
    pub fn bridge(&self) -> Option<String> {
        self.network
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(_, b)| b.clone())
    }

    /// The last `lines` lines of dockerd's and containerd's logs.
    pub fn logs_tail(&self, lines: usize) -> String {
        format!(
            "--- dockerd.log (tail):\n{}\n--- containerd.log (tail):\n{}",
            tail(&self.dir.join("dockerd.log"), lines),
            tail(&self.dir.join("containerd.log"), lines)
        )
    }

    /// The bridge network used by `serve`, created on first use with a unique bridge name and a
    /// /24 in 10.213.0.0/16 that no host route overlaps.
    fn serve_network(&self) -> Result<String, String> {
        let mut guard = self.network.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((name, _)) = &*guard {
            return Ok(name.clone());
        }
        let seed = unique_seed();
        let bridge = format!("strata{:08x}", seed);
        let name = "strata-serve".to_string();
        let mut last = String::new();
        for subnet in free_subnets(seed).into_iter().take(4) {
            let out = self.docker(&[
                "network",
                "create",
                "--driver",
                "bridge",
                "--subnet",
                &subnet,
                "--opt",
                &format!("com.docker.network.bridge.name={bridge}"),
                "--opt",
                "com.docker.network.bridge.enable_ip_masquerade=false",
                &name,
            ]);
            if out.status.success() {
                // For the sweep of a crashed run (see sweep_stale_instances).
                let _ = std::fs::write(self.dir.join("bridge"), &bridge);
                *guard = Some((name.clone(), bridge));
                return Ok(name);
            }
            last = describe(&out);
        }
        Err(format!("docker network create failed:\n{last}"))
    }
}

impl Engine for Dockerd {
    fn name(&self) -> &'static str {
        "docker"
    }
    fn cli(&self, args: &[&str]) -> Output {
        self.docker(args)
    }
    fn run_with(&self, opts: &[&str], image: &str, argv: &[&str]) -> Result<String, String> {
        let mut args = vec![
            "run",
            "--rm",
            "--pull",
            "never",
            "--runtime",
            "runc",
            "--network",
            "none",
        ];
        args.extend(ULIMITS);
        args.extend(opts);
        args.push(image);
        args.extend(argv);
        let out = self.docker(&args);
        check(&format!("docker {}", args.join(" ")), &out)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
    fn serve_with(
        &self,
        opts: &[&str],
        image: &str,
        container_port: u16,
        argv: &[&str],
    ) -> Result<Served<'_>, String> {
        let network = self.serve_network()?;
        serve_on_free_port(self, container_port, |host_port, name| {
            let publish = format!("127.0.0.1:{host_port}:{container_port}");
            let mut args = vec![
                "run",
                "-d",
                "--name",
                name,
                "--pull",
                "never",
                "--runtime",
                "runc",
            ];
            args.extend(["--network", &network, "--publish", &publish]);
            args.extend(ULIMITS);
            args.extend(opts);
            args.push(image);
            args.extend(argv);
            self.docker(&args)
        })
    }
    fn force_remove(&self, id: &str) -> Output {
        self.docker(&["rm", "--force", "--volumes", id])
    }
}

inherent_engine_methods!(Dockerd);

impl Drop for Dockerd {
    fn drop(&mut self) {
        let mut problems = Vec::new();
        let alive = self
            .dockerd
            .as_mut()
            .map(|c| matches!(c.try_wait(), Ok(None)))
            .unwrap_or(false);
        if alive {
            // Containers first (dockerd would stop them itself, but with a grace period), then
            // the serve network, which deletes its bridge.
            let ps = output_within(self.command().args(["ps", "-aq"]), Duration::from_secs(30));
            let ids: Vec<String> = String::from_utf8_lossy(&ps.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ps.status.success() {
                // Not answering (dying, or killed): the sweep below does the work.
            } else if !ids.is_empty() {
                let mut args = vec!["rm", "--force", "--volumes"];
                args.extend(ids.iter().map(String::as_str));
                let out = output_within(self.command().args(&args), Duration::from_secs(60));
                if !out.status.success() {
                    problems.push(format!("docker rm -f: {}", describe(&out)));
                }
            }
            let network = self
                .network
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let (true, Some((name, _))) = (ps.status.success(), network) {
                let out = output_within(
                    self.command().args(["network", "rm", &name]),
                    Duration::from_secs(30),
                );
                if !out.status.success() {
                    problems.push(format!("docker network rm: {}", describe(&out)));
                }
            }
        }
        if let Some(child) = self.dockerd.as_mut() {
            stop_child(child, Duration::from_secs(20));
        }
        if let Some(child) = self.containerd.as_mut() {
            stop_child(child, Duration::from_secs(10));
        }
        // Normally nothing is left; after a crash or a kill: shims (their command line names
        // our containerd socket) and container processes (in our cgroup).
        kill_processes_mentioning(&self.dir);
        if let Err(e) = remove_cgroup(&self.cgroup_parent) {
            problems.push(e);
        }
        if let Some((_, bridge)) = &*self.network.lock().unwrap_or_else(|e| e.into_inner()) {
            if Path::new("/sys/class/net").join(bridge).exists() {
                let out = output_within(
                    Command::new("ip").args(["link", "delete", bridge]),
                    Duration::from_secs(10),
                );
                if !out.status.success() {
                    problems.push(format!(
                        "bridge {bridge} is left: ip link delete: {}",
                        describe(&out)
                    ));
                }
            }
        }
        finish_dir_cleanup(&self.dir, self.tmp.take(), &mut problems);
        // Then `host_paths` is dropped: the last instance removes the shared host dirs.
        if !problems.is_empty() {
            eprintln!(
                "warning: cleaning up the private dockerd at {}:\n{}",
                self.dir.display(),
                problems.join("\n")
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// Podman

