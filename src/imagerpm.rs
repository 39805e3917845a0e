//! `strata rpm`: images from the store wrapped as RPMs (`strata-imagerpm`).

use crate::compose::StoreArg;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use strata_imagerpm::{wrap_image, NameStyle, WrapOptions};

#[derive(Args, Debug)]
pub struct RpmArgs {
    /// NAME[:TAG] of each image to wrap.
    #[arg(required = true)]
    images: Vec<String>,
    /// Folder the RPMs are written to.
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    output: PathBuf,
    /// Package name [default: by --name-style]; only with one image.
    #[arg(long)]
    name: Option<String>,
    /// How packages are named: container-image-NAME, or docker-image-NAME as the seed names
    /// them. Both carry the same Provides.
    #[arg(long, value_enum, value_name = "STYLE", default_value = "container-image")]
    name_style: NameStyleArg,
    /// For an image built FROM a base the store no longer holds: write the RPM without
    /// `Requires: container-image-id(BASE)` instead of failing.
    #[arg(long)]
    no_base_requires: bool,
    /// Package version [default: the image's org.opencontainers.image.version label, else a
    /// numeric tag, else 0].
    #[arg(long)]
    version: Option<String>,
    /// Package release [default: the image's creation time and id, YYYYMMDDhhmmss.ID].
    #[arg(long)]
    release: Option<String>,
    /// License tag [default: the org.opencontainers.image.licenses label, else Unspecified].
    #[arg(long)]
    license: Option<String>,
    /// Print what was written as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum NameStyleArg {
    ContainerImage,
    DockerImage,
}

pub fn run(args: RpmArgs) -> anyhow::Result<ExitCode> {
    if args.images.len() > 1 && (args.name.is_some() || args.version.is_some() || args.release.is_some()) {
        anyhow::bail!("--name, --version and --release name one package; give one image");
    }
    // Before any work: -o must be a folder (or absent), never a file or device written over.
    strata_output::directory(&args.output)?;
    let store = args.store.open()?;
    let name_style = match args.name_style {
        NameStyleArg::ContainerImage => NameStyle::ContainerImage,
        NameStyleArg::DockerImage => NameStyle::DockerImage,
    };
    let opts = WrapOptions { name: args.name, name_style, no_base_requires: args.no_base_requires, version: args.version, release: args.release, license: args.license };
    let mut written = Vec::new();
    for image in &args.images {
        let rpm = wrap_image(&store, image, &opts, &args.output)?;
        if !args.json {
            println!("{}  {}  {}", rpm.path.display(), rpm.image, rpm.image_id);
        }
        written.push(rpm);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&written)?);
    }
    Ok(ExitCode::SUCCESS)
}
