//! File capabilities: rpm stores them as libcap text (`cap_net_raw=p`, `cap_setuid,cap_setgid+ep`);
//! the kernel and OCI layer tars want the binary `security.capability` xattr
//! (`vfs_cap_data`, revision 2). libcap is a C library only, and the conversion is small.

/// Capability names by number, as libcap spells them.
const NAMES: [&str; 41] = [
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
    "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
    "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
    "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
    "lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
    "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
];

const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("file capabilities {text:?}: {reason}")]
pub struct CapsError {
    pub text: String,
    pub reason: String,
}

/// Converts libcap text to the 20-byte `security.capability` value. `Ok(None)` for text
/// that grants nothing (rpm writes no xattr then either).
pub fn parse_caps_text(text: &str) -> Result<Option<Vec<u8>>, CapsError> {
    let err = |reason: String| CapsError { text: text.to_string(), reason };
    let (mut eff, mut perm, mut inh) = (0u64, 0u64, 0u64);
    for clause in text.split_whitespace() {
        let split = clause.find(['=', '+', '-']).ok_or_else(|| err(format!("clause {clause:?} has no =, + or -")))?;
        let (names, mut ops) = clause.split_at(split);
        let mut set = 0u64;
        if names.is_empty() || names.eq_ignore_ascii_case("all") {
            set = (1u64 << NAMES.len()) - 1;
        } else {
            for name in names.split(',') {
                let n = name.to_ascii_lowercase();
                let n = n.strip_prefix("cap_").unwrap_or(&n);
                let bit = NAMES
                    .iter()
                    .position(|&k| k == n)
                    .or_else(|| n.parse::<usize>().ok().filter(|&b| b < 64))
                    .ok_or_else(|| err(format!("unknown capability {name:?}")))?;
                set |= 1 << bit;
            }
        }
        while !ops.is_empty() {
            let op = ops.as_bytes()[0];
            let end = ops[1..].find(['=', '+', '-']).map_or(ops.len(), |i| i + 1);
            let flags = &ops[1..end];
            if op == b'=' {
                eff &= !set;
                perm &= !set;
                inh &= !set;
            }
            for f in flags.chars() {
                let target = match f {
                    'e' => &mut eff,
                    'p' => &mut perm,
                    'i' => &mut inh,
                    _ => return Err(err(format!("unknown flag {f:?}"))),
                };
                if op == b'-' {
                    *target &= !set;
                } else {
                    *target |= set;
                }
            }
            ops = &ops[end..];
        }
    }
    if perm == 0 && inh == 0 {
        return Ok(None);
    }
    let magic = VFS_CAP_REVISION_2 | if eff != 0 { VFS_CAP_FLAGS_EFFECTIVE } else { 0 };
    let mut out = Vec::with_capacity(20);
    out.extend_from_slice(&magic.to_le_bytes());
    for half in [0u32, 32] {
        out.extend_from_slice(&((perm >> half) as u32).to_le_bytes());
        out.extend_from_slice(&((inh >> half) as u32).to_le_bytes());
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[u8]) -> Vec<u32> {
        v.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect()
    }

    #[test]
    fn net_raw_permitted_matches_setcap_output() {
        // What `setcap cap_net_raw=p f; getfattr -n security.capability` stores.
        assert_eq!(words(&parse_caps_text("cap_net_raw=p").unwrap().unwrap()), [0x0200_0000, 1 << 13, 0, 0, 0]);
    }

    #[test]
    fn lists_ops_and_high_caps() {
        let v = words(&parse_caps_text("cap_setuid,cap_setgid+ep cap_bpf=i").unwrap().unwrap());
        assert_eq!(v, [0x0200_0001, (1 << 6) | (1 << 7), 0, 0, 1 << (39 - 32)]);
        let v = words(&parse_caps_text("all=p cap_chown-p").unwrap().unwrap());
        assert_eq!(v[1], !1);
        assert_eq!(parse_caps_text("").unwrap(), None);
        assert_eq!(parse_caps_text("cap_chown=").unwrap(), None);
        assert!(parse_caps_text("cap_bogus=p").is_err());
        assert!(parse_caps_text("cap_chown").is_err());
    }

    /// Cross-check with libcap's own tools when present (setcap writes, getfattr reads).
    #[test]
    fn agrees_with_setcap() {
        let (Ok(_), Ok(_)) = (which("setcap"), which("getfattr")) else {
            eprintln!("setcap/getfattr not installed; skipping cross-check");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        for text in ["cap_net_raw=p", "cap_net_bind_service+ep", "cap_setuid,cap_setgid=eip", "cap_sys_admin,cap_bpf=p"] {
            let ok = std::process::Command::new("setcap").arg(text).arg(&f).status().unwrap().success();
            if !ok {
                eprintln!("setcap not permitted here; skipping cross-check");
                return;
            }
            let out = std::process::Command::new("getfattr")
                .args(["-e", "hex", "-n", "security.capability"])
                .arg(&f)
                .output()
                .unwrap();
            let stdout = String::from_utf8(out.stdout).unwrap();
            let hex = stdout.lines().find_map(|l| l.strip_prefix("security.capability=0x")).unwrap();
            assert_eq!(hex, hex::encode(parse_caps_text(text).unwrap().unwrap()), "{text}");
        }
    }

    fn which(tool: &str) -> Result<(), ()> {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|_| ())
            .ok_or(())
    }
}
