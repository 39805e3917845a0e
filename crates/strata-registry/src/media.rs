//! Manifest media types: which documents a registry may answer with, how to tell them apart,
//! and picking a platform out of an index or manifest list.

use crate::platform::Platform;
use serde::Deserialize;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Layer types a container image can have; anything else is an artifact we cannot unpack.
const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// The `Accept` header of manifest requests. Schema 1 is listed last so that a registry
/// holding only schema 1 answers with it and we can refuse it by name, rather than a
/// misleading "manifest unknown".
pub fn manifest_accept() -> String {
    [
        OCI_INDEX,
        OCI_MANIFEST,
        DOCKER_LIST,
        DOCKER_MANIFEST,
        DOCKER_SCHEMA1_SIGNED,
        DOCKER_SCHEMA1,
    ]
    .join(", ")
}

/// What a manifest document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// OCI image manifest or Docker v2 schema 2 manifest.
    Image,
    /// OCI image index or Docker manifest list.
    Index,
    /// Docker v2 schema 1 (deprecated, refused).
    Schema1,
    /// Something else (an artifact, a newer spec); its media type is kept for the error.
    Other,
}

/// The few fields that tell manifest kinds apart.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
    config: Option<serde_json::Value>,
}

/// Classifies a manifest from its bytes and the response's Content-Type. The body's own
/// `mediaType` wins, since it is covered by the digest; the header is only a hint.
pub fn classify(bytes: &[u8], content_type: Option<&str>) -> (Kind, String) {
    let probe: Option<Probe> = serde_json::from_slice(bytes).ok();
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .filter(|c| !c.is_empty());
    let Some(probe) = probe else {
        return (Kind::Other, header.unwrap_or_else(|| "(not JSON)".into()));
    };
    if probe.schema_version == Some(1) {
        return (
            Kind::Schema1,
            header.unwrap_or_else(|| DOCKER_SCHEMA1.into()),
        );
    }
    let media_type = probe.media_type.or(header.filter(|h| is_manifest_type(h)));
    match media_type.as_deref() {
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => (Kind::Image, media_type.unwrap_or_default()),
        Some(OCI_INDEX | DOCKER_LIST) => (Kind::Index, media_type.unwrap_or_default()),
        Some(DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED) => {
            (Kind::Schema1, media_type.unwrap_or_default())
        }
        Some(other) => (Kind::Other, other.to_string()),
        // The OCI spec makes mediaType optional: the structure decides.
        None if probe.manifests.is_some() => (Kind::Index, OCI_INDEX.into()),
        None if probe.config.is_some() => (Kind::Image, OCI_MANIFEST.into()),
        None => (Kind::Other, "(none)".into()),
    }
}

fn is_manifest_type(t: &str) -> bool {
    [
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        DOCKER_LIST,
        DOCKER_SCHEMA1,
        DOCKER_SCHEMA1_SIGNED,
    ]
    .contains(&t)
}

pub fn is_image_config(t: &str) -> bool {
    t == OCI_CONFIG || t == DOCKER_CONFIG
}

pub fn is_layer(t: &str) -> bool {
    LAYER_TYPES.contains(&t)
}

/// One entry of an index or manifest list, with Docker's spelling of the platform fields.
#[derive(Debug, Clone, Deserialize)]
pub struct IndexEntry {
    #[serde(rename = "mediaType")]
    pub media_type: Option<String>,
    pub digest: String,
    pub size: u64,
    pub platform: Option<IndexPlatform>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IndexPlatform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<IndexEntry>,
}

/// Parses an index and returns the entry for `want`, or every platform it lists. Entries
/// that are not image manifests (attestations, nested artifacts) are never chosen.
pub fn select(bytes: &[u8], want: &Platform) -> Result<IndexEntry, SelectError> {
    let index: Index =
        serde_json::from_slice(bytes).map_err(|e| SelectError::Malformed(e.to_string()))?;
    let usable = |e: &&IndexEntry| {
        e.media_type
            .as_deref()
            .is_none_or(|t| matches!(t, OCI_MANIFEST | DOCKER_MANIFEST | OCI_INDEX | DOCKER_LIST))
    };
    let found = index.manifests.iter().filter(usable).find(|e| {
        e.platform
            .as_ref()
            .is_some_and(|p| want.matches(&p.os, &p.architecture, p.variant.as_deref()))
    });
    match found {
        Some(e) => Ok(e.clone()),
        None => {
            let available: Vec<String> = index
                .manifests
                .iter()
                .filter(usable)
                .filter_map(|e| e.platform.as_ref())
                .map(|p| Platform::new(&p.os, &p.architecture, p.variant.as_deref()).to_string())
                .collect();
            Err(SelectError::NoMatch(if available.is_empty() {
                "none".into()
            } else {
                available.join(", ")
            }))
        }
    }
}

#[derive(Debug)]
pub enum SelectError {
    Malformed(String),
    NoMatch(String),
}

/// A Docker schema 2 descriptor, fields in the order docker and containers/image write them,
/// so a conversion gives the very bytes (and digest) `skopeo copy --format v2s2` gives.
#[derive(serde::Serialize)]
struct Schema2Descriptor<'a> {
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    size: u64,
    digest: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    urls: Option<&'a serde_json::Value>,
}

#[derive(serde::Serialize)]
struct Schema2<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    config: Schema2Descriptor<'a>,
    layers: Vec<Schema2Descriptor<'a>>,
}

fn schema2_descriptor<'a>(d: &'a serde_json::Value, media_type: &'a str) -> Result<Schema2Descriptor<'a>, String> {
    Ok(Schema2Descriptor {
        media_type,
        size: d["size"].as_u64().ok_or("a descriptor has no size")?,
        digest: d["digest"].as_str().ok_or("a descriptor has no digest")?,
        urls: d.get("urls"),
    })
}

/// An OCI image manifest rewritten as Docker v2 schema 2, for registries that take no OCI
/// media types. The result is a new document with a new digest; annotations (and
/// `artifactType`/`subject`) have no place in schema 2 and are dropped. zstd and plain-tar
/// layers have no schema 2 type, so an image with them cannot be converted. A document
/// that already is schema 2 comes back unchanged.
pub fn to_docker_schema2(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    match v["mediaType"].as_str() {
        Some(DOCKER_MANIFEST) => return Ok(bytes.to_vec()),
        Some(OCI_MANIFEST) | None if v.get("config").is_some() => {}
        other => return Err(format!("only an image manifest converts to Docker schema 2, not {}", other.unwrap_or("this document"))),
    }
    let mut layers = Vec::new();
    for l in v["layers"].as_array().ok_or("the manifest has no layers list")? {
        let docker = match l["mediaType"].as_str() {
            Some("application/vnd.oci.image.layer.v1.tar+gzip" | "application/vnd.docker.image.rootfs.diff.tar.gzip") => "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Some("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip") => "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            other => return Err(format!("a layer of type {} has no Docker schema 2 type (only gzip layers convert; compose or build with gzip)", other.unwrap_or("(none)"))),
        };
        layers.push(schema2_descriptor(l, docker)?);
    }
    let doc = Schema2 { schema_version: 2, media_type: DOCKER_MANIFEST, config: schema2_descriptor(&v["config"], DOCKER_CONFIG)?, layers };
    serde_json::to_vec(&doc).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn oci_manifests_convert_to_docker_schema2() {
        let oci = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:aa","size":10},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:bb","size":20}],"annotations":{"org.opencontainers.image.base.name":"x"}}"#;
        let d: serde_json::Value = serde_json::from_slice(&super::to_docker_schema2(oci).unwrap()).unwrap();
        assert_eq!(d["mediaType"], super::DOCKER_MANIFEST);
        assert_eq!(d["config"]["mediaType"], super::DOCKER_CONFIG);
        assert_eq!(d["config"]["digest"], "sha256:aa");
        assert_eq!(d["layers"][0]["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip");
        assert_eq!(d["layers"][0]["size"], 20);
        assert!(d.get("annotations").is_none());
        assert_eq!(super::classify(&serde_json::to_vec(&d).unwrap(), None).0, super::Kind::Image);
        let zstd = String::from_utf8_lossy(oci).replace("tar+gzip", "tar+zstd");
        assert!(super::to_docker_schema2(zstd.as_bytes()).unwrap_err().contains("tar+zstd"));
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(super::to_docker_schema2(index).is_err());
    }

    use super::*;

    #[test]
    fn classifies_by_body_first() {
        let oci = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{}}"#;
        assert_eq!(
            classify(oci, Some(DOCKER_MANIFEST)),
            (Kind::Image, OCI_MANIFEST.into())
        );
        let bare = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        assert_eq!(classify(bare, None), (Kind::Image, OCI_MANIFEST.into()));
        assert_eq!(
            classify(bare, Some(DOCKER_MANIFEST)),
            (Kind::Image, DOCKER_MANIFEST.into())
        );
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(classify(idx, None), (Kind::Index, OCI_INDEX.into()));
        let list = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#;
        assert_eq!(classify(list, None).0, Kind::Index);
        let v1 = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        assert_eq!(classify(v1, Some(DOCKER_SCHEMA1_SIGNED)).0, Kind::Schema1);
        let art = br#"{"schemaVersion":2,"mediaType":"application/vnd.cncf.helm.chart.v1"}"#;
        assert_eq!(
            classify(art, None),
            (Kind::Other, "application/vnd.cncf.helm.chart.v1".into())
        );
        assert_eq!(
            classify(b"<html>", Some("text/html; charset=utf-8")),
            (Kind::Other, "text/html".into())
        );
    }

    #[test]
    fn selects_the_platform_and_lists_the_others() {
        let index = br#"{"schemaVersion":2,"manifests":[
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":1,
           "platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":2,
           "platform":{"os":"linux","architecture":"amd64"}},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:cc","size":3,
           "platform":{"os":"unknown","architecture":"unknown"}}]}"#;
        assert_eq!(
            select(index, &Platform::linux_amd64()).unwrap().digest,
            "sha256:bb"
        );
        assert_eq!(
            select(index, &Platform::parse("linux/arm64").unwrap())
                .unwrap()
                .size,
            1
        );
        match select(index, &Platform::parse("linux/s390x").unwrap()) {
            Err(SelectError::NoMatch(a)) => {
                assert_eq!(a, "linux/arm64, linux/amd64, unknown/unknown")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            select(b"{}", &Platform::linux_amd64()),
            Err(SelectError::Malformed(_))
        ));
    }
}
