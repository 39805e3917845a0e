//! The rule on real files, FIFOs and devices.

use super::*;
use std::io::Read;

fn write_to(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write(path, bytes)
}

#[test]
fn regular_files_are_replaced_and_links_kept() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("out.tar");
    std::fs::write(&f, "old").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = d.path().join("link");
    std::os::unix::fs::symlink("out.tar", &link).unwrap();
    write_to(&link, b"new").unwrap();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
    assert_eq!(std::fs::read(&f).unwrap(), b"new");
    assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600, "a replaced file keeps its mode");
    // A dangling link: the file it names is created, the link stays.
    let dangling = d.path().join("dangling");
    std::os::unix::fs::symlink("made.tar", &dangling).unwrap();
    write_to(&dangling, b"x").unwrap();
    assert_eq!(std::fs::read(d.path().join("made.tar")).unwrap(), b"x");
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 4, "no temporary file left");
}

#[test]
fn an_uncommitted_output_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("out.tar");
    std::fs::write(&f, "old").unwrap();
    let mut out = Output::create(&f).unwrap();
    out.write_all(b"half of it").unwrap();
    drop(out);
    assert_eq!(std::fs::read(&f).unwrap(), b"old");
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1, "the temporary file is gone");
}

#[test]
fn directories_and_kernel_files_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let e = write_to(d.path(), b"x").unwrap_err().to_string();
    assert!(e.contains("is a directory"), "{e}");
    let link = d.path().join("to-dir");
    std::os::unix::fs::symlink(d.path(), &link).unwrap();
    let e = write_to(&link, b"x").unwrap_err().to_string();
    assert!(e.contains("is a directory") && e.contains("where"), "{e}");
    let e = write_to(Path::new("/proc/sys/kernel/hostname"), b"x").unwrap_err().to_string();
    assert!(e.contains("kernel interface"), "{e}");
    assert!(destination(Path::new("/dev/mem")).is_err() || !Path::new("/dev/mem").exists());
}

#[test]
fn fifos_get_the_bytes_and_stay_fifos() {
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("pipe");
    rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o600), 0).unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut s = Vec::new();
            File::open(&fifo).unwrap().read_to_end(&mut s).unwrap();
            s
        })
    };
    write_to(&fifo, b"through the pipe").unwrap();
    assert_eq!(reader.join().unwrap(), b"through the pipe");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn dev_full_fails_with_enospc_and_stays_a_device() {
    let e = write_to(Path::new("/dev/full"), &[0u8; 70000]).unwrap_err();
    assert_eq!(e.raw_os_error().or_else(|| e.to_string().contains("No space left").then_some(28)), Some(28), "{e}");
    assert!(std::fs::symlink_metadata("/dev/full").unwrap().file_type().is_char_device());
    write_to(Path::new("/dev/null"), b"gone").unwrap();
    assert!(std::fs::symlink_metadata("/dev/null").unwrap().file_type().is_char_device());
}

#[test]
fn standard_output_is_a_descriptor() {
    assert_eq!(destination(Path::new("-")).unwrap(), Destination::Descriptor(1));
    if Path::new("/dev/stdout").exists() {
        assert_eq!(destination(Path::new("/dev/stdout")).unwrap(), Destination::Descriptor(1));
        assert_eq!(destination(Path::new("/dev/fd/2")).unwrap(), Destination::Descriptor(2));
    }
}

#[test]
fn output_directories() {
    let d = tempfile::tempdir().unwrap();
    directory(&d.path().join("a/b")).unwrap();
    assert!(d.path().join("a/b").is_dir());
    std::fs::write(d.path().join("f"), "x").unwrap();
    let e = directory(&d.path().join("f")).unwrap_err().to_string();
    assert!(e.contains("a regular file, not a directory"), "{e}");
    let e = directory(Path::new("/dev/null")).unwrap_err().to_string();
    assert!(e.contains("character device"), "{e}");
}
