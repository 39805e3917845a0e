//! `strata-sandbox` owns running a program isolated inside an image root, the way an RPM
//! scriptlet or a Dockerfile `RUN` must run: from one description (a [`Command`]: program,
//! environment, stdin, user, working directory, network, capabilities, limits, hostname,
//! timeout, handed-over files), realized by either of two executors behind one API
//! ([`Sandbox`]):
//!
//! - an OCI runtime (runc or crun): the description becomes a bundle whose `config.json`
//!   has the image root itself as its rootfs, run with a container state directory of
//!   strata's own;
//! - strata's own namespace code ([`Backend::Builtin`]), which unshares, mounts and chroots
//!   itself.
//!
//! Either way the program runs in new mount, pid, ipc and uts namespaces and, unless
//! [`Network::Host`], a new network namespace with only its loopback (up); with `/proc`,
//! a tmpfs `/dev` (null, zero, full, random, urandom, tty, pts, shm, mqueue, the
//! `/proc/self/fd` links), a read-only `/sys`, runc's masked and read-only paths; with a
//! generated `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname` mounted over the root's
//! (which stay untouched); as the user a Dockerfile's `USER` names, resolved in the root's
//! own `/etc/passwd` and `/etc/group` ([`resolve_user`]); with the limits podman and
//! docker are given here ([`DEFAULT_RLIMITS`]).
//!
//! It is a security boundary, for scriptlets and `RUN` alike, because the service runs
//! other people's RPMs and Dockerfiles: docker's default capabilities (less `CAP_NET_RAW`
//! for scriptlets, [`Capabilities`]); docker's default seccomp profile (an allowlist:
//! `mount`, `unshare`, module loading, `keyctl`, `bpf`, ... fail with `EPERM`); only the
//! standard devices usable (the runtime's device cgroup; in the namespace executor a
//! `nodev` root and `/dev`, so a node made with `CAP_MKNOD` is an entry of the image and
//! never an open door to a host disk); `/proc/sys`, `/sys` and friends read-only or
//! masked; and [`Limits`] on processes and memory in a cgroup of the run's own, so a fork
//! bomb or a runaway ends with [`Error::Limit`] instead of taking the host down. No user
//! namespace is used (see docs/decisions.md): root in the sandbox is root on the host's
//! files of the image root, which is what an image build writes.
//!
//! A caller can add mounts of its own ([`Command::mount`], for a Dockerfile's
//! `RUN --mount`): a host file or directory bound read-write or read-only, or a fresh
//! tmpfs, made after the sandbox's own, in the order given.
//!
//! The program is pid 1 of its pid namespace, so every process it leaves behind dies when it
//! exits, and a timeout kills them all. Small files (a scriptlet's body) are handed over at
//! [`FILES_DIR`], never on the root's filesystem.
//!
//! The root is left exactly as the program left it, because the caller diffs it afterwards:
//! the sandbox's mounts vanish with its mount namespace (nothing propagates to the host),
//! and a mountpoint it had to create (`/proc`, `/dev`, `/sys`, `/etc/hosts`, ..., `/etc`
//! itself in an empty root, a [`Command::mount`]'s destination) is removed again, with its directory's times restored. The
//! runtime's container state, cgroups and bundle are removed after every run, success,
//! failure or timeout; a killed strata's leftovers are removed by the next [`Sandbox`].
//!
//! It needs root (no user namespace is used, so ids in the root are the host's ids). If
//! strata is killed, the sandbox dies with it: the namespace executor's processes and the
//! runtime's supervisor carry parent-death signals, and the supervisor kills the program
//! before it goes.
//! [`Sandbox::new`] proves that the chosen executor works here and otherwise says why: a
//! runtime by a real run of a tiny program, since one can be installed and still fail
//! (crun on hybrid cgroups). [`run`] and [`check_available`] use the namespace executor.
//!
//! The executors differ where the kernel, not the description, decides: a program that is
//! found but cannot be executed (its `#!` interpreter is missing) is [`Error::Exec`] for the
//! namespace code and, with a runtime, an [`Output`] with exit code 1 and the runtime's
//! message on stderr, as docker shows it.
//!
//! ```no_run
//! use strata_sandbox::{Backend, Command, Sandbox};
//! let sandbox = Sandbox::new(Backend::Auto)?;
//! let cmd = Command::new("/bin/sh")
//!     .arg("/dev/.strata/script")
//!     .file("script", b"echo installed > /etc/motd\n".to_vec(), 0o755);
//! let out = sandbox.run(std::path::Path::new("/var/tmp/image-root"), &cmd)?;
//! assert!(out.status.success());
//! # Ok::<(), strata_sandbox::Error>(())
//! ```
//!
//! Concurrency: runs in different roots may proceed at once from different threads. Two runs
//! in the same root at the same time are not supported (they would share the mountpoints the
//! sandbox creates and removes).

mod builtin;
mod caps;
mod cgroup;
mod collect;
mod command;
mod error;
mod forked;
mod inprocess;
mod oci;
mod report;
mod root;
mod rundir;
mod runtime;
mod sandbox;
mod seccomp;
mod spec;
mod user;

pub use command::{
    Capabilities, Command, ExitStatus, Limits, MountSource, Network, Output, Rlimit, DEFAULT_PATH,
    DEFAULT_PIDS_LIMIT, DEFAULT_RLIMITS, DEFAULT_TIMEOUT, FILES_DIR,
};
pub use cgroup::LimitKind;
pub use error::Error;
pub use inprocess::run_in_process;
pub use rundir::DEFAULT_STATE_DIR;
pub use sandbox::{check_available, run, Backend, Executor, Sandbox, AUTO_RUNTIMES};
pub use user::{resolve_user, ResolvedUser};

#[cfg(test)]
mod tests;
