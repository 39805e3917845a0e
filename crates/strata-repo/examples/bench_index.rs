//! Measures the stages of a cold load on a primary.xml and the warm open of its index:
//! `cargo run --release -p strata-repo --example bench_index -- PRIMARY.xml[.zst|.gz] TMPDIR`.
//! Prints decompression + parse + index build time, parse throughput, index size, warm
//! open time and a few lookups, so the numbers in docs/decisions.md can be re-measured.
use std::io::{BufReader, Read};
use std::time::Instant;
use strata_repo::RepoIndex;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(tmp)) = (args.next(), args.next()) else {
        eprintln!("usage: bench_index PRIMARY.xml[.zst|.gz] TMPDIR");
        std::process::exit(2);
    };
    let file = std::fs::File::open(&input).unwrap_or_else(|e| fail(&format!("{input}: {e}")));
    let open_size = std::cell::Cell::new(0u64);
    let t = Instant::now();
    let reader: Box<dyn Read> = if input.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::new(file).unwrap_or_else(|e| fail(&e.to_string())))
    } else if input.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let counting = Counting { inner: reader, n: &open_size };
    let index = RepoIndex::from_primary_xml(BufReader::with_capacity(256 * 1024, counting))
        .unwrap_or_else(|e| fail(&e.to_string()));
    let parsed = t.elapsed().as_secs_f64();
    let mb = open_size.get() as f64 / 1e6;
    println!(
        "{} packages: decompress+parse+build {:.0} ms ({mb:.1} MB open, {:.0} MB/s)",
        index.len(),
        parsed * 1e3,
        mb / parsed
    );
    let path = std::path::Path::new(&tmp).join("bench-primary.idx");
    let t = Instant::now();
    index.write(&path).unwrap_or_else(|e| fail(&e.to_string()));
    println!("write {:.0} ms, {:.1} MB", t.elapsed().as_secs_f64() * 1e3, std::fs::metadata(&path).unwrap().len() as f64 / 1e6);
    drop(index);
    let t = Instant::now();
    let warm = RepoIndex::open(&path).unwrap_or_else(|e| fail(&e.to_string()));
    let opened = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let hits = warm.whatprovides("libc.so.6()(64bit)").count()
        + warm.ids_by_name("nginx").count()
        + warm.file_owners("/usr/bin/perl").count();
    println!("warm open {:.3} ms, 3 lookups {:.3} ms ({hits} hits)", opened * 1e3, t.elapsed().as_secs_f64() * 1e3);
    let t = Instant::now();
    let names = warm.names().count();
    println!("{names} names listed in {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    let _ = std::fs::remove_file(&path);
}

struct Counting<'a, R> {
    inner: R,
    n: &'a std::cell::Cell<u64>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.set(self.n.get() + k as u64);
        Ok(k)
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}
