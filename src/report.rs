//! Printing `compose --check` (what would change, per image) and `compose --report`
//! (layers, bytes stored, bytes pulled, bytes an update costs a client that has the
//! previous image); strata-pipeline computes both.

use crate::compose::short;
use crate::resolve::human_bytes;
use strata_pipeline::{CheckReport, Report};

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
