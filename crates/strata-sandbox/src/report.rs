//! The pipe on which a forked helper tells the parent what happened to it: which setup step
//! failed and with which errno, or how the program it waited for ended.

use crate::Error;
use rustix::fd::{AsFd, OwnedFd};
use rustix::pipe::PipeFlags;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Tag {
    /// A middle-process step failed; the index names it, the value is the errno.
    Middle = 1,
    /// An operation of the plan failed; the index names it, the value is the errno.
    Op = 2,
    /// The OCI runtime exited before the program started; the value is its wait status.
    RuntimeFailed = 3,
    /// The program ended; the value is its wait status.
    Exited = 4,
}

const RECORD: usize = 9;

/// The write end, for the child. Close-on-exec and non-blocking: a record is smaller than
/// `PIPE_BUF`, so it is written whole or not at all, and never blocks the child.
pub(crate) struct Report(OwnedFd);

/// The read end, for the parent.
pub(crate) struct ReportReader(OwnedFd);

pub(crate) fn pipe() -> Result<(ReportReader, Report), Error> {
    let (r, w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)
        .map_err(|e| Error::io("create the sandbox report pipe")(e.into()))?;
    // With stdin, stdout or stderr closed the pipe could get 0, 1 or 2, which the child's
    // own stdio replaces before it could write.
    let high = |fd: OwnedFd| {
        rustix::io::fcntl_dupfd_cloexec(fd.as_fd(), 3)
            .map_err(|e| Error::io("move the sandbox report pipe")(e.into()))
    };
    Ok((ReportReader(high(r)?), Report(high(w)?)))
}

impl Report {
    /// Async-signal-safe: one write of a stack buffer.
    pub(crate) fn write(&self, tag: Tag, index: u32, value: i32) {
        let i = index.to_ne_bytes();
        let v = value.to_ne_bytes();
        let record: [u8; RECORD] = [tag as u8, i[0], i[1], i[2], i[3], v[0], v[1], v[2], v[3]];
        let _ = rustix::io::write(&self.0, &record);
    }

    pub(crate) fn raw(&self) -> i32 {
        use rustix::fd::AsRawFd;
        self.0.as_raw_fd()
    }
}

impl ReportReader {
    /// The record, if one was written (call once every writer is gone or done).
    pub(crate) fn read(&self) -> Option<(Tag, u32, i32)> {
        let mut record = [0u8; RECORD];
        let got = rustix::io::read(&self.0, &mut record).unwrap_or(0);
        if got != RECORD {
            return None;
        }
        let tag = match record[0] {
            1 => Tag::Middle,
            2 => Tag::Op,
            3 => Tag::RuntimeFailed,
            4 => Tag::Exited,
            _ => return None,
        };
        let index = u32::from_ne_bytes(record[1..5].try_into().expect("4 bytes"));
        let value = i32::from_ne_bytes(record[5..9].try_into().expect("4 bytes"));
        Some((tag, index, value))
    }
}
