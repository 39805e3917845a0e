//! Solve timing on the 63k-package scale repository.
//!
//! ```sh
//! zstd -d -o /tmp/scale-primary.xml /work/shared/corpus/out/scale/repodata/*primary.xml.zst
//! cargo run --release -p strata-solve --example scale -- /tmp/scale-primary.xml nginx python3-django
//! ```
//! Prints the load time, then for weak deps off and on: the first (cold) solve, the best of
//! ten more, and the package count. With `COMPARE_WITH=file` (one `name-evr.arch` a line,
//! e.g. from dnf), also the differences from the weak-off solution; `COMPARE_WEAK_WITH` likewise for weak deps on.

use std::collections::BTreeSet;
use std::io::BufReader;
use std::time::{Duration, Instant};

use strata_repo::{LoadedRepo, RepoIndex};
use strata_solve::{solve, PoolRepo, Request};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "/tmp/scale-primary.xml".to_owned());
    let mut packages: Vec<String> = args.collect();
    if packages.is_empty() {
        packages = vec!["nginx".into(), "python3-django".into()];
    }
    let t = Instant::now();
    let index = RepoIndex::from_primary_xml(BufReader::new(std::fs::File::open(&path)?))?;
    let repo = LoadedRepo::in_memory("scale", index, None);
    println!("loaded {} packages in {:?}", repo.index.len(), t.elapsed());
    let pool = [PoolRepo::new(&repo)];
    for weak in [false, true] {
        let req = Request {
            packages: packages.clone(),
            exclude: Vec::new(),
            install_weak_deps: weak,
            arch: "x86_64".into(),
        };
        let t = Instant::now();
        let first = solve(&pool, &req)?;
        let cold = t.elapsed();
        let mut best = Duration::MAX;
        for _ in 0..10 {
            let t = Instant::now();
            let again = solve(&pool, &req)?;
            best = best.min(t.elapsed());
            assert_eq!(again, first, "solve is not deterministic");
        }
        println!(
            "weak deps {weak}: {} packages, first solve {cold:?}, best of 10 {best:?}",
            first.len()
        );
        if let Ok(file) = std::env::var(if weak {
            "COMPARE_WEAK_WITH"
        } else {
            "COMPARE_WITH"
        }) {
            let expected: BTreeSet<String> = std::fs::read_to_string(file)?
                .lines()
                .map(str::to_owned)
                .collect();
            let got: BTreeSet<String> = first
                .iter()
                .map(|s| {
                    let p = repo.index.package(s.id);
                    let e = p.evr();
                    let epoch = e
                        .epoch
                        .filter(|&x| x != 0)
                        .map(|x| format!("{x}:"))
                        .unwrap_or_default();
                    let rel = e.release.map(|r| format!("-{r}")).unwrap_or_default();
                    format!("{}-{epoch}{}{rel}.{}", p.name(), e.version, p.arch())
                })
                .collect();
            for x in expected.difference(&got) {
                println!("  only in expected: {x}");
            }
            for x in got.difference(&expected) {
                println!("  only in strata:   {x}");
            }
        }
    }
    Ok(())
}
