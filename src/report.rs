//! Printing `compose --check` (what would change, per image) and `compose --report`
//! (layers, bytes stored, bytes pulled, bytes an update costs a client that has the
//! previous image, and the modelled pull times next to one layer and a layer per package);
//! strata-pipeline computes both.

use crate::compose::short;
use crate::resolve::human_bytes;
use strata_pipeline::{CheckReport, PullModel, Report};

pub fn print_check(checked: &CheckReport, json: bool) -> anyhow::Result<()> {
    let mut out = serde_json::Map::new();
    for image in &checked.images {
        if !json {
            if image.up_to_date {
                println!("{}: up to date", image.name);
            } else {
                println!("{}: would be rebuilt", image.name);
                for r in &image.changes {
                    println!("  {r}");
                }
            }
        }
        out.insert(image.name.clone(), serde_json::json!({"up_to_date": image.up_to_date, "changes": image.changes}));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"images": out}))?);
    }
    Ok(())
}

/// The cost model's figures for one image: its plan, one layer, a layer per package.
fn print_model(m: &PullModel) {
    let s = |ms: u64| format!("{:.2} s", ms as f64 / 1000.0);
    println!(
        "  modelled pulls at {} Mbit/s and {} ms a layer (cold / next update): {} layers {} / {}; single layer {} / {}; a layer per package ({}) {} / {}",
        m.bandwidth_bits as f64 / 1e6,
        m.per_layer_us as f64 / 1000.0,
        m.layers,
        s(m.cold_ms),
        s(m.update_ms),
        s(m.single_cold_ms),
        s(m.single_update_ms),
        m.package_layers,
        s(m.package_cold_ms),
        s(m.package_update_ms)
    );
}

pub fn print(report: &Report) {
    for i in &report.images {
        println!("\n{}:", i.name);
        println!("  {:<28} {:>8} {:>10} {:>7}  DIGEST", "LAYER", "PACKAGES", "SIZE", "IMAGES");
        for l in &i.layers {
            println!("  {:<28} {:>8} {:>10} {:>7}  {}", l.id, l.packages, human_bytes(l.size), report.users(&l.digest), short(&l.digest));
        }
        match i.update_bytes {
            Some(b) => println!("  a client with the previous build pulls {}", human_bytes(b)),
            None => println!("  no previous build"),
        }
        if let Some(m) = &i.modelled {
            print_model(m);
        }
    }
    let (count, unique) = report.unique_layers();
    println!(
        "\n{} images: {count} distinct layers, {} stored; a client pulling every image downloads {}; without sharing {}",
        report.images.len(),
        human_bytes(unique),
        human_bytes(unique + report.metadata_bytes()),
        human_bytes(report.sum_of_image_sizes())
    );
}
