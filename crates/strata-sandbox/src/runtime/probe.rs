//! Whether an OCI runtime works on this machine, proven by running a program with it: a
//! runtime can be installed and still fail here (crun on hybrid cgroups), and only a real
//! run through the same config strata generates shows that.

use super::Runtime;
use crate::rundir::RunDir;
use crate::{Command, Error, FILES_DIR};
use std::path::Path;
use std::time::Duration;

/// What the probe program exits with: no other outcome of a run is this by accident.
const PROBE_EXIT: u8 = 42;

/// Runs a tiny static program in a scratch root with `runtime`.
pub(crate) fn probe(runtime: &Runtime, state: &Path) -> Result<(), String> {
    let Some(program) = exit_program(PROBE_EXIT) else {
        return Err(format!(
            "no probe program for {}: strata cannot tell whether it works",
            std::env::consts::ARCH
        ));
    };
    // An empty root, and the program handed over as a scriptlet is: the state directory
    // may be on a noexec /run, which the handed-over files' mount overrides.
    let scratch = RunDir::new(state).map_err(|e| e.to_string())?;
    let cmd = Command::new(format!("{FILES_DIR}/probe"))
        .file("probe", program, 0o755)
        .timeout(Duration::from_secs(60));
    match runtime.run(scratch.path(), &cmd, state) {
        Ok(out) if out.status.code == Some(i32::from(PROBE_EXIT)) => Ok(()),
        Ok(out) => Err(format!(
            "the probe program ended with {} instead of exit code {PROBE_EXIT}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(Error::Runtime {
            message, status, ..
        }) => Err(format!("{message} ({status})")),
        Err(e) => Err(e.to_string()),
    }
}

/// A static ELF executable for this machine that only exits with `code`: the smallest
/// program a root can hold, needing no libc.
pub(crate) fn exit_program(code: u8) -> Option<Vec<u8>> {
    match std::env::consts::ARCH {
        // mov edi, code; mov eax, 60 (exit); syscall
        "x86_64" => Some(elf(
            62,
            &[0xbf, code, 0, 0, 0, 0xb8, 60, 0, 0, 0, 0x0f, 0x05],
        )),
        // mov x0, #code; mov x8, #93 (exit); svc #0
        "aarch64" => {
            let movz = |reg: u32, imm: u32| (0xd280_0000 | (imm << 5) | reg).to_le_bytes();
            let mut t = Vec::new();
            t.extend(movz(0, u32::from(code)));
            t.extend(movz(8, 93));
            t.extend(0xd400_0001u32.to_le_bytes());
            Some(elf(183, &t))
        }
        _ => None,
    }
}

/// One that the kernel kills at its first instruction, and the signal it dies of: a
/// signal even a namespace's pid 1 cannot ignore.
#[cfg(test)]
pub(crate) fn crash_program() -> Option<(Vec<u8>, i32)> {
    match std::env::consts::ARCH {
        // hlt, privileged: SIGSEGV
        "x86_64" => Some((elf(62, &[0xf4]), libc::SIGSEGV)),
        // udf #0: SIGILL
        "aarch64" => Some((elf(183, &[0, 0, 0, 0]), libc::SIGILL)),
        _ => None,
    }
}

/// A 64-bit little-endian ELF executable for `machine` whose code is `text`.
fn elf(machine: u16, text: &[u8]) -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    const EHDR: u64 = 64;
    const PHDR: u64 = 56;
    let size = EHDR + PHDR + text.len() as u64;
    let mut elf = Vec::with_capacity(size as usize);
    // e_ident: ELF, 64-bit, little-endian, version 1, System V ABI.
    elf.extend([0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    elf.extend([0u8; 8]);
    elf.extend(2u16.to_le_bytes()); // e_type: EXEC
    elf.extend(machine.to_le_bytes());
    elf.extend(1u32.to_le_bytes()); // e_version
    elf.extend((BASE + EHDR + PHDR).to_le_bytes()); // e_entry
    elf.extend(EHDR.to_le_bytes()); // e_phoff
    elf.extend(0u64.to_le_bytes()); // e_shoff
    elf.extend(0u32.to_le_bytes()); // e_flags
    elf.extend((EHDR as u16).to_le_bytes()); // e_ehsize
    elf.extend((PHDR as u16).to_le_bytes()); // e_phentsize
    elf.extend(1u16.to_le_bytes()); // e_phnum
    elf.extend([0u8; 6]); // e_shentsize, e_shnum, e_shstrndx
                          // One PT_LOAD, read + execute, mapping the whole file at BASE.
    elf.extend(1u32.to_le_bytes()); // p_type
    elf.extend(5u32.to_le_bytes()); // p_flags: R | X
    elf.extend(0u64.to_le_bytes()); // p_offset
    elf.extend(BASE.to_le_bytes()); // p_vaddr
    elf.extend(BASE.to_le_bytes()); // p_paddr
    elf.extend(size.to_le_bytes()); // p_filesz
    elf.extend(size.to_le_bytes()); // p_memsz
    elf.extend(0x1000u64.to_le_bytes()); // p_align
    elf.extend(text);
    elf
}
