//! The seccomp profile of every run: docker's default (moby/profiles `seccomp/default.json`),
//! as it applies to the capabilities strata hands out, described once and realized twice —
//! as `linux.seccomp` in the OCI runtime's config (runc compiles it with libseccomp) and as
//! classic BPF that the namespace executor installs itself (compiled by `seccompiler`).
//!
//! Docker's profile is an allowlist: every system call not named fails with `EPERM`. So
//! `mount`, `umount2`, `pivot_root`, `unshare`, `setns`, `init_module`/`finit_module`,
//! `kexec_load`, `bpf`, `perf_event_open`, `keyctl`, `add_key`, `open_by_handle_at`,
//! `io_uring_*`, `reboot`, `swapon`, `settimeofday`, ... are refused whatever the
//! capabilities say, and so is any system call added to the kernel after the table was
//! made. Conditional entries, as in docker's profile for a container without
//! `CAP_SYS_ADMIN`: `clone` only without namespace flags, `clone3` fails with `ENOSYS` (so
//! that glibc falls back to `clone`, whose flags the filter can read), `socket` not for
//! `AF_ALG` (38) or `AF_VSOCK` (40), `personality` only with the values programs use, and
//! `chroot` only when `CAP_SYS_CHROOT` is kept.
//!
//! Calls of another architecture's ABI (32-bit `int 0x80`, x32) do not match the filter's
//! architecture and kill the process, as libseccomp's default for a foreign ABI does.
//!
//! The table of names and numbers is generated (`scripts/seccomp-table.py`).

mod table;

use crate::Error;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};
use std::collections::BTreeMap;

/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
/// CLONE_NEWPID | CLONE_NEWNET`: the `clone` flags docker's profile refuses.
const NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// `CAP_SYS_CHROOT`.
const CAP_SYS_CHROOT: u32 = 18;

/// One argument test: argument `index` compared with `value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Test {
    Lt(u64),
    Eq(u64),
    Gt(u64),
    /// `(arg & mask) == value`.
    MaskedEq(u64, u64),
}

/// A system call allowed when any of its tests holds (always, with none).
#[derive(Debug)]
struct Allow {
    name: &'static str,
    /// (argument index, test); alternatives.
    any_of: Vec<(u8, Test)>,
}

/// The allowed calls for a run keeping `caps`, the calls that fail with `ENOSYS`, and the
/// number of each on this architecture (names this architecture lacks are left out).
struct Profile {
    allow: Vec<Allow>,
    enosys: Vec<&'static str>,
}

fn profile(caps: &[u32]) -> Profile {
    let plain = |name| Allow {
        name,
        any_of: Vec::new(),
    };
    let mut allow: Vec<Allow> = table::DOCKER_ALLOW.iter().map(|n| plain(n)).collect();
    // Unconditional since kernel 4.8, when ptrace could no longer bypass seccomp.
    allow.extend(["ptrace", "process_vm_readv", "process_vm_writev"].map(plain));
    #[cfg(target_arch = "x86_64")]
    allow.extend(["arch_prctl", "modify_ldt"].map(plain));
    if caps.contains(&CAP_SYS_CHROOT) {
        allow.push(plain("chroot"));
    }
    allow.push(Allow {
        name: "clone",
        any_of: vec![(0, Test::MaskedEq(NAMESPACE_FLAGS, 0))],
    });
    // clone3 must be allowed here for the ENOSYS rule to be what the caller sees.
    allow.push(plain("clone3"));
    allow.push(Allow {
        name: "socket",
        any_of: vec![(0, Test::Lt(38)), (0, Test::Eq(39)), (0, Test::Gt(40))],
    });
    allow.push(Allow {
        name: "personality",
        any_of: [0, 8, 0x20000, 0x20008, 0xffff_ffff]
            .map(|v| (0, Test::Eq(v)))
            .to_vec(),
    });
    Profile {
        allow,
        enosys: vec!["clone3"],
    }
}

fn number(name: &str) -> Option<i64> {
    table::NUMBERS
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| table::NUMBERS[i].1)
}

fn target() -> Result<seccompiler::TargetArch, Error> {
    std::env::consts::ARCH.try_into().map_err(|_| {
        Error::InvalidCommand(format!(
            "no seccomp filter for architecture {}",
            std::env::consts::ARCH
        ))
    })
}

fn bpf_error(e: seccompiler::BackendError) -> Error {
    Error::io("compile the seccomp filter")(std::io::Error::other(e))
}

/// The filters the namespace executor installs, in order: the allowlist (anything else
/// `EPERM`), then the `ENOSYS` calls. Of several filters the kernel takes the strictest
/// answer, so the second turns `clone3`, which the first allows, into `ENOSYS`.
pub(crate) fn bpf(caps: &[u32]) -> Result<Vec<BpfProgram>, Error> {
    let p = profile(caps);
    let arch = target()?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for a in &p.allow {
        let Some(nr) = number(a.name) else { continue };
        let chain = rules.entry(nr).or_default();
        for (index, test) in &a.any_of {
            let (len, op, value) = match *test {
                Test::Lt(v) => (SeccompCmpArgLen::Dword, SeccompCmpOp::Lt, v),
                Test::Eq(v) => (SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, v),
                Test::Gt(v) => (SeccompCmpArgLen::Dword, SeccompCmpOp::Gt, v),
                Test::MaskedEq(m, v) => (SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(m), v),
            };
            let cond = SeccompCondition::new(*index, len, op, value).map_err(bpf_error)?;
            chain.push(SeccompRule::new(vec![cond]).map_err(bpf_error)?);
        }
    }
    let errno = |e: i32| SeccompAction::Errno(e as u32);
    let allowlist = SeccompFilter::new(rules, errno(libc::EPERM), SeccompAction::Allow, arch)
        .map_err(bpf_error)?;
    let enosys: BTreeMap<i64, Vec<SeccompRule>> = p
        .enosys
        .iter()
        .filter_map(|n| number(n))
        .map(|nr| (nr, Vec::new()))
        .collect();
    let enosys = SeccompFilter::new(enosys, SeccompAction::Allow, errno(libc::ENOSYS), arch)
        .map_err(bpf_error)?;
    let compile = |f: SeccompFilter| BpfProgram::try_from(f).map_err(bpf_error);
    Ok(vec![compile(allowlist)?, compile(enosys)?])
}

/// The same profile for an OCI runtime's `config.json`.
pub(crate) fn oci(caps: &[u32]) -> Result<LinuxSeccomp, Error> {
    let p = profile(caps);
    let config = |e: oci_spec::OciSpecError| Error::io("build the seccomp config")(std::io::Error::other(e));
    let arch = match std::env::consts::ARCH {
        "x86_64" => Arch::ScmpArchX86_64,
        "aarch64" => Arch::ScmpArchAarch64,
        other => {
            return Err(Error::InvalidCommand(format!(
                "no seccomp filter for architecture {other}"
            )))
        }
    };
    let known = |name: &&str| number(name).is_some();
    let mut syscalls: Vec<LinuxSyscall> = Vec::new();
    let plain: Vec<String> = p
        .allow
        .iter()
        .filter(|a| a.any_of.is_empty() && !p.enosys.contains(&a.name))
        .map(|a| a.name)
        .filter(known)
        .map(String::from)
        .collect();
    syscalls.push(
        LinuxSyscallBuilder::default()
            .names(plain)
            .action(LinuxSeccompAction::ScmpActAllow)
            .build()
            .map_err(config)?,
    );
    for a in p.allow.iter().filter(|a| !a.any_of.is_empty()) {
        if !known(&a.name) {
            continue;
        }
        // One entry per alternative: libseccomp ANDs the arguments of one entry.
        for (index, test) in &a.any_of {
            let (op, value, value_two) = match *test {
                Test::Lt(v) => (LinuxSeccompOperator::ScmpCmpLt, v, None),
                Test::Eq(v) => (LinuxSeccompOperator::ScmpCmpEq, v, None),
                Test::Gt(v) => (LinuxSeccompOperator::ScmpCmpGt, v, None),
                Test::MaskedEq(m, v) => (LinuxSeccompOperator::ScmpCmpMaskedEq, m, Some(v)),
            };
            let mut arg = LinuxSeccompArgBuilder::default()
                .index(*index as usize)
                .value(value)
                .op(op);
            if let Some(v2) = value_two {
                arg = arg.value_two(v2);
            }
            syscalls.push(
                LinuxSyscallBuilder::default()
                    .names(vec![a.name.to_string()])
                    .action(LinuxSeccompAction::ScmpActAllow)
                    .args(vec![arg.build().map_err(config)?])
                    .build()
                    .map_err(config)?,
            );
        }
    }
    let enosys: Vec<String> = p.enosys.iter().filter(|n| known(n)).map(|n| n.to_string()).collect();
    if !enosys.is_empty() {
        syscalls.push(
            LinuxSyscallBuilder::default()
                .names(enosys)
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(libc::ENOSYS as u32)
                .build()
                .map_err(config)?,
        );
    }
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(libc::EPERM as u32)
        .architectures(vec![arch])
        .syscalls(syscalls)
        .build()
        .map_err(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_names_the_basics() {
        assert!(table::NUMBERS.windows(2).all(|w| w[0].0 < w[1].0));
        for name in ["read", "write", "execve", "clone", "socket", "exit_group"] {
            assert!(number(name).is_some(), "{name}");
        }
    }

    #[test]
    fn refused_calls_are_not_allowed() {
        let p = profile(&[0, 1, 18]);
        for name in [
            "mount", "umount2", "pivot_root", "unshare", "setns", "init_module",
            "finit_module", "kexec_load", "bpf", "keyctl", "add_key", "reboot", "swapon",
            "io_uring_setup", "open_by_handle_at", "perf_event_open",
        ] {
            assert!(!p.allow.iter().any(|a| a.name == name), "{name} must be refused");
        }
        assert!(p.allow.iter().any(|a| a.name == "chroot"));
        assert!(!profile(&[0]).allow.iter().any(|a| a.name == "chroot"));
    }

    #[test]
    fn both_forms_build() {
        let filters = bpf(&[0, 18]).unwrap();
        assert_eq!(filters.len(), 2);
        assert!(filters[0].len() < 4096, "BPF_MAXINSNS");
        let oci = oci(&[0, 18]).unwrap();
        let json = serde_json::to_value(&oci).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["defaultErrnoRet"], 1);
        let text = json.to_string();
        assert!(text.contains("\"clone3\"") && text.contains("\"errnoRet\":38"));
        assert!(!text.contains("\"mount\""));
    }
}
