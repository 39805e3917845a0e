use super::*;
use crate::digest::sha256_hex_of;
use std::process::Command;

/// One entry as the `tar` crate reads it back.
#[derive(Debug)]
struct Got {
    path: String,
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    uname: String,
    mtime: u64,
    link: Option<String>,
    xattrs: BTreeMap<String, Vec<u8>>,
    data: Vec<u8>,
}

fn read_tar(bytes: &[u8]) -> Vec<Got> {
    let mut ar = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut xattrs = BTreeMap::new();
        let mut pax_uname = None;
        if let Some(exts) = e.pax_extensions().unwrap() {
            for ext in exts {
                let ext = ext.unwrap();
                let key = ext.key().unwrap();
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    xattrs.insert(name.to_string(), ext.value_bytes().to_vec());
                }
                // The tar crate applies PAX paths and ids but not user names.
                if key == "uname" {
                    pax_uname = Some(ext.value().unwrap().to_string());
                }
            }
        }
        let h = e.header().clone();
        let path = String::from_utf8(e.path_bytes().to_vec()).unwrap();
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8(l.to_vec()).unwrap());
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        out.push(Got {
            path,
            kind: h.entry_type(),
            mode: h.mode().unwrap(),
            uid: e.header().uid().unwrap_or(0),
            gid: h.gid().unwrap(),
            uname: pax_uname.unwrap_or_else(|| h.username().unwrap().unwrap_or("").to_string()),
            mtime: h.mtime().unwrap(),
            link,
            xattrs,
            data,
        });
    }
    out
}

fn plain() -> WriteOptions {
    WriteOptions {
        compression: Compression::None,
        threads: 1,
    }
}

fn finish(b: LayerBuilder, opts: WriteOptions) -> (Vec<u8>, LayerInfo) {
    b.finish(Vec::new(), opts).unwrap()
}

const CAP: &[u8] = &[
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

type Step = Box<dyn Fn(&mut LayerBuilder)>;

/// A layer exercising every entry kind; `order` permutes the add order.
pub(crate) fn sample(order: &[usize]) -> LayerBuilder {
    let long_dir = format!("opt/{}", "d".repeat(120));
    let long_target = format!("/{}", "t".repeat(150));
    let mut b = LayerBuilder::new();
    b.set_default_mtime(1_000);
    let steps: Vec<Step> = vec![
        Box::new(|b| b.add_dir("etc", &Meta::new(0o755).mtime(5)).unwrap()),
        Box::new(|b| {
            let m = Meta::new(0o4755)
                .names("root", "root")
                .mtime(7)
                .xattr(CAPABILITY_XATTR, CAP);
            b.add_file("usr/bin/ping", &m, 4, &b"ping"[..]).unwrap()
        }),
        Box::new(|b| b.add_dir("tmp", &Meta::new(0o1777)).unwrap()),
        Box::new(|b| {
            let m = Meta::new(0o2711).owner(0, 5).names("root", "tty");
            b.add_file("usr/bin/write", &m, 3, &b"wri"[..]).unwrap()
        }),
        Box::new(|b| {
            b.add_symlink("usr/bin/sh", &Meta::new(0o777), "bash")
                .unwrap()
        }),
        // The link sorts before its target: the writer must swap roles.
        Box::new(|b| b.add_hardlink("usr/bin/a-link", "usr/bin/ping").unwrap()),
        Box::new(|b| b.add_whiteout("etc/old.conf").unwrap()),
        Box::new(|b| b.add_opaque("var/cache").unwrap()),
        Box::new(move |b| {
            let m = Meta::new(0o644)
                .owner(3_000_000, 3_000_000)
                .names("a-very-long-user-name-over-32-chars", "g");
            b.add_file(format!("{long_dir}/file"), &m, 0, &b""[..])
                .unwrap()
        }),
        Box::new(move |b| {
            b.add_symlink("usr/lib/long", &Meta::new(0o777), long_target.as_str())
                .unwrap()
        }),
    ];
    for &i in order {
        steps[i](&mut b);
    }
    b
}

fn all() -> Vec<usize> {
    (0..10).collect()
}

#[test]
fn entries_read_back_with_metadata() {
    let (tar, info) = finish(sample(&all()), plain());
    assert_eq!(info.diff_id, sha256_hex_of(&tar));
    assert_eq!(info.digest, info.diff_id, "uncompressed blob is the tar");
    assert_eq!(info.tar_size, tar.len() as u64);
    assert_eq!(info.media_type, MediaType::ImageLayer);
    let entries = read_tar(&tar);
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort_by(|a, b| a.trim_end_matches('/').cmp(b.trim_end_matches('/')));
    assert_eq!(paths, sorted, "not sorted by path");
    // Implicit parents exist, before their children, with default metadata.
    for dir in ["usr/", "usr/bin/", "usr/lib/", "var/", "var/cache/", "opt/"] {
        let e = entries
            .iter()
            .find(|e| e.path == dir)
            .unwrap_or_else(|| panic!("{dir} missing"));
        assert_eq!(
            (e.kind, e.mode, e.mtime),
            (tar::EntryType::Directory, 0o755, 1_000)
        );
    }
    let get = |p: &str| {
        entries
            .iter()
            .find(|e| e.path == p)
            .unwrap_or_else(|| panic!("{p} missing"))
    };
    assert_eq!(get("etc/").mtime, 5);
    assert_eq!(get("tmp/").mode, 0o1777);
    let write = get("usr/bin/write");
    assert_eq!(
        (write.mode, write.gid, write.data.as_slice()),
        (0o2711, 5, &b"wri"[..])
    );
    let sh = get("usr/bin/sh");
    assert_eq!(
        (sh.kind, sh.link.as_deref()),
        (tar::EntryType::Symlink, Some("bash"))
    );
    // Hardlink group: content at the smallest path, the original target links to it.
    let primary = get("usr/bin/a-link");
    assert_eq!(primary.kind, tar::EntryType::Regular);
    assert_eq!(
        (primary.mode, primary.data.as_slice()),
        (0o4755, &b"ping"[..])
    );
    assert_eq!(
        primary.xattrs.get(CAPABILITY_XATTR).map(Vec::as_slice),
        Some(CAP)
    );
    let ping = get("usr/bin/ping");
    assert_eq!(
        (ping.kind, ping.link.as_deref()),
        (tar::EntryType::Link, Some("usr/bin/a-link"))
    );
    assert_eq!((ping.mode, ping.uname.as_str()), (0o4755, "root"));
    let wh = get("etc/.wh.old.conf");
    assert_eq!(
        (wh.kind, wh.data.len(), wh.mtime),
        (tar::EntryType::Regular, 0, 1_000)
    );
    get("var/cache/.wh..wh..opq");
    let long = entries.iter().find(|e| e.path.ends_with("/file")).unwrap();
    assert!(long.path.len() > 100);
    assert_eq!((long.uid, long.gid), (3_000_000, 3_000_000));
    assert_eq!(long.uname, "a-very-long-user-name-over-32-chars");
    assert_eq!(get("usr/lib/long").link.as_deref().map(str::len), Some(151));
    assert!(
        !paths.iter().any(|p| p.contains("PaxHeaders")),
        "PAX headers leaked as entries"
    );
}

#[test]
fn gnu_tar_lists_it() {
    let (bytes, _) = finish(sample(&all()), plain());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("layer.tar");
    std::fs::write(&file, &bytes).unwrap();
    let out = Command::new("tar")
        .args(["--numeric-owner", "-tvf"])
        .arg(&file)
        .output()
        .expect("the tar CLI must be installed for this test");
    assert!(
        out.status.success(),
        "tar failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "tar warned: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(out.stdout).unwrap();
    let line = |needle: &str| {
        listing
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in listing:\n{listing}"))
            .to_string()
    };
    assert!(line(" usr/bin/a-link").starts_with("-rwsr-xr-x"));
    assert!(line(" usr/bin/ping").starts_with("hrwsr-xr-x"));
    assert!(line(" usr/bin/ping").contains("link to usr/bin/a-link"));
    assert!(line(" usr/bin/write").starts_with("-rwx--s--x"));
    assert!(line(" tmp/").starts_with("drwxrwxrwt"));
    assert!(line(" usr/bin/sh").starts_with("lrwxrwxrwx"));
    assert!(line(" usr/bin/sh").ends_with("-> bash"));
    assert!(line("/file").contains("3000000/3000000"));
    // Extended attributes survive into a PAX-aware reader.
    let xattrs = Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "-tvvf"])
        .arg(&file)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&xattrs.stdout);
    assert!(listing.contains("security.capability"), "{listing}");
}

#[test]
fn output_does_not_depend_on_add_order() {
    let (a, ia) = finish(
        sample(&all()),
        WriteOptions {
            compression: Compression::default(),
            threads: 2,
        },
    );
    let reversed: Vec<usize> = all().into_iter().rev().collect();
    let (b, ib) = finish(
        sample(&reversed),
        WriteOptions {
            compression: Compression::default(),
            threads: 2,
        },
    );
    assert_eq!(a, b);
    assert_eq!(ia, ib);
    assert_eq!(ia.digest, sha256_hex_of(&a));
    assert_eq!(ia.media_type, MediaType::ImageLayerGzip);
}

#[test]
fn gzip_layer_identical_with_one_or_two_threads() {
    let big: Vec<u8> = (0..3_500_000u32)
        .map(|i| (i % 251) as u8 ^ (i >> 13) as u8)
        .collect();
    let build = |threads| {
        let mut b = LayerBuilder::new();
        b.add_file("data/big", &Meta::new(0o644), big.len() as u64, &big[..])
            .unwrap();
        b.add_file("data/small", &Meta::new(0o644), 2, &b"hi"[..])
            .unwrap();
        finish(
            b,
            WriteOptions {
                compression: Compression::default(),
                threads,
            },
        )
    };
    let (one, i1) = build(1);
    let (two, i2) = build(2);
    assert_eq!(one, two);
    assert_eq!(i1, i2);
    // diff_id is the digest of the decompressed blob.
    let mut tar = Vec::new();
    crate::compress::Codec::Gzip
        .decoder(&one[..])
        .unwrap()
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(sha256_hex_of(&tar), i1.diff_id);
    let entries = read_tar(&tar);
    let got = entries.iter().find(|e| e.path == "data/big").unwrap();
    assert!(got.data == big, "content of data/big differs");
}

#[test]
fn zstd_layer_round_trips() {
    let (blob, info) = finish(
        sample(&all()),
        WriteOptions {
            compression: Compression::zstd(),
            threads: 2,
        },
    );
    assert_eq!(info.media_type, MediaType::ImageLayerZstd);
    let mut tar = Vec::new();
    crate::compress::Codec::Zstd
        .decoder(&blob[..])
        .unwrap()
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(sha256_hex_of(&tar), info.diff_id);
    assert_eq!(info.size, blob.len() as u64);
}

#[test]
fn hostile_and_reserved_paths_are_refused() {
    let mut b = LayerBuilder::new();
    let m = Meta::new(0o644);
    assert!(matches!(
        b.add_dir("/etc", &m),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        b.add_file("../x", &m, 0, &b""[..]),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        b.add_symlink("a/../../b", &m, "x"),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        b.add_hardlink("a", "/etc/shadow"),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        b.add_whiteout("a/\0b"),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        b.add_file("x/.wh.y", &m, 0, &b""[..]),
        Err(Error::InvalidPath { .. })
    ));
    assert!(b.add_symlink("l", &m, "").is_err());
    assert!(
        b.add_dir("d", &Meta::new(0o10755)).is_err(),
        "file-type bits in mode"
    );
    assert!(b
        .add_dir("d", &Meta::new(0o755).xattr("a=b", b"v".to_vec()))
        .is_err());
    assert!(b.is_empty());
}

#[test]
fn contradictions_are_refused_at_finish() {
    let m = Meta::new(0o644);
    let fails = |f: &dyn Fn(&mut LayerBuilder)| {
        let mut b = LayerBuilder::new();
        f(&mut b);
        b.finish(Vec::new(), plain()).is_err()
    };
    // Writing through a symlink would escape the layer's own structure.
    assert!(fails(&|b| {
        b.add_symlink("lib", &m, "/etc").unwrap();
        b.add_file("lib/passwd", &m, 0, &b""[..]).unwrap();
    }));
    assert!(fails(&|b| {
        b.add_file("f", &m, 0, &b""[..]).unwrap();
        b.add_dir("f/sub", &m).unwrap();
    }));
    assert!(fails(&|b| {
        b.add_file("etc/x", &m, 0, &b""[..]).unwrap();
        b.add_whiteout("etc/x").unwrap();
    }));
    assert!(fails(&|b| b.add_hardlink("a", "missing").unwrap()));
    assert!(fails(&|b| {
        b.add_hardlink("a", "b").unwrap();
        b.add_hardlink("b", "a").unwrap();
    }));
    let mut b = LayerBuilder::new();
    b.add_dir("d", &m).unwrap();
    assert!(matches!(
        b.add_dir("d/", &m),
        Err(Error::LayerConflict { .. })
    ));
}

#[test]
fn file_sizes_are_enforced() {
    let mut b = LayerBuilder::new();
    let m = Meta::new(0o644);
    assert!(matches!(
        b.add_file("short", &m, 10, &b"abc"[..]),
        Err(Error::SizeMismatch { .. })
    ));
    assert!(matches!(
        b.add_file("long", &m, 2, &b"abc"[..]),
        Err(Error::SizeMismatch { .. })
    ));
    // The builder stays usable and the failed files are not in the layer.
    b.add_file("ok", &m, 3, &b"abc"[..]).unwrap();
    let (tar, _) = finish(b, plain());
    let entries = read_tar(&tar);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].data, b"abc");
}

#[test]
fn files_from_disk_are_read_at_finish_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::write(&src, b"hello").unwrap();
    let mut b = LayerBuilder::with_spill_dir(dir.path());
    b.add_file_from_path("srv/hello", &Meta::new(0o600), &src)
        .unwrap();
    let (tar, _) = finish(b, plain());
    assert_eq!(read_tar(&tar).last().unwrap().data, b"hello");

    let mut b = LayerBuilder::new();
    b.add_file_from_path("srv/hello", &Meta::new(0o600), &src)
        .unwrap();
    std::fs::write(&src, b"hello, changed").unwrap();
    assert!(matches!(
        b.finish(Vec::new(), plain()),
        Err(Error::SizeMismatch { .. })
    ));
    assert!(LayerBuilder::new()
        .add_file_from_path("d", &Meta::new(0o644), dir.path())
        .is_err());
}

#[test]
fn empty_layer_is_a_valid_tar() {
    let (tar, info) = finish(LayerBuilder::new(), plain());
    assert_eq!(tar, vec![0u8; 1024]);
    assert_eq!(info.tar_size, 1024);
}

#[test]
fn device_nodes_and_fifos_carry_their_numbers() {
    let mut b = LayerBuilder::new();
    b.add_node("dev/tun0", &Meta::new(0o600), Node::Char { major: 10, minor: 200 }).unwrap();
    b.add_node("dev/loop9", &Meta::new(0o660), Node::Block { major: 7, minor: 9 }).unwrap();
    b.add_node("run/fifo", &Meta::new(0o644), Node::Fifo).unwrap();
    let err = b.add_node("dev/wh", &Meta::new(0), Node::Char { major: 0, minor: 0 }).unwrap_err();
    assert!(err.to_string().contains("whiteout"), "{err}");
    let (bytes, _) = finish(b, plain());
    let mut ar = tar::Archive::new(&bytes[..]);
    let mut seen = Vec::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let dev = (h.device_major().unwrap().unwrap_or(0), h.device_minor().unwrap().unwrap_or(0));
        seen.push((String::from_utf8(e.path_bytes().to_vec()).unwrap(), h.entry_type(), dev));
    }
    assert!(seen.contains(&("dev/tun0".into(), tar::EntryType::Char, (10, 200))), "{seen:?}");
    assert!(seen.contains(&("dev/loop9".into(), tar::EntryType::Block, (7, 9))), "{seen:?}");
    assert!(seen.contains(&("run/fifo".into(), tar::EntryType::Fifo, (0, 0))), "{seen:?}");
}
