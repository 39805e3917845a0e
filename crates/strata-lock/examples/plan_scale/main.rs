//! The layer planner at scale (issue 18): times `strata_layers::plan` on a resolved fleet
//! and prints what each plan comes to. bench/plan-scale.sh runs it on the 100 images of
//! bench/scale-fleet.txt resolved from the scale repository.
//!
//! ```sh
//! plan_scale --spec bench/scale-fleet.txt SCALE_REPO_DIR > fleet.json  # the fleet's spec
//! strata resolve fleet.json                                            # writes fleet.lock
//! plan_scale fleet.lock
//! ```
//! For the default settings (the cost model, lan profile), `Cost::OFF` (bytes only, the plan
//! before the model) and `Cost::WAN`, each planned afresh and again with its own plan as the
//! previous one (a re-plan with nothing changed): the median of 5 timings, layers, the most
//! layers of any image against the cap, fleet bytes (installed, a package in several layers
//! counted each time) over the floor (each distinct build once), images given a private
//! layer. Exits 1 when a re-plan changes the plan or a plan fails its check.

mod scale;

use scale::Figures;
use std::time::{Duration, Instant};
use strata_layers::{plan, Cost, Fleet, Mode, Plan, Settings, DEFAULT_MAX_PER_IMAGE};
use strata_lock::Lockfile;

const RUNS: usize = 5;

/// The median wall time of [`RUNS`] calls of `f`, and its last result.
fn timed<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        last = Some(f());
        times.push(t.elapsed());
    }
    times.sort();
    (times[RUNS / 2], last.expect("RUNS > 0"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = match args.as_slice() {
        [flag, fleet, repo] if flag == "--spec" => {
            println!("{}", scale::spec_json(&scale::names(&std::fs::read_to_string(fleet)?), &std::path::absolute(repo)?));
            return Ok(());
        }
        [lock] => lock,
        _ => return Err("usage: plan_scale LOCK | plan_scale --spec FLEET_FILE SCALE_REPO_DIR".into()),
    };
    let t = Instant::now();
    let lock = Lockfile::read(path.as_ref())?;
    let read = t.elapsed();
    let (fleet_time, fleet): (Duration, Fleet) = timed(|| lock.fleet());
    let members: usize = fleet.values().map(Vec::len).sum();
    println!("# {path}: {} images, {members} packages (read in {read:.2?}, fleet() {fleet_time:.2?})", fleet.len());
    println!(
        "{:<8} | {:>8} | {:>8} | {:>6} | {:>9} | {:>9} | {:>10} | {:>10} | {:>5} | {:>7}",
        "cost", "plan", "replan", "layers", "max/img", "private", "fleet MB", "floor MB", "ratio", "replan="
    );
    let mut failed = false;
    let mut uncapped = Vec::new();
    for (name, cost) in [("lan", Cost::LAN), ("off", Cost::OFF), ("wan", Cost::WAN)] {
        // The same without a budget: what the cap has to fold, and what folding it costs.
        let (time, p) = timed(|| plan(&fleet, &Settings::new(Mode::Auto, u32::MAX, cost), None));
        let f = Figures::of(&fleet, &p);
        uncapped.push(format!("{name} {} layers, up to {} an image, {:.0}ms", f.layers, f.max_per_image, time.as_secs_f64() * 1e3));
        let settings = Settings::new(Mode::Auto, DEFAULT_MAX_PER_IMAGE, cost);
        let (fresh, p): (Duration, Plan) = timed(|| plan(&fleet, &settings, None));
        let (again, q): (Duration, Plan) = timed(|| plan(&fleet, &settings, Some(&p)));
        let f = Figures::of(&fleet, &p);
        if cost == Cost::default() && lock.layers.as_ref() != Some(&p) {
            println!("# note: the lock's recorded plan is not this default plan (another strata, or a spec with `layers`)");
        }
        if let Err(e) = p.check(&fleet) {
            println!("{name}: the plan fails its check: {e}");
            failed = true;
        }
        failed |= q != p;
        println!(
            "{:<8} | {:>6.0}ms | {:>6.0}ms | {:>6} | {:>4} ≤ {:<3} | {:>9} | {:>10.1} | {:>10.1} | {:>5.3} | {:>7}",
            if cost == Cost::default() { "lan*" } else { name },
            fresh.as_secs_f64() * 1e3,
            again.as_secs_f64() * 1e3,
            f.layers,
            f.max_per_image,
            settings.max_per_image,
            f.private_images,
            f.fleet_bytes as f64 / 1e6,
            f.floor_bytes as f64 / 1e6,
            f.ratio(),
            if q == p { "same" } else { "CHANGED" }
        );
    }
    println!("# * the default; plan/replan: median of {RUNS}; max/img counts the top layer; ratio = fleet / floor");
    println!("# without the cap (max_per_image u32::MAX): {}", uncapped.join("; "));
    if failed {
        return Err("a plan failed its check or changed on a re-plan".into());
    }
    Ok(())
}
