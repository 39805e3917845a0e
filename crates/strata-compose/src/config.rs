//! The image config and manifest annotations from an image spec.

use std::collections::BTreeMap;
use strata_oci::config::{build_config, rfc3339, ConfigInput, HistoryEntry, ImageSettings};
use strata_oci::oci_spec::image::{Digest, ImageConfiguration};
use strata_spec::ImageSpec;

/// What docker and Fedora's base images set: programs are found without a login shell.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn settings(spec: &ImageSpec, lock_digest: &str, inputs: &str) -> ImageSettings {
    let mut s = ImageSettings {
        entrypoint: spec.entrypoint.as_ref().map(|c| c.argv()),
        cmd: spec.cmd.as_ref().map(|c| c.argv()),
        user: spec.user.clone(),
        workdir: spec.workdir.clone(),
        stop_signal: spec.stop_signal.clone(),
        exposed_ports: spec.expose.iter().map(|p| p.to_string()).collect(),
        volumes: spec.volumes.iter().cloned().collect(),
        labels: spec.labels.clone(),
        ..ImageSettings::default()
    };
    s.set_env("PATH", DEFAULT_PATH);
    for (k, v) in &spec.env {
        s.set_env(k, v);
    }
    s.labels.insert(crate::LOCK_LABEL.into(), lock_digest.into());
    s.labels.insert(crate::INPUTS_LABEL.into(), inputs.into());
    s
}

pub fn config(spec: &ImageSpec, lock_digest: &str, inputs: &str, arch: &str, created: u64, diff_ids: Vec<Digest>, history: Vec<String>) -> Result<ImageConfiguration, strata_oci::Error> {
    let history = history
        .into_iter()
        .map(|h| HistoryEntry { created: Some(created), created_by: Some(h), comment: None, empty_layer: false })
        .collect();
    let input = ConfigInput {
        architecture: strata_rpm::arch::oci_arch(arch).to_string(),
        os: "linux".into(),
        variant: None,
        created: Some(created),
        history,
        diff_ids,
    };
    build_config(&settings(spec, lock_digest, inputs), &input)
}

pub fn annotations(spec: &ImageSpec, name: &str, created: u64, inputs: &str) -> BTreeMap<String, String> {
    let mut a = spec.annotations.clone();
    a.insert("org.opencontainers.image.created".into(), rfc3339(created));
    a.insert("org.opencontainers.image.title".into(), name.into());
    a.insert(crate::INPUTS_ANNOTATION.into(), inputs.into());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_carry_spec_and_default_path() {
        let spec: ImageSpec = serde_json::from_str(r#"{"packages":["x"],"entrypoint":["/usr/sbin/nginx","-g","daemon off;"],"expose":"80","env":{"LANG":"C.UTF-8","PATH":"/opt/bin:/usr/bin"},"labels":{"a":"b"},"user":"www-data"}"#).unwrap();
        let s = settings(&spec, "sha256:abc", "sha256:def");
        assert_eq!(s.entrypoint.as_deref().unwrap()[0], "/usr/sbin/nginx");
        assert!(s.exposed_ports.contains("80/tcp"));
        assert_eq!(s.env, ["PATH=/opt/bin:/usr/bin", "LANG=C.UTF-8"]);
        assert_eq!(s.labels.get(crate::LOCK_LABEL).unwrap(), "sha256:abc");
        assert_eq!(s.labels.get(crate::INPUTS_LABEL).unwrap(), "sha256:def");
    }
}
