//! The layer planner at scale (issue 18): the 100 images of bench/scale-fleet.txt, resolved
//! from the corpus's metadata-only scale repository, planned with the default settings (the
//! cost model), `Cost::OFF` and `Cost::WAN`: every plan passes its check, every image is
//! within its cap, a re-plan from the plan itself changes nothing, and the default plan
//! stores at most 1.10× the floor. Not timed: bench/plan-scale.sh times the same fleet.

#[path = "../examples/plan_scale/scale.rs"]
mod scale;

use scale::Figures;
use strata_layers::{plan, Cost, Mode, Settings, DEFAULT_MAX_PER_IMAGE};
use strata_lock::{resolve_spec, ResolveOptions};
use strata_repo::MetadataCache;
use strata_spec::{RepoOptions, Spec};

/// The goal: fleet bytes over the floor with the default settings.
const MAX_RATIO: f64 = 1.10;

#[test]
fn the_scale_fleet_plans_within_its_caps_near_the_floor_and_replans_to_itself() {
    let names = scale::names(&std::fs::read_to_string(scale::fleet_file()).expect("bench/scale-fleet.txt"));
    assert_eq!(names.len(), 100, "bench/scale-fleet.txt names 100 images");
    let cache = tempfile::tempdir().unwrap();
    let spec_path = cache.path().join("fleet.json");
    let spec = Spec::parse(&spec_path, &scale::spec_json(&names, &strata_corpus::dir().join("out/scale"))).unwrap();
    let opts = ResolveOptions { cache: MetadataCache::new(cache.path().join("cache")), repos: RepoOptions::default(), releasever: None, refresh: false, images: Vec::new(), on_step: None };
    let lock = resolve_spec(&spec, &opts).unwrap_or_else(|e| panic!("the scale fleet does not resolve:\n{e}"));
    let fleet = lock.fleet();
    assert_eq!(fleet.len(), names.len());

    for cost in [Cost::default(), Cost::OFF, Cost::WAN] {
        let settings = Settings::new(Mode::Auto, DEFAULT_MAX_PER_IMAGE, cost);
        let p = plan(&fleet, &settings, None);
        let f = Figures::of(&fleet, &p);
        let what = format!("{cost:?}: {f:?}, ratio {:.3}", f.ratio());
        p.check(&fleet).unwrap_or_else(|e| panic!("{what}: the plan fails its check: {e}"));
        for image in fleet.keys() {
            let layers = p.layers_for(image).count() + 1; // the top layer
            assert!(layers <= DEFAULT_MAX_PER_IMAGE as usize, "{what}: image {image} has {layers} layers, over the cap");
        }
        if cost == Cost::default() {
            assert!(f.ratio() <= MAX_RATIO, "{what}: the default plan stores more than {MAX_RATIO}× the floor");
        }
        assert!(plan(&fleet, &settings, Some(&p)) == p, "{what}: re-planning from the plan itself changed it");
    }
}
