//! `containers-storage:` through the `podman` binary.
//!
//! containers/storage (layer store, image store, locks, the overlay driver's layout) has no
//! Rust implementation, and writing into it behind podman's back would break podman. So
//! podman itself is the reader and writer: export streams a docker-archive into `podman
//! load` over a pipe, import streams `podman save --format docker-archive` out of one; the
//! storage specifier becomes podman's `--storage-driver`, `--root`, `--runroot` and
//! `--storage-opt`. The binary is `$STRATA_PODMAN`, else `podman` on PATH.

use crate::parse::StorageSpec;
use crate::{Error, Result};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};

fn podman_command(storage: Option<&StorageSpec>) -> Command {
    let bin = std::env::var_os("STRATA_PODMAN").unwrap_or_else(|| OsString::from("podman"));
    let mut cmd = Command::new(bin);
    if let Some(s) = storage {
        if let Some(d) = &s.driver {
            cmd.arg("--storage-driver").arg(d);
        }
        cmd.arg("--root").arg(&s.root);
        if let Some(rr) = &s.run_root {
            cmd.arg("--runroot").arg(rr);
        }
        for o in &s.options {
            cmd.arg("--storage-opt").arg(o);
        }
    }
    cmd
}

fn spawn(mut cmd: Command, what: &str, hint: &str) -> Result<Child> {
    cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Podman(format!(
                "containers-storage: needs podman to {what}, and it is not installed (not on PATH, nor $STRATA_PODMAN)\nhint: install podman, or go through a file: {hint}"
            ))
        } else {
            Error::Podman(format!("starting podman to {what}: {e}"))
        }
    })
}

/// Collects a child's stderr on a thread (podman may write much while we feed or drain it).
fn stderr_of(child: &mut Child) -> std::thread::JoinHandle<String> {
    let mut err = child.stderr.take();
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = err.as_mut() {
            let _ = e.take(1 << 20).read_to_string(&mut s);
        }
        s
    })
}

/// Loads the docker-archive `write` produces into the storage; returns podman's image id
/// for `name` (`sha256:<config digest>`).
pub fn load(storage: Option<&StorageSpec>, name: &str, write: impl FnOnce(&mut dyn Write) -> strata_oci::Result<()>) -> Result<String> {
    let mut cmd = podman_command(storage);
    cmd.args(["load", "--quiet"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = spawn(cmd, "load the image", "strata push IMAGE oci-archive:FILE, then `podman load -i FILE` where podman is")?;
    let errors = stderr_of(&mut child);
    let mut stdout = child.stdout.take();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.take(1 << 20).read_to_string(&mut s);
        }
        s
    });
    let written = {
        let stdin = child.stdin.take().ok_or_else(|| Error::Podman("podman load: no stdin".into()))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, stdin);
        write(&mut w).and_then(|()| w.flush().map_err(|e| strata_oci::Error::Io { what: "sending the archive to podman load".into(), source: e }))
        // stdin closes here: podman sees the end of the archive.
    };
    let status = child.wait().map_err(|e| Error::Podman(format!("waiting for podman load: {e}")))?;
    let stderr = errors.join().unwrap_or_default();
    // podman's stdout ("Loaded image: ...") was drained so it could not block; the id comes
    // from inspect, which names the image the way the tag was asked.
    let _ = out_thread.join();
    if !status.success() {
        return Err(Error::Podman(format!("podman load failed ({status}): {}", stderr.trim())));
    }
    written?;
    image_id(storage, name)
}

/// `podman image inspect --format {{.Id}} NAME`, as `sha256:<hex>`.
pub fn image_id(storage: Option<&StorageSpec>, name: &str) -> Result<String> {
    let mut cmd = podman_command(storage);
    cmd.args(["image", "inspect", "--format", "{{.Id}}", name]);
    let out = cmd.output().map_err(|e| Error::Podman(format!("running podman image inspect: {e}")))?;
    if !out.status.success() {
        return Err(Error::Podman(format!("podman image inspect {name}: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(if id.starts_with("sha256:") { id } else { format!("sha256:{id}") })
}

/// Streams `podman save --format docker-archive NAME` into `read`.
pub fn save<T>(storage: Option<&StorageSpec>, name: &str, read: impl FnOnce(&mut dyn Read) -> strata_oci::Result<T>) -> Result<T> {
    let mut cmd = podman_command(storage);
    cmd.args(["save", "--format", "docker-archive", name]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = spawn(cmd, "save the image", "`podman save -o FILE NAME` where podman is, then strata pull docker-archive:FILE")?;
    let errors = stderr_of(&mut child);
    let loaded = {
        let mut stdout = child.stdout.take().ok_or_else(|| Error::Podman("podman save: no stdout".into()))?;
        let loaded = read(&mut stdout);
        if loaded.is_ok() {
            // Drain what the loader left (the tar's trailing blocks) so podman can finish.
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        } else {
            // Refused: the rest is not wanted, and podman must not block on a full pipe.
            let _ = child.kill();
        }
        loaded
    };
    let status = child.wait().map_err(|e| Error::Podman(format!("waiting for podman save: {e}")))?;
    let stderr = errors.join().unwrap_or_default();
    if !status.success() && loaded.is_ok() {
        let hint = if stderr.contains("image not known") { "\nhint: `podman images` (with the same storage) lists what it has" } else { "" };
        return Err(Error::Podman(format!("podman save {name} failed ({status}): {}{hint}", stderr.trim())));
    }
    Ok(loaded?)
}
