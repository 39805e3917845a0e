//! Loads one repository through the metadata cache and prints how long it took:
//! `cargo run --release -p strata-repo --example load_repo -- REPO_DIR_OR_URL CACHE_DIR`.
use std::time::Instant;
use strata_repo::{LoadOptions, MetadataCache, RepoSource};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(cache)) = (args.next(), args.next()) else {
        eprintln!("usage: load_repo REPO_DIR_OR_URL CACHE_DIR");
        std::process::exit(2);
    };
    let src = RepoSource { id: "repo".into(), baseurls: vec![url], ..Default::default() };
    let t = Instant::now();
    let repo = MetadataCache::new(cache.into()).load(&src, &LoadOptions::default()).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1);
    });
    let loaded = t.elapsed();
    let t = Instant::now();
    let n = repo.index.whatprovides("libc.so.6()(64bit)").count() + repo.index.ids_by_name("nginx").count();
    println!(
        "{} packages, load {:.1} ms, lookups {:.3} ms ({n} hits), {}",
        repo.index.len(),
        loaded.as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e3,
        repo.repomd_checksum
    );
}
