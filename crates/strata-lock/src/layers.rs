//! The lock's layer plan: the fleet the planner sees, and re-planning after a resolve.

use crate::Lockfile;
use strata_layers::{plan, source_name, Cost, Fleet, Member, Mode, Plan, PlanError, Settings};
use strata_spec::{LayerMode, Layering, PullProfile};

/// The planner's settings for a spec's `layers` key.
pub fn layer_settings(spec: &Layering) -> Settings {
    let mode = match spec.mode {
        LayerMode::Auto => Mode::Auto,
        LayerMode::Package => Mode::Package,
        LayerMode::Single => Mode::Single,
    };
    Settings::new(mode, spec.max_per_image.unwrap_or(strata_layers::DEFAULT_MAX_PER_IMAGE), pull_cost(spec))
}

/// The pull conditions a spec describes: its profile's figures (`lan` when none), each
/// overridden by `bandwidth` and `per_layer`. Not normalised: `compose --report` models
/// times with the bandwidth even when `per_layer` turns merging off.
pub fn pull_cost(spec: &Layering) -> Cost {
    let base = match spec.profile {
        None | Some(PullProfile::Lan) => Cost::LAN,
        Some(PullProfile::Wan) => Cost::WAN,
    };
    Cost { bandwidth_bits: spec.bandwidth.map_or(base.bandwidth_bits, |b| b.0), per_layer_us: spec.per_layer.map_or(base.per_layer_us, |p| p.0) }
}

/// The lock after a resolve: the images resolved now (`fresh`) replace their entries; with
/// `keep_others`, `existing`'s other images stay as long as `in_spec` says the spec still has
/// them. The layer plan is made again for all images, keeping `existing`'s where it holds.
pub fn updated(existing: Option<&Lockfile>, fresh: Lockfile, in_spec: impl Fn(&str) -> bool, keep_others: bool, settings: &Settings) -> Lockfile {
    let mut merged = match existing {
        Some(old) if keep_others => {
            let mut m = old.clone();
            m.layers = None;
            m
        }
        _ => Lockfile::new(),
    };
    merged.merge(fresh);
    merged.images.retain(|name, _| in_spec(name));
    merged.prune_repos();
    merged.replan(settings, existing.and_then(|e| e.layers.as_ref()));
    merged
}

impl Lockfile {
    /// Every image's packages as the layer planner sees them.
    pub fn fleet(&self) -> Fleet {
        self.images
            .iter()
            .map(|(name, image)| {
                let members = image
                    .packages
                    .iter()
                    .map(|p| Member {
                        key: format!("{}.{}", p.name, p.arch),
                        checksum: format!("{}:{}", p.checksum.kind, p.checksum.value),
                        source: source_name(&p.sourcerpm, &p.name),
                        size: p.installed_size,
                        buildtime: p.buildtime,
                    })
                    .collect();
                (name.clone(), members)
            })
            .collect()
    }

    /// Plans the layers of every image in the lock, keeping what `previous` (the plan of
    /// the lock this one replaces) said wherever it still holds.
    pub fn replan(&mut self, settings: &Settings, previous: Option<&Plan>) {
        self.layers = Some(plan(&self.fleet(), settings, previous));
    }

    /// The recorded plan, checked against the lock's images and the spec's settings; a
    /// lock from before layering (no plan) gets one planned now, as `strata resolve` would.
    pub fn checked_plan(&self, settings: &Settings) -> Result<Plan, PlanProblem> {
        let fleet = self.fleet();
        match &self.layers {
            None => Ok(plan(&fleet, settings, None)),
            Some(p) if p.settings() != *settings => Err(PlanProblem::Settings),
            Some(p) => {
                p.check(&fleet).map_err(PlanProblem::Invalid)?;
                Ok(p.clone())
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanProblem {
    #[error("its layer plan was made with other layer settings than the spec's")]
    Settings,
    #[error("its layer plan does not fit its packages: {0}")]
    Invalid(PlanError),
}

#[cfg(test)]
mod tests {
    use crate::tests::{lock, pkg};
    use strata_layers::{Cost, Mode, Settings};

    #[test]
    fn replanning_keeps_the_layers_through_an_update_and_checks_settings() {
        let mut a = lock(&[("web", vec![pkg("bash", "5", "base"), pkg("nginx", "1", "base")]), ("base", vec![pkg("bash", "5", "base")])]);
        a.replan(&Settings::default(), None);
        let plan = a.layers.clone().unwrap();
        assert_eq!(plan.layers_for("web").map(|l| l.id.as_str()).collect::<Vec<_>>(), ["bash", "nginx"]);
        let mut b = lock(&[("web", vec![pkg("bash", "5.1", "updates"), pkg("nginx", "1", "base")]), ("base", vec![pkg("bash", "5.1", "updates")])]);
        b.replan(&Settings::default(), a.layers.as_ref());
        assert_eq!(b.layers, a.layers);
        assert_eq!(b.checked_plan(&Settings::default()).unwrap(), plan);
        let other = Settings::new(Mode::Package, 100, Cost::LAN);
        assert!(b.checked_plan(&other).unwrap_err().to_string().contains("other layer settings"));
        let text = b.to_json();
        assert!(text.contains("\"layers\""));
        b.layers = None;
        assert!(!b.to_json().contains("\"layers\""), "old locks stay as they were");
        assert_eq!(b.checked_plan(&Settings::default()).unwrap(), plan, "a lock without a plan gets the same plan now");
    }
}
