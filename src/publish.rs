//! `strata publish`: images from the store published as an ftp/http mirror tree
//! (`strata-mirror`): xz docker-archives, CHECKSUM files, a yum repository of the image
//! RPMs, index.json and index.html.

use crate::compose::StoreArg;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use strata_mirror::checksum::Signer;
use strata_mirror::Options;

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// NAME[:TAG] of each image to publish.
    #[arg(required = true)]
    images: Vec<String>,
    /// The mirror folder (created when absent).
    #[arg(long, value_name = "DIR")]
    mirror: PathBuf,
    /// Links in index.html and index.json absolute under this URL [default: relative].
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// Clear-sign the CHECKSUM files with this armored OpenPGP secret key
    /// (`gpg --armor --export-secret-keys`); a passphrase comes from
    /// $STRATA_SIGN_KEY_PASSPHRASE.
    #[arg(long, value_name = "FILE")]
    sign_key: Option<PathBuf>,
    /// xz preset of the archives, 0 (fastest) to 9 (smallest).
    #[arg(long, value_name = "N", default_value_t = strata_mirror::archive::DEFAULT_XZ_PRESET, value_parser = clap::value_parser!(u32).range(0..=9))]
    xz_level: u32,
    /// Print what was written and skipped as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArg,
}

pub fn run(args: PublishArgs) -> anyhow::Result<ExitCode> {
    // The key is read (and tried) before any image is: a bad key fails in a second.
    let signer = args.sign_key.as_deref().map(Signer::load).transpose()?;
    let store = args.store.open()?;
    let opts = Options { base_url: args.base_url, signer, xz_preset: Some(args.xz_level) };
    let json = args.json;
    let mut progress = |line: &str| {
        if !json {
            eprintln!("{line}");
        }
    };
    let report = strata_mirror::publish(&store, &args.images, &args.mirror, &opts, &mut progress)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for img in &report.images {
            println!("{}  {}  {}  {}", img.archive, img.manifest, img.rpm, img.status);
        }
    }
    Ok(ExitCode::SUCCESS)
}
