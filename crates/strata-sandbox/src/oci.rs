//! A prepared run as an OCI runtime `config.json`.

use crate::spec::{MountKind, Prepared, MASKED_PATHS, READONLY_PATHS};
use crate::{caps, Error, Network, Rlimit};
use oci_spec::runtime::{
    LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxPidsBuilder,
    LinuxNamespaceType, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder,
    PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

/// runc 1.1 (Debian 12's) implements runtime-spec 1.0.2.
const OCI_VERSION: &str = "1.0.2";

fn config_error(e: oci_spec::OciSpecError) -> Error {
    Error::io("build the OCI runtime config")(std::io::Error::other(e))
}

/// The config for `p`. Choices that matter on hybrid-cgroup hosts: no `cgroupsPath` (runc
/// then names the cgroup after the container id, under its own cgroup in each hierarchy,
/// and removes it on delete), no cgroup namespace and no `/sys/fs/cgroup` mount (a build
/// step has no use for them, and on cgroup v1 that mount is one bind per hierarchy), and
/// as resources only the device rules and the run's [`crate::Limits`].
pub(crate) fn config(p: &Prepared) -> Result<Spec, Error> {
    // umask 022 as docker gives RUN and rpm gives scriptlets, set explicitly rather than
    // left to the runtime's default (runc's is 022 too; the builtin executor sets the same).
    let mut user = UserBuilder::default().uid(p.user.uid).gid(p.user.gid).umask(0o022u32);
    if !p.user.additional_gids.is_empty() {
        user = user.additional_gids(p.user.additional_gids.clone());
    }
    let user = user.build().map_err(config_error)?;
    let set = caps::oci(&p.caps);
    // Bounding, effective and permitted; nothing inheritable or ambient, as docker since
    // 20.10: a non-root program then has no capability once it execs.
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .inheritable(oci_spec::runtime::Capabilities::new())
        .ambient(oci_spec::runtime::Capabilities::new())
        .build()
        .map_err(config_error)?;
    let rlimits = p
        .rlimits()
        .iter()
        .map(|(r, soft, hard)| {
            PosixRlimitBuilder::default()
                .typ(rlimit_type(*r))
                .soft(*soft)
                .hard(*hard)
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(config_error)?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(user)
        .args(p.args())
        .env(
            p.env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
        )
        .cwd(p.cwd())
        .capabilities(capabilities)
        .rlimits(rlimits)
        .no_new_privileges(false)
        .build()
        .map_err(config_error)?;
    let mut namespaces = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    if p.cmd.network == Network::None {
        // runc brings the new namespace's loopback up.
        namespaces.push(LinuxNamespaceType::Network);
    }
    let namespaces = namespaces
        .into_iter()
        .map(|t| LinuxNamespaceBuilder::default().typ(t).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(config_error)?;
    // Deny-all first, then runc adds its default devices.
    let devices = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .map_err(config_error)?;
    let limits = &p.cmd.limits;
    let memory = limits.memory.unwrap_or_else(crate::cgroup::default_memory) as i64;
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![devices])
        .pids(
            LinuxPidsBuilder::default()
                .limit(limits.pids as i64)
                .build()
                .map_err(config_error)?,
        )
        .memory(
            LinuxMemoryBuilder::default()
                .limit(memory)
                .build()
                .map_err(config_error)?,
        )
        .build()
        .map_err(config_error)?;
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources)
        .seccomp(crate::seccomp::oci(&p.caps)?)
        .masked_paths(MASKED_PATHS.map(String::from).to_vec())
        .readonly_paths(READONLY_PATHS.map(String::from).to_vec())
        .build()
        .map_err(config_error)?;
    let root = RootBuilder::default()
        .path(&p.root)
        .readonly(false)
        .build()
        .map_err(config_error)?;
    SpecBuilder::default()
        .version(OCI_VERSION)
        .root(root)
        .hostname(p.cmd.hostname.clone())
        .process(process)
        .mounts(mounts(p)?)
        .linux(linux)
        .build()
        .map_err(config_error)
}

fn mounts(p: &Prepared) -> Result<Vec<Mount>, Error> {
    let opts = |o: &[&str]| o.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    p.mounts
        .iter()
        .map(|m| {
            let b = MountBuilder::default().destination(&m.dest);
            let b = match &m.kind {
                MountKind::Proc => b
                    .typ("proc")
                    .source("proc")
                    .options(opts(&["nosuid", "noexec", "nodev"])),
                MountKind::Dev => b.typ("tmpfs").source("tmpfs").options(opts(&[
                    "nosuid",
                    "strictatime",
                    "mode=755",
                    "size=65536k",
                ])),
                MountKind::Devpts => b.typ("devpts").source("devpts").options(opts(&[
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ])),
                MountKind::Shm => b.typ("tmpfs").source("shm").options(opts(&[
                    "nosuid",
                    "noexec",
                    "nodev",
                    "mode=1777",
                    "size=65536k",
                ])),
                MountKind::Mqueue => b
                    .typ("mqueue")
                    .source("mqueue")
                    .options(opts(&["nosuid", "noexec", "nodev"])),
                MountKind::Sysfs => b
                    .typ("sysfs")
                    .source("sysfs")
                    .options(opts(&["nosuid", "noexec", "nodev", "ro"])),
                // runc remounts a bind with exactly the flags given, so a source on a
                // noexec filesystem still runs a handed-over program.
                MountKind::Bind {
                    source,
                    exec,
                    readonly,
                    recursive,
                } => {
                    let mut o = vec![if *recursive { "rbind" } else { "bind" }, "nosuid", "nodev"];
                    if !exec {
                        o.push("noexec");
                    }
                    if *readonly {
                        o.push("ro");
                    }
                    b.typ("bind").source(source).options(opts(&o))
                }
                MountKind::Tmpfs { size, mode } => {
                    let mut o = vec!["nosuid".into(), "nodev".into(), format!("mode={mode:o}")];
                    o.extend(size.map(|s| format!("size={s}")));
                    b.typ("tmpfs").source("tmpfs").options(o)
                }
            };
            b.build().map_err(config_error)
        })
        .collect()
}

fn rlimit_type(r: Rlimit) -> PosixRlimitType {
    match r {
        Rlimit::Core => PosixRlimitType::RlimitCore,
        Rlimit::Cpu => PosixRlimitType::RlimitCpu,
        Rlimit::Data => PosixRlimitType::RlimitData,
        Rlimit::Fsize => PosixRlimitType::RlimitFsize,
        Rlimit::Memlock => PosixRlimitType::RlimitMemlock,
        Rlimit::Nofile => PosixRlimitType::RlimitNofile,
        Rlimit::Nproc => PosixRlimitType::RlimitNproc,
        Rlimit::Stack => PosixRlimitType::RlimitStack,
    }
}
