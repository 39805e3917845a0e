//! Many lower layers, through both mount interfaces, with paths too long to pass as they
//! are.

use super::*;
use crate::{Backend, LayerCache, MountApi, Stage, StageOptions};
use strata_oci::layer::Meta;

fn layers(n: usize) -> Vec<(Vec<u8>, LayerInfo)> {
    (0..n)
        .map(|i| {
            let mut l = LayerBuilder::new();
            let body = i.to_string();
            l.add_file(format!("f{i}"), &Meta::new(0o644), body.len() as u64, body.as_bytes()).unwrap();
            l.add_file("common", &Meta::new(0o644), body.len() as u64, body.as_bytes()).unwrap();
            if i == n - 1 {
                l.add_whiteout("f0").unwrap();
            }
            finish(l)
        })
        .collect()
}

fn mounted(path: &Path) -> bool {
    let needle = path.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| l.split(' ').nth(4) == Some(needle.as_str()))
}

#[test]
fn a_hundred_and_twenty_eight_lowers_in_order_through_both_mount_apis() {
    if !have_root() {
        return;
    }
    const N: usize = 128;
    let t = tempfile::tempdir().unwrap();
    // Cache paths beyond fsconfig's 256-byte strings and, times 128, far beyond one page.
    let cache_root = t.path().join("c".repeat(200));
    let cache = LayerCache::open(&cache_root).unwrap();
    let ls = layers(N);
    for (blob, info) in &ls {
        cache.unpack(&info.diff_id, &blob[..]).unwrap();
    }
    let diff_ids: Vec<_> = ls.iter().map(|(_, i)| i.diff_id.clone()).collect();
    assert!(cache.path(&diff_ids[0]).unwrap().as_os_str().len() > 256);
    for api in [MountApi::Auto, MountApi::Classic] {
        let opts = StageOptions { backend: Some(Backend::Overlay), mount_api: api };
        let stage = Stage::from_cache(&t.path().join("stages"), &cache, &diff_ids, &opts).unwrap();
        let root = stage.root().to_path_buf();
        assert!(mounted(&root), "{api:?}");
        assert_eq!(fs::read_to_string(root.join("common")).unwrap(), (N - 1).to_string(), "{api:?}: the last layer is on top");
        assert!(!root.join("f0").exists(), "{api:?}: the top layer's whiteout hides the bottom file");
        for i in 1..N {
            assert_eq!(fs::read_to_string(root.join(format!("f{i}"))).unwrap(), i.to_string());
        }
        drop(stage);
        assert!(!mounted(&root), "{api:?}: dropping the stage unmounts it");
        assert!(!root.exists());
    }
}

#[test]
fn more_lowers_than_overlayfs_stacks_are_refused_up_front() {
    let t = tempfile::tempdir().unwrap();
    let lowers = vec![t.path().to_path_buf(); crate::MAX_LOWERS + 1];
    assert!(Stage::create(&t.path().join("stages"), &lowers, &StageOptions::default()).is_err());
    assert!(!t.path().join("stages").exists());
}
