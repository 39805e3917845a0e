//! Linux capabilities by number (for the namespace executor's `prctl`) and by OCI name
//! (for the runtime's config).

use crate::Capabilities;
use oci_spec::runtime::Capability as Oci;

/// Every capability up to CAP_CHECKPOINT_RESTORE (40), by number.
const ALL: [(u32, Oci); 41] = [
    (0, Oci::Chown),
    (1, Oci::DacOverride),
    (2, Oci::DacReadSearch),
    (3, Oci::Fowner),
    (4, Oci::Fsetid),
    (5, Oci::Kill),
    (6, Oci::Setgid),
    (7, Oci::Setuid),
    (8, Oci::Setpcap),
    (9, Oci::LinuxImmutable),
    (10, Oci::NetBindService),
    (11, Oci::NetBroadcast),
    (12, Oci::NetAdmin),
    (13, Oci::NetRaw),
    (14, Oci::IpcLock),
    (15, Oci::IpcOwner),
    (16, Oci::SysModule),
    (17, Oci::SysRawio),
    (18, Oci::SysChroot),
    (19, Oci::SysPtrace),
    (20, Oci::SysPacct),
    (21, Oci::SysAdmin),
    (22, Oci::SysBoot),
    (23, Oci::SysNice),
    (24, Oci::SysResource),
    (25, Oci::SysTime),
    (26, Oci::SysTtyConfig),
    (27, Oci::Mknod),
    (28, Oci::Lease),
    (29, Oci::AuditWrite),
    (30, Oci::AuditControl),
    (31, Oci::Setfcap),
    (32, Oci::MacOverride),
    (33, Oci::MacAdmin),
    (34, Oci::Syslog),
    (35, Oci::WakeAlarm),
    (36, Oci::BlockSuspend),
    (37, Oci::AuditRead),
    (38, Oci::Perfmon),
    (39, Oci::Bpf),
    (40, Oci::CheckpointRestore),
];

/// Docker's (and containerd's, hence buildkit's) default set.
const DOCKER_DEFAULT: [u32; 14] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

/// `CAP_NET_RAW`, which scriptlets do without.
const NET_RAW: u32 = 13;

/// The highest capability this kernel knows; a runtime refuses names it does not.
pub(crate) fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// The capabilities strata itself may hand on: in its bounding and permitted sets. A
/// runtime asked for more fails (`unable to apply caps: operation not permitted`), as on
/// machines whose bounding set lacks CAP_SYS_RESOURCE.
pub(crate) fn own() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let set = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    set("CapBnd:") & set("CapPrm:")
}

/// The capability numbers a run keeps, ascending: those of `which` that strata has.
pub(crate) fn numbers(which: Capabilities, own: u64) -> Vec<u32> {
    let wanted: Vec<u32> = match which {
        Capabilities::Scriptlet => DOCKER_DEFAULT.into_iter().filter(|c| *c != NET_RAW).collect(),
        Capabilities::DockerDefault => DOCKER_DEFAULT.to_vec(),
    };
    wanted.into_iter().filter(|n| own & (1 << n) != 0).collect()
}

pub(crate) fn oci(numbers: &[u32]) -> oci_spec::runtime::Capabilities {
    ALL.iter()
        .filter(|(n, _)| numbers.contains(n))
        .map(|(_, c)| *c)
        .collect()
}
