//! One run, resolved on the host: the ids, environment, mount table and generated files
//! both executors realize, so that they cannot disagree about what the program sees.

use crate::command::{normalized_dest, SANDBOX_MOUNTS};
use crate::root::{canonical_root, check_workdir, find_program, Kind, Mountpoints, Want};
use crate::rundir::{write_file, RunDir};
use crate::user::{home_of, resolve_user, ResolvedUser};
use crate::{caps, Command, Error, MountSource, Network, Rlimit, FILES_DIR};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// runc's default masked paths: host information a build has no business reading.
pub(crate) const MASKED_PATHS: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

/// runc's default read-only paths. `/proc/sys` matters most: a scriptlet's
/// `systemd-sysctl` or `sysctl -p` would otherwise set the host's kernel parameters.
pub(crate) const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The `/dev` nodes (path, major, minor): runc's default devices.
pub(crate) const DEVICES: [(&str, u32, u32); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Mountpoints in the root, in the order they are made (`/etc/hosts` first creates a
/// missing `/etc` that the others then share).
const WANTS: [Want; 6] = [
    Want {
        path: Cow::Borrowed("/proc"),
        kind: Kind::Dir,
        follow: false,
    },
    Want {
        path: Cow::Borrowed("/dev"),
        kind: Kind::Dir,
        follow: false,
    },
    Want {
        path: Cow::Borrowed("/sys"),
        kind: Kind::Dir,
        follow: false,
    },
    Want {
        path: Cow::Borrowed("/etc/hosts"),
        kind: Kind::File,
        follow: true,
    },
    Want {
        path: Cow::Borrowed("/etc/resolv.conf"),
        kind: Kind::File,
        follow: true,
    },
    Want {
        path: Cow::Borrowed("/etc/hostname"),
        kind: Kind::File,
        follow: true,
    },
];

/// What is mounted where, in order.
#[derive(Debug)]
pub(crate) enum MountKind {
    Proc,
    /// A tmpfs `/dev` holding [`DEVICES`] and the usual links.
    Dev,
    Devpts,
    Shm,
    Mqueue,
    /// Read-only.
    Sysfs,
    /// A host file or directory; `exec` keeps programs in it runnable, `recursive` brings
    /// the mounts under it along.
    Bind {
        source: PathBuf,
        exec: bool,
        readonly: bool,
        recursive: bool,
    },
    /// A [`MountSource::Tmpfs`], `nosuid` and `nodev`.
    Tmpfs {
        size: Option<u64>,
        /// Permission bits of its top directory.
        mode: u32,
    },
}

#[derive(Debug)]
pub(crate) struct MountSpec {
    /// Absolute inside the root, without symlinks.
    pub(crate) dest: String,
    pub(crate) kind: MountKind,
}

pub(crate) struct Prepared<'a> {
    pub(crate) cmd: &'a Command,
    /// Canonical.
    pub(crate) root: PathBuf,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) user: ResolvedUser,
    /// Capability numbers kept, ascending, and the kernel's highest.
    pub(crate) caps: Vec<u32>,
    pub(crate) last_cap: u32,
    pub(crate) mounts: Vec<MountSpec>,
    pub(crate) run_dir: RunDir,
    /// Removed again when the run is over (after the run directory: order is irrelevant).
    _mountpoints: Mountpoints,
}

impl<'a> Prepared<'a> {
    /// Checks `cmd` against `root` and lays out the run: its directory under `state`, the
    /// generated files, the mountpoints. `probe`: the program is not looked for (it is
    /// meant to be missing, or handed over some other way).
    pub(crate) fn new(
        root: &Path,
        cmd: &'a Command,
        state: &Path,
        probe: bool,
    ) -> Result<Prepared<'a>, Error> {
        cmd.validate()?;
        let root = canonical_root(root)?;
        // A file handed over in FILES_DIR exists only inside the sandbox: exec will tell.
        if !probe && !cmd.runs_own_file() {
            find_program(&root, cmd.program())?;
        }
        check_workdir(&root, &cmd.cwd)?;
        let user = match &cmd.user {
            Some(spec) => resolve_user(&root, spec)?,
            None => ResolvedUser {
                uid: 0,
                gid: 0,
                additional_gids: Vec::new(),
                home: String::new(),
            },
        };
        let env = environment(&root, cmd, &user);
        let run_dir = RunDir::new(state)?;
        let dir = run_dir.path();
        let generated = [
            ("hosts", hosts(&cmd.hostname)),
            ("resolv.conf", resolv_conf(cmd.network)?),
            ("hostname", format!("{}\n", cmd.hostname).into_bytes()),
        ];
        for (name, bytes) in &generated {
            let path = dir.join(name);
            write_file(&path, bytes, 0o644)
                .map_err(Error::io(format!("write {}", path.display())))?;
        }
        let files = dir.join("files");
        if !cmd.files.is_empty() {
            std::fs::create_dir(&files)
                .map_err(Error::io(format!("create {}", files.display())))?;
            std::fs::set_permissions(&files, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(Error::io(format!("chmod {}", files.display())))?;
        }
        for (name, bytes, mode) in &cmd.files {
            write_file(&files.join(name), bytes, *mode).map_err(|source| Error::Setup {
                step: format!("write {FILES_DIR}/{name}"),
                source,
            })?;
        }
        let users = user_mounts(cmd)?;
        let mut wants = WANTS.to_vec();
        wants.extend(users.iter().map(|(want, _)| want.clone()));
        let (mountpoints, places) = Mountpoints::prepare(&root, &wants)?;
        let mut mounts: Vec<MountSpec> = [
            ("/proc", MountKind::Proc),
            ("/dev", MountKind::Dev),
            ("/dev/pts", MountKind::Devpts),
            ("/dev/shm", MountKind::Shm),
            ("/dev/mqueue", MountKind::Mqueue),
            ("/sys", MountKind::Sysfs),
        ]
        .into_iter()
        .map(|(dest, kind)| MountSpec {
            dest: dest.into(),
            kind,
        })
        .collect();
        if !cmd.files.is_empty() {
            mounts.push(MountSpec {
                dest: FILES_DIR.into(),
                kind: MountKind::Bind {
                    source: files,
                    exec: true,
                    readonly: false,
                    recursive: false,
                },
            });
        }
        let utf8 = |place: &PathBuf| {
            place
                .to_str()
                .expect("the root's paths are UTF-8 (checked)")
                .to_string()
        };
        // A link into what the sandbox mounts itself would put a mount where the program
        // never sees it, and its mountpoint where the sandbox cannot remove it.
        let outside_sandbox_mounts = |what: &str, dest: &str| {
            if SANDBOX_MOUNTS
                .iter()
                .any(|m| Path::new(dest).starts_with(m))
            {
                return Err(Error::BadRoot {
                    root: root.clone(),
                    problem: format!("{what} leads to {dest}, inside a sandbox mount"),
                });
            }
            Ok(())
        };
        for ((name, _), place) in generated.iter().zip(&places[3..WANTS.len()]) {
            let dest = utf8(place);
            outside_sandbox_mounts(&format!("/etc/{name}"), &dest)?;
            mounts.push(MountSpec {
                dest,
                kind: MountKind::Bind {
                    source: dir.join(name),
                    exec: false,
                    readonly: false,
                    recursive: false,
                },
            });
        }
        let user_places = &places[WANTS.len()..];
        for ((want, _), place) in users.iter().zip(user_places) {
            outside_sandbox_mounts(&want.path, &utf8(place))?;
            if place == Path::new("/") {
                return Err(Error::BadRoot {
                    root,
                    problem: format!("mount destination {} leads to / itself", want.path),
                });
            }
        }
        for (i, ((want, mut kind), place)) in users.into_iter().zip(user_places).enumerate() {
            let dest = utf8(place);
            if let MountKind::Tmpfs { mode, .. } = &mut kind {
                *mode = tmpfs_mode(&root, place, &mountpoints)?;
            }
            // A mountpoint inside another mount would have to be made in that mount's
            // source (a host directory), out of reach of the root's clean-up.
            for (j, other) in user_places.iter().enumerate() {
                if i != j && place.starts_with(other) {
                    let mut wanted = cmd.mounts.iter().map(|(d, _)| d);
                    return Err(Error::InvalidCommand(format!(
                        "mount destination {} ({dest}) is inside or the same as {} ({}); \
                         nested mounts are not supported",
                        want.path,
                        wanted.nth(j).expect("one per mount"),
                        other.display()
                    )));
                }
            }
            mounts.push(MountSpec { dest, kind });
        }
        let last_cap = caps::last_cap();
        Ok(Prepared {
            cmd,
            caps: caps::numbers(cmd.capabilities, caps::own()),
            last_cap,
            root,
            env,
            user,
            mounts,
            run_dir,
            _mountpoints: mountpoints,
        })
    }

    pub(crate) fn cwd(&self) -> &str {
        self.cmd.cwd.to_str().expect("validated: UTF-8")
    }

    pub(crate) fn args(&self) -> Vec<String> {
        let utf8 = |a: &std::ffi::OsString| a.to_str().expect("validated: UTF-8").to_string();
        self.cmd.argv.iter().map(utf8).collect()
    }

    pub(crate) fn rlimits(&self) -> &[(Rlimit, u64, u64)] {
        &self.cmd.rlimits
    }
}

/// The mountpoint and mount of each [`Command::mount`], its bind source made absolute.
fn user_mounts(cmd: &Command) -> Result<Vec<(Want, MountKind)>, Error> {
    cmd.mounts
        .iter()
        .map(|(dest, source)| {
            let path = normalized_dest(dest).expect("validated");
            let (kind, mount) = match source {
                MountSource::Bind {
                    path: host,
                    readonly,
                } => {
                    let canonical = std::fs::canonicalize(host)
                        .map_err(Error::io(format!("mount source {}", host.display())))?;
                    if canonical.to_str().is_none() {
                        return Err(Error::InvalidCommand(format!(
                            "mount source {} leads to {canonical:?}, which is not UTF-8",
                            host.display()
                        )));
                    }
                    let kind = if canonical.is_dir() {
                        Kind::Dir
                    } else {
                        Kind::File
                    };
                    let mount = MountKind::Bind {
                        source: canonical,
                        exec: true,
                        readonly: *readonly,
                        recursive: true,
                    };
                    (kind, mount)
                }
                MountSource::Tmpfs { size } => (
                    Kind::Dir,
                    MountKind::Tmpfs {
                        size: *size,
                        mode: 0o1777,
                    },
                ),
            };
            let want = Want {
                path: Cow::Owned(path),
                kind,
                follow: true,
            };
            Ok((want, mount))
        })
        .collect()
}

/// runc gives a tmpfs the mode of the directory it is mounted on: 1777 on a mountpoint made
/// for it (made so here), an existing directory's own otherwise, as under BuildKit.
fn tmpfs_mode(root: &Path, place: &Path, made: &Mountpoints) -> Result<u32, Error> {
    use std::os::unix::fs::PermissionsExt;
    let host = root.join(place.strip_prefix("/").expect("absolute"));
    if made.made(&host) {
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o1777))
            .map_err(Error::io(format!("chmod {}", host.display())))?;
        return Ok(0o1777);
    }
    let m = host
        .metadata()
        .map_err(Error::io(format!("stat {}", host.display())))?;
    Ok(m.permissions().mode() & 0o7777)
}

/// The command's variables sorted by name, with runc's `HOME` rule applied.
fn environment(root: &Path, cmd: &Command, user: &ResolvedUser) -> Vec<(String, String)> {
    let utf8 = |s: &std::ffi::OsString| s.to_str().expect("validated: UTF-8").to_string();
    let mut env: Vec<(String, String)> = cmd.env.iter().map(|(k, v)| (utf8(k), utf8(v))).collect();
    let has_home = env.iter().any(|(k, v)| k == "HOME" && !v.is_empty());
    if !has_home {
        let home = if cmd.user.is_some() {
            user.home.clone()
        } else {
            home_of(root, user.uid)
        };
        env.retain(|(k, _)| k != "HOME");
        env.push(("HOME".into(), home));
    }
    env.sort();
    env
}

/// The localhost entries, and the hostname beside them as buildkit writes it.
fn hosts(hostname: &str) -> Vec<u8> {
    let name = if hostname == "localhost" {
        String::new()
    } else {
        format!(" {hostname}")
    };
    format!("127.0.0.1\tlocalhost{name}\n::1\tlocalhost ip6-localhost ip6-loopback\n").into_bytes()
}

fn resolv_conf(network: Network) -> Result<Vec<u8>, Error> {
    match network {
        Network::None => Ok(b"# no network in this sandbox, so no name server\n".to_vec()),
        Network::Host => match std::fs::read("/etc/resolv.conf") {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(b"# the host has no /etc/resolv.conf\n".to_vec())
            }
            Err(e) => Err(Error::io("read the host's /etc/resolv.conf")(e)),
        },
    }
}
