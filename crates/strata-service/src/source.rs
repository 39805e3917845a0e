//! What a submitted source builds, read at submit time from the commit: a spec's image
//! names (all, or the ones asked for) or a Dockerfile's one image — so the policy can
//! decide per image, and a folder with nothing to build is refused before it is queued.

use crate::AppState;
use std::path::Path;
use strata_client::Source;

/// The most a strata.json read at submit may be.
const MAX_SPEC: u64 = 16 << 20;

pub struct Names {
    pub dockerfile: bool,
    pub images: Vec<String>,
}

fn regular(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file())
}

pub async fn images_of(st: &AppState, source: &Source, commit: &str, requested: &[String]) -> Result<Names, String> {
    let tmp = tempfile::Builder::new().prefix("submit-").tempdir_in(&st.config.data_dir).map_err(|e| format!("{}: {e}", st.config.data_dir.display()))?;
    crate::git::export(&source.url, commit, source.path.as_deref(), &st.config.data_dir.join("git"), tmp.path()).await?;
    let dir = source.path.as_deref().map_or(tmp.path().to_path_buf(), |p| tmp.path().join(p));
    let place = || source.path.as_deref().map_or("the repository's root".to_string(), |p| format!("folder {p}"));
    if regular(&dir.join("strata.json")) {
        let len = std::fs::metadata(dir.join("strata.json")).map(|m| m.len()).unwrap_or(0);
        if len > MAX_SPEC {
            return Err(format!("strata.json at {commit} is {len} bytes; at most {MAX_SPEC}"));
        }
        let text = std::fs::read(dir.join("strata.json")).map_err(|e| format!("strata.json: {e}"))?;
        let doc: serde_json::Value = serde_json::from_slice(&text).map_err(|e| format!("strata.json at {commit}: {e}"))?;
        let all: Vec<String> = doc.get("images").and_then(|i| i.as_object()).map(|o| o.keys().cloned().collect()).unwrap_or_default();
        if all.is_empty() {
            return Err(format!("strata.json at {commit} has no images"));
        }
        if let Some(missing) = requested.iter().find(|r| !all.contains(r)) {
            return Err(format!("image {missing} is not in strata.json at {commit} (it has {})", all.join(", ")));
        }
        let images = if requested.is_empty() { all } else { requested.to_vec() };
        if let Some(bad) = images.iter().find(|n| !crate::valid_image_name(n)) {
            return Err(format!("strata.json image {bad:?} is not a registry name (lowercase letters, digits, ._- in /-separated parts)"));
        }
        return Ok(Names { dockerfile: false, images });
    }
    if regular(&dir.join("Dockerfile")) {
        return match requested {
            [one] => Ok(Names { dockerfile: true, images: vec![one.clone()] }),
            _ => Err(format!("{} holds a Dockerfile: name its image with exactly one --image NAME", place())),
        };
    }
    Err(format!("{} at {commit} has neither strata.json nor a Dockerfile", place()))
}
