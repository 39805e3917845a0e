//! The image a stage is building, step by step: its config document (kept as JSON, so
//! Docker's fields the OCI types do not know — `Healthcheck`, `OnBuild`, `Shell` — survive),
//! its layers and history, and the chain key that names the state for the step cache.

use crate::Error;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};
use std::str::FromStr;
use strata_oci::config::rfc3339;
use strata_oci::layer::LayerInfo;
use strata_oci::oci_spec::image::{Descriptor, Digest, MediaType};
use strata_oci::store::ResolvedImage;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: MediaType,
}

impl LayerRef {
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(self.media_type.clone(), self.size, self.digest.clone())
    }

    pub fn from_info(info: &LayerInfo) -> LayerRef {
        LayerRef { digest: info.digest.clone(), diff_id: info.diff_id.clone(), size: info.size, media_type: info.media_type.clone() }
    }
}

/// The external image a stage ultimately stands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseInfo {
    /// As the Dockerfile named it after expansion (`web`, `web:latest`, `alpine@sha256:..`).
    pub name: String,
    /// Its manifest digest.
    pub digest: String,
    /// The image a `--build-context NAME=docker-image://REF` put in place of `name`: REF,
    /// as given (`digest` is then REF's).
    pub build_context: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct ImageState {
    pub config: Value,
    pub layers: Vec<LayerRef>,
    /// Names everything this state was made from; equal keys, equal states.
    pub key: String,
    pub base: Option<BaseInfo>,
    /// Layers that came with the external base (what `--squash` keeps), and its history
    /// entries.
    pub base_layers: usize,
    pub base_history: usize,
    /// CMD was set in this stage (an ENTRYPOINT then keeps it).
    pub cmd_set: bool,
}

/// OCI media types for layers whichever form (Docker's or OCI's) the base image used; the
/// blob is the same.
fn oci_layer_type(m: &MediaType) -> MediaType {
    match m.to_string().as_str() {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => MediaType::ImageLayerGzip,
        "application/vnd.docker.image.rootfs.diff.tar" => MediaType::ImageLayer,
        "application/vnd.docker.image.rootfs.diff.tar.zstd" => MediaType::ImageLayerZstd,
        _ => m.clone(),
    }
}

pub(crate) fn chain(key: &str, step: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(format!("{key}\n{step}").as_bytes())))
}

impl ImageState {
    pub fn scratch(architecture: &str) -> ImageState {
        ImageState {
            config: json!({"architecture": architecture, "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}, "history": []}),
            layers: Vec::new(),
            key: "scratch".into(),
            base: None,
            base_layers: 0,
            base_history: 0,
            cmd_set: false,
        }
    }

    pub fn from_image(img: &ResolvedImage, name: &str) -> Result<ImageState, Error> {
        let config: Value = serde_json::from_slice(&img.config_bytes).map_err(|e| Error::Base { name: name.into(), message: format!("its config is not JSON: {e}") })?;
        let diff_ids: Vec<Digest> = img.config.rootfs().diff_ids().iter().map(|d| Digest::from_str(d)).collect::<Result<_, _>>().map_err(|e| Error::Base { name: name.into(), message: format!("bad diff_id: {e}") })?;
        let layers: Vec<LayerRef> = img
            .manifest
            .layers()
            .iter()
            .zip(diff_ids)
            .map(|(l, diff_id)| LayerRef { digest: l.digest().clone(), diff_id, size: l.size(), media_type: oci_layer_type(l.media_type()) })
            .collect();
        let digest = img.manifest_descriptor.digest().to_string();
        let base_history = config["history"].as_array().map_or(0, Vec::len);
        let mut state = ImageState { base_layers: layers.len(), base_history, config, layers, key: digest.clone(), base: Some(BaseInfo { name: name.into(), digest, build_context: None }), cmd_set: false };
        if state.config.get("config").is_none_or(Value::is_null) {
            state.config["config"] = json!({});
        }
        Ok(state)
    }

    fn cfg(&mut self) -> &mut Map<String, Value> {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        self.config["config"].as_object_mut().expect("made an object")
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.config["config"].get(key).filter(|v| !v.is_null())
    }

    /// Sets (or, with `Value::Null`, removes) a field of the config's `config` object.
    pub fn set(&mut self, key: &str, value: Value) {
        if value.is_null() {
            self.cfg().remove(key);
        } else {
            self.cfg().insert(key.into(), value);
        }
    }

    pub fn strings(&self, key: &str) -> Vec<String> {
        self.get(key).and_then(Value::as_array).map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default()
    }

    pub fn string(&self, key: &str) -> String {
        self.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
    }

    pub fn env(&self) -> Vec<String> {
        self.strings("Env")
    }

    /// Inserts into an object field (`Labels`, `ExposedPorts`, `Volumes`).
    pub fn insert(&mut self, field: &str, key: &str, value: Value) {
        let cfg = self.cfg();
        if !cfg.get(field).is_some_and(Value::is_object) {
            cfg.insert(field.into(), json!({}));
        }
        cfg[field].as_object_mut().expect("an object").insert(key.into(), value);
    }

    pub fn history(&mut self, created: u64, created_by: &str, empty: bool) {
        let mut h = json!({"created": rfc3339(created), "created_by": created_by});
        if empty {
            h["empty_layer"] = json!(true);
        }
        if !self.config["history"].is_array() {
            self.config["history"] = json!([]);
        }
        self.config["history"].as_array_mut().expect("an array").push(h);
    }

    pub fn add_layer(&mut self, layer: LayerRef, created: u64, created_by: &str) {
        self.layers.push(layer);
        self.history(created, created_by, false);
    }

    /// The config to store: `created`, the layers' diff_ids, history as built.
    pub fn final_config(&self, created: u64) -> Value {
        let mut c = self.config.clone();
        c["created"] = json!(rfc3339(created));
        c["rootfs"] = json!({"type": "layers", "diff_ids": self.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()});
        // Tools pair history entries with layers by position: an image from a tool that
        // wrote no history gets none from us either, rather than a wrong pairing.
        let non_empty = c["history"].as_array().map_or(0, |h| h.iter().filter(|e| e["empty_layer"] != json!(true)).count());
        if non_empty != self.layers.len() {
            c.as_object_mut().expect("config is an object").remove("history");
        }
        c
    }
}
