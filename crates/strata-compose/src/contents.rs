//! What a stored image holds, read back from the image itself: the package list of the
//! rpmdb that the topmost layer carrying one holds. Works for any image with an rpmdb —
//! composed ones and Dockerfile builds on top of them (a RUN that installs RPMs leaves a
//! newer rpmdb in a higher layer) — without needing the compose record.

use crate::Error;
use std::io::Read;
use strata_oci::compress::codec_of_media_type;
use strata_oci::store::{ResolvedImage, Store};
use strata_rpmdb::Nevra;

/// The installed packages, sorted by NEVRA; empty for an image without an rpmdb.
pub fn installed_packages(store: &Store, img: &ResolvedImage) -> Result<Vec<Nevra>, Error> {
    for layer in img.manifest.layers().iter().rev() {
        let codec = codec_of_media_type(layer.media_type())
            .ok_or_else(|| Error::Layer(format!("layer {}: media type {} is not a layer", layer.digest(), layer.media_type())))?;
        let blob = store.open_blob(layer.digest())?;
        let mut tar = tar::Archive::new(codec.decoder(std::io::BufReader::new(blob))?);
        for entry in tar.entries()? {
            let mut entry = entry?;
            let path = entry.path()?.to_string_lossy().into_owned();
            let is_db = path.rsplit('/').next() == Some(strata_rpmdb::DB_FILE);
            if !is_db || entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            // SQLite reads a file, not a stream.
            let dir = tempfile::tempdir()?;
            let db = dir.path().join(strata_rpmdb::DB_FILE);
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            std::fs::write(&db, bytes)?;
            let mut packages: Vec<Nevra> = strata_rpmdb::read_installed(&db)?.into_iter().map(|r| r.nevra).collect();
            packages.sort_by_cached_key(|n| n.to_string());
            return Ok(packages);
        }
    }
    Ok(Vec::new())
}
