//! The spec's layering and compression settings (`"layers": {...}`, `"compression"`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How the images of a spec are split into layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Layering {
    #[serde(default)]
    pub mode: LayerMode,
    /// Layers per image including its top layer; strata-layers' default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_image: Option<u32>,
    /// What pulls look like, by name; `bandwidth` and `per_layer` override its figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<PullProfile>,
    /// Effective pull throughput: `"100Mbit"`, `"1Gbit/s"`, `"12.5MB/s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
    /// The fixed cost of one more layer in a pull: `"25ms"`, `"0.1s"`; `"0ms"` plans for bytes
    /// only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_layer: Option<PerLayer>,
}

/// Named pull conditions (figures in strata-layers' `Cost`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullProfile {
    /// A registry close by (the default): throughput bound by the engine's extraction.
    Lan,
    /// A distant registry: slower link, dearer round trips per layer.
    Wan,
}

/// Bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bandwidth(pub u64);

/// Microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerLayer(pub u64);

const BANDWIDTH_HINT: &str = r#"write it with a unit: "100Mbit", "1Gbit/s" (bits) or "12.5MB/s" (bytes); prefixes k, M, G, T are powers of 1000"#;
const PER_LAYER_HINT: &str = r#"write it with a unit: "25ms", "0.1s" or "500us""#;

/// `"1.5"` → 1.5, refusing what is not a plain non-negative decimal number.
fn number(text: &str) -> Option<f64> {
    let ok = !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.') && text.chars().filter(|&c| c == '.').count() <= 1 && text != ".";
    ok.then(|| text.parse().ok()).flatten()
}

impl std::str::FromStr for Bandwidth {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let (body, bits_per_unit) = if let Some(b) = t.strip_suffix("bit/s").or_else(|| t.strip_suffix("bit")).or_else(|| t.strip_suffix("bps")) {
            (b, 1.0)
        } else if let Some(b) = t.strip_suffix("B/s") {
            (b, 8.0)
        } else {
            return Err(format!("bandwidth {s:?} has no unit; {BANDWIDTH_HINT}"));
        };
        let body = body.trim_end();
        let (num, scale) = match body.char_indices().last() {
            Some((i, 'k' | 'K')) => (&body[..i], 1e3),
            Some((i, 'M')) => (&body[..i], 1e6),
            Some((i, 'G')) => (&body[..i], 1e9),
            Some((i, 'T')) => (&body[..i], 1e12),
            _ => (body, 1.0),
        };
        let value = number(num.trim_end()).ok_or_else(|| format!("bandwidth {s:?} is not a number with a unit; {BANDWIDTH_HINT}"))? * scale * bits_per_unit;
        if value < 1000.0 {
            return Err(format!("bandwidth {s:?} is less than 1 kbit/s; {BANDWIDTH_HINT}"));
        }
        if value > 1e13 {
            return Err(format!("bandwidth {s:?} is more than 10 Tbit/s; {BANDWIDTH_HINT}"));
        }
        Ok(Bandwidth(value.round() as u64))
    }
}

impl std::fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            b if b % 1_000_000_000 == 0 => write!(f, "{}Gbit", b / 1_000_000_000),
            b if b % 1_000_000 == 0 => write!(f, "{}Mbit", b / 1_000_000),
            b if b % 1_000 == 0 => write!(f, "{}kbit", b / 1_000),
            b => write!(f, "{b}bit"),
        }
    }
}

impl std::str::FromStr for PerLayer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let (num, us) = if let Some(n) = t.strip_suffix("ms") {
            (n, 1e3)
        } else if let Some(n) = t.strip_suffix("us").or_else(|| t.strip_suffix("µs")) {
            (n, 1.0)
        } else if let Some(n) = t.strip_suffix('s') {
            (n, 1e6)
        } else {
            return Err(format!("per_layer {s:?} has no unit; {PER_LAYER_HINT}"));
        };
        let value = number(num.trim_end()).ok_or_else(|| format!("per_layer {s:?} is not a number with a unit; {PER_LAYER_HINT}"))? * us;
        if value > 60e6 {
            return Err(format!("per_layer {s:?} is more than a minute; {PER_LAYER_HINT}"));
        }
        Ok(PerLayer(value.round() as u64))
    }
}

impl std::fmt::Display for PerLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            us if us % 1000 == 0 => write!(f, "{}ms", us / 1000),
            us => write!(f, "{us}us"),
        }
    }
}

/// Both travel as strings with units, as people write them.
macro_rules! text_serde {
    ($t:ty, $what:literal) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$t, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}
text_serde!(Bandwidth, "a bandwidth such as \"100Mbit\"");
text_serde!(PerLayer, "a duration such as \"25ms\"");

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
        let c = Spec::parse(Path::new("s.json"), r#"{"images": {"a": {"packages": ["bash"]}}, "layers": {"profile": "wan", "bandwidth": "12.5MB/s", "per_layer": "0.04s"}}"#).unwrap();
        assert_eq!(c.layers.profile, Some(super::PullProfile::Wan));
        assert_eq!(c.layers.bandwidth, Some(super::Bandwidth(100_000_000)));
        assert_eq!(c.layers.per_layer, Some(super::PerLayer(40_000)));
        for (text, bits) in [("100Mbit", 100_000_000), ("1Gbit/s", 1_000_000_000), ("1.5 Gbit", 1_500_000_000), ("500kbit", 500_000), ("100Mbps", 100_000_000), ("2KB/s", 16_000)] {
            assert_eq!(text.parse::<super::Bandwidth>(), Ok(super::Bandwidth(bits)), "{text}");
        }
        for (text, us) in [("25ms", 25_000), ("0ms", 0), ("0.1s", 100_000), ("500us", 500), ("1s", 1_000_000)] {
            assert_eq!(text.parse::<super::PerLayer>(), Ok(super::PerLayer(us)), "{text}");
        }
        assert_eq!(serde_json::to_string(&c.layers).unwrap(), r#"{"mode":"auto","profile":"wan","bandwidth":"100Mbit","per_layer":"40ms"}"#);
        let d = Spec::parse(Path::new("s.json"), r#"{"images": {"a": {"packages": ["bash"]}}}"#).unwrap();
        assert_eq!(d.layers, super::Layering::default());
        for (bad, says) in [
            (r#""layers": {"max_per_image": 0}"#, "at least 1"),
            (r#""layers": {"max_per_image": 200}"#, "127"),
            (r#""layers": {"mode": "tiny"}"#, "unknown variant `tiny`"),
            (r#""layers": {"budget": 3}"#, "unknown field `budget`"),
            (r#""compression": "lz4""#, "unknown variant `lz4`"),
            (r#""layers": {"bandwidth": "100"}"#, "has no unit"),
            (r#""layers": {"bandwidth": 100}"#, "a bandwidth such as \"100Mbit\""),
            (r#""layers": {"bandwidth": "fastMbit"}"#, "not a number with a unit"),
            (r#""layers": {"bandwidth": "-5Mbit"}"#, "not a number with a unit"),
            (r#""layers": {"bandwidth": "0Mbit"}"#, "less than 1 kbit/s"),
            (r#""layers": {"bandwidth": "99999Tbit"}"#, "more than 10 Tbit/s"),
            (r#""layers": {"per_layer": "25"}"#, "has no unit"),
            (r#""layers": {"per_layer": "1e3ms"}"#, "not a number"),
            (r#""layers": {"per_layer": "2h"}"#, "has no unit"),
            (r#""layers": {"per_layer": "61s"}"#, "more than a minute"),
            (r#""layers": {"profile": "moon"}"#, "unknown variant `moon`"),
        ] {
            let text = format!(r#"{{"images": {{"a": {{"packages": ["bash"]}}}}, {bad}}}"#);
            let e = Spec::parse(Path::new("s.json"), &text).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
