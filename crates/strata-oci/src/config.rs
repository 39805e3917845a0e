//! Image configs and manifests, and the canonical JSON they are stored as.
//!
//! `oci-spec` keeps labels and annotations in `HashMap`s, whose serialisation order changes
//! from run to run, and serde_json's key order depends on a crate-wide feature
//! (`preserve_order`) that any crate in the tree can switch on. So every JSON document this
//! crate hashes goes through [`canonical_json`], which sorts object keys itself and writes
//! compact JSON: the digest depends on the content only.

use crate::digest::sha256_hex_of;
use crate::{Error, Result};
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, Digest, History, HistoryBuilder, ImageConfiguration,
    ImageConfigurationBuilder, ImageManifest, ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Serialises `value` as compact JSON with every object's keys sorted (bytewise).
pub fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let v = serde_json::to_value(value).map_err(|e| Error::json("serialising JSON", e))?;
    let mut out = Vec::new();
    write_canonical(&v, &mut out)?;
    Ok(out)
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) -> Result<()> {
    let json_err = |e| Error::json("serialising JSON", e);
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).map_err(json_err)?;
                out.push(b':');
                if let Some(child) = map.get(*k) {
                    write_canonical(child, out)?;
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).map_err(json_err)?,
    }
    Ok(())
}

/// The runtime settings of an image (the config's `config` object).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSettings {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// `KEY=VALUE` strings, in order; see [`ImageSettings::set_env`].
    pub env: Vec<String>,
    /// `PORT[/PROTO]`; normalised to `PORT/tcp` when built.
    pub exposed_ports: BTreeSet<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub volumes: BTreeSet<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
}

impl ImageSettings {
    /// Sets `key` in the environment, replacing an earlier value in place (as `ENV` does).
    pub fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        let prefix = format!("{key}=");
        match self
            .env
            .iter_mut()
            .find(|e| e.starts_with(&prefix) || *e == key)
        {
            Some(existing) => *existing = entry,
            None => self.env.push(entry),
        }
    }
}

/// One history entry; `empty_layer` marks steps that produced no layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Seconds since the epoch; `None` takes the config's `created` (tools such as umoci
    /// 0.4 crash on history entries without a time).
    pub created: Option<u64>,
    pub created_by: Option<String>,
    pub comment: Option<String>,
    pub empty_layer: bool,
}

/// Everything that goes into an image config besides the settings.
#[derive(Debug, Clone)]
pub struct ConfigInput {
    /// GOARCH-style architecture (`amd64`, `arm64`, ...).
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    /// Creation time, seconds since the epoch (use SOURCE_DATE_EPOCH for reproducibility).
    pub created: Option<u64>,
    pub history: Vec<HistoryEntry>,
    /// Layer diff_ids, bottom layer first.
    pub diff_ids: Vec<Digest>,
}

/// Builds an image config. Refuses malformed port specs and a history whose non-empty
/// entries do not match the layers one to one (tools pair them up by position).
pub fn build_config(settings: &ImageSettings, input: &ConfigInput) -> Result<ImageConfiguration> {
    let layer_steps = input.history.iter().filter(|h| !h.empty_layer).count();
    if !input.history.is_empty() && layer_steps != input.diff_ids.len() {
        return Err(Error::InvalidImage(format!(
            "{layer_steps} history entries with layers but {} layers",
            input.diff_ids.len()
        )));
    }
    let mut c = ConfigBuilder::default();
    if let Some(e) = &settings.entrypoint {
        c = c.entrypoint(e.clone());
    }
    if let Some(cmd) = &settings.cmd {
        c = c.cmd(cmd.clone());
    }
    if !settings.env.is_empty() {
        c = c.env(settings.env.clone());
    }
    if !settings.exposed_ports.is_empty() {
        let ports = settings
            .exposed_ports
            .iter()
            .map(|p| normalize_port(p))
            .collect::<Result<BTreeSet<_>>>()?;
        c = c.exposed_ports(ports.into_iter().collect::<Vec<_>>());
    }
    if let Some(u) = &settings.user {
        c = c.user(u.clone());
    }
    if let Some(w) = &settings.workdir {
        c = c.working_dir(w.clone());
    }
    if !settings.volumes.is_empty() {
        c = c.volumes(settings.volumes.iter().cloned().collect::<Vec<_>>());
    }
    if !settings.labels.is_empty() {
        c = c.labels(
            settings
                .labels
                .clone()
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
    }
    if let Some(s) = &settings.stop_signal {
        c = c.stop_signal(s.clone());
    }
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(
            input
                .diff_ids
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>(),
        )
        .build()?;
    let history = input
        .history
        .iter()
        .map(|h| build_history(h, input.created))
        .collect::<Result<Vec<History>>>()?;
    let mut b = ImageConfigurationBuilder::default()
        .architecture(Arch::from(input.architecture.as_str()))
        .os(Os::from(input.os.as_str()))
        .config(c.build()?)
        .rootfs(rootfs);
    if let Some(v) = &input.variant {
        b = b.variant(v.clone());
    }
    if let Some(t) = input.created {
        b = b.created(rfc3339(t));
    }
    if !history.is_empty() {
        b = b.history(history);
    }
    Ok(b.build()?)
}

fn build_history(h: &HistoryEntry, image_created: Option<u64>) -> Result<History> {
    let mut b = HistoryBuilder::default();
    if let Some(t) = h.created.or(image_created) {
        b = b.created(rfc3339(t));
    }
    if let Some(s) = &h.created_by {
        b = b.created_by(s.clone());
    }
    if let Some(s) = &h.comment {
        b = b.comment(s.clone());
    }
    if h.empty_layer {
        b = b.empty_layer(true);
    }
    Ok(b.build()?)
}

/// `80` → `80/tcp`; `53/udp` stays. Ports 1–65535, protocols tcp/udp/sctp.
pub fn normalize_port(spec: &str) -> Result<String> {
    let (port, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    let port_ok = port.len() <= 5
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
    if !port_ok || !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(Error::InvalidImage(format!(
            "invalid exposed port {spec:?}"
        )));
    }
    Ok(format!("{port}/{proto}"))
}

/// Formats seconds since the epoch as RFC 3339 UTC (`2024-01-02T03:04:05Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Builds an OCI image manifest.
pub fn build_manifest(
    config: Descriptor,
    layers: Vec<Descriptor>,
    annotations: &BTreeMap<String, String>,
) -> Result<ImageManifest> {
    let mut b = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers);
    if !annotations.is_empty() {
        b = b.annotations(
            annotations
                .clone()
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
    }
    Ok(b.build()?)
}

/// A JSON document ready to be stored: its canonical bytes and their descriptor.
#[derive(Debug, Clone)]
pub struct JsonBlob {
    pub bytes: Vec<u8>,
    pub descriptor: Descriptor,
}

impl JsonBlob {
    /// Canonical bytes of `value` with a descriptor of `media_type`.
    pub fn new<T: Serialize>(value: &T, media_type: MediaType) -> Result<Self> {
        let bytes = canonical_json(value)?;
        let descriptor = Descriptor::new(media_type, bytes.len() as u64, sha256_hex_of(&bytes));
        Ok(JsonBlob { bytes, descriptor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ImageSettings {
        let mut s = ImageSettings {
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
            cmd: Some(vec!["echo hi".into()]),
            exposed_ports: ["8080".into(), "53/udp".into()].into(),
            user: Some("1000:1000".into()),
            workdir: Some("/srv".into()),
            volumes: ["/data".into()].into(),
            labels: (0..20)
                .map(|i| (format!("label{i}"), format!("v{i}")))
                .collect(),
            stop_signal: Some("SIGTERM".into()),
            ..ImageSettings::default()
        };
        s.set_env("PATH", "/usr/bin");
        s.set_env("LANG", "C.UTF-8");
        s.set_env("PATH", "/usr/local/bin:/usr/bin");
        s
    }

    fn input() -> ConfigInput {
        ConfigInput {
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
            created: Some(1_700_000_000),
            history: vec![
                HistoryEntry {
                    created_by: Some("strata compose".into()),
                    ..Default::default()
                },
                HistoryEntry {
                    comment: Some("config".into()),
                    empty_layer: true,
                    ..Default::default()
                },
            ],
            diff_ids: vec![sha256_hex_of(b"layer")],
        }
    }

    #[test]
    fn config_has_every_setting_and_stable_bytes() {
        let cfg = build_config(&settings(), &input()).unwrap();
        let a = canonical_json(&cfg).unwrap();
        // HashMap order differs between instances; the canonical bytes must not.
        for _ in 0..5 {
            let again = build_config(&settings(), &input()).unwrap();
            assert_eq!(canonical_json(&again).unwrap(), a);
        }
        let v: Value = serde_json::from_slice(&a).unwrap();
        let c = &v["config"];
        assert_eq!(
            c["Env"],
            serde_json::json!(["PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8"])
        );
        assert_eq!(
            c["ExposedPorts"],
            serde_json::json!({"53/udp": {}, "8080/tcp": {}})
        );
        assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
        assert_eq!(c["User"], "1000:1000");
        assert_eq!(c["WorkingDir"], "/srv");
        assert_eq!(c["StopSignal"], "SIGTERM");
        assert_eq!(c["Labels"]["label7"], "v7");
        assert_eq!(v["created"], "2023-11-14T22:13:20Z");
        assert_eq!(v["rootfs"]["type"], "layers");
        assert_eq!(v["history"][1]["empty_layer"], true);
        assert_eq!(
            v["history"][1]["created"], "2023-11-14T22:13:20Z",
            "defaults to image time"
        );
        let text = String::from_utf8(a).unwrap();
        assert!(
            !text.contains('\n') && !text.contains("\": "),
            "not compact: {text}"
        );
    }

    #[test]
    fn canonical_json_sorts_nested_keys() {
        let v = serde_json::json!({"b": 1, "a": {"z": [ {"y": 1, "x": 2} ], "c": "é\"\n"}});
        let s = String::from_utf8(canonical_json(&v).unwrap()).unwrap();
        assert_eq!(s, r#"{"a":{"c":"é\"\n","z":[{"x":2,"y":1}]},"b":1}"#);
    }

    #[test]
    fn history_must_match_layers() {
        let mut i = input();
        i.diff_ids.push(sha256_hex_of(b"second"));
        assert!(build_config(&settings(), &i).is_err());
    }

    #[test]
    fn ports_are_validated() {
        assert_eq!(normalize_port("80").unwrap(), "80/tcp");
        assert_eq!(normalize_port("53/UDP").unwrap(), "53/udp");
        for bad in ["", "0", "65536", "80/xyz", "http", "-1", "80/"] {
            assert!(normalize_port(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn manifest_descriptor_matches_bytes() {
        let cfg = JsonBlob::new(
            &build_config(&settings(), &input()).unwrap(),
            MediaType::ImageConfig,
        )
        .unwrap();
        let layer = Descriptor::new(MediaType::ImageLayerGzip, 10, sha256_hex_of(b"x"));
        let ann: BTreeMap<_, _> = [(
            "org.opencontainers.image.version".to_string(),
            "1".to_string(),
        )]
        .into();
        let m = build_manifest(cfg.descriptor.clone(), vec![layer], &ann).unwrap();
        let blob = JsonBlob::new(&m, MediaType::ImageManifest).unwrap();
        assert_eq!(blob.descriptor.digest(), &sha256_hex_of(&blob.bytes));
        let v: Value = serde_json::from_slice(&blob.bytes).unwrap();
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(v["config"]["digest"], cfg.descriptor.digest().to_string());
    }
}
