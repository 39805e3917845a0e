//! The spec's layering and compression settings (`"layers": {...}`, `"compression"`).

use serde::{Deserialize, Serialize};

/// How the images of a spec are split into layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Layering {
    #[serde(default)]
    pub mode: LayerMode,
    /// Layers per image including its top layer; strata-layers' default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_image: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerMode {
    /// Packages of a source RPM used by the same images share a layer.
    #[default]
    Auto,
    /// One layer per package.
    Package,
    /// One layer per image.
    Single,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    Gzip,
    Zstd,
}

impl Layering {
    pub(crate) fn validate(&self) -> Result<(), String> {
        match self.max_per_image {
            Some(0) => Err("`max_per_image` must be at least 1 (the image's own top layer)".into()),
            Some(n) if n > 127 => Err(format!("`max_per_image` {n} is more than docker and podman accept (127)")),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Spec;
    use std::path::Path;

    #[test]
    fn layers_and_compression_keys() {
        let s = Spec::parse(Path::new("s.json"), r#"{"images": {"a": {"packages": ["bash"]}}, "layers": {"mode": "package", "max_per_image": 20}, "compression": "zstd"}"#).unwrap();
        assert_eq!(s.layers.mode, super::LayerMode::Package);
        assert_eq!(s.layers.max_per_image, Some(20));
        assert_eq!(s.compression, Some(super::Compression::Zstd));
        let d = Spec::parse(Path::new("s.json"), r#"{"images": {"a": {"packages": ["bash"]}}}"#).unwrap();
        assert_eq!(d.layers, super::Layering::default());
        for (bad, says) in [
            (r#""layers": {"max_per_image": 0}"#, "at least 1"),
            (r#""layers": {"max_per_image": 200}"#, "127"),
            (r#""layers": {"mode": "tiny"}"#, "unknown variant `tiny`"),
            (r#""layers": {"budget": 3}"#, "unknown field `budget`"),
            (r#""compression": "lz4""#, "unknown variant `lz4`"),
        ] {
            let text = format!(r#"{{"images": {{"a": {{"packages": ["bash"]}}}}, {bad}}}"#);
            let e = Spec::parse(Path::new("s.json"), &text).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
