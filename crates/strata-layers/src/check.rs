//! Checking that a recorded plan fits the fleet it is used with.

use crate::{Fleet, Mode, Plan};
use std::collections::{BTreeMap, BTreeSet};

/// Why a plan cannot be used for a fleet; each names the image, layer or package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("layer {layer} is listed twice")]
    DuplicateLayer { layer: String },
    #[error("layer {layer} names image {image}, which the lock does not have")]
    UnknownImage { layer: String, image: String },
    #[error("image {image}: package {package} is in layers {first} and {second}")]
    TwiceInImage { image: String, package: String, first: String, second: String },
    #[error("image {image}: package {package} is in layer {layer}, but the image does not have it")]
    NotInImage { image: String, package: String, layer: String },
    #[error("image {image}: package {package} is in no layer")]
    Unplaced { image: String, package: String },
    #[error("layer {layer}: images {first} and {second} hold different builds of {package}")]
    MixedBuilds { layer: String, package: String, first: String, second: String },
    #[error("image {image} has {count} layers, more than the budget of {max}")]
    OverBudget { image: String, count: usize, max: u32 },
}

impl Plan {
    /// Every image's packages are in exactly one of its layers (none in single mode), each
    /// layer's images hold the same builds of its packages, and budgets hold.
    pub fn check(&self, fleet: &Fleet) -> Result<(), PlanError> {
        let mut ids = BTreeSet::new();
        for l in &self.layers {
            if !ids.insert(l.id.as_str()) {
                return Err(PlanError::DuplicateLayer { layer: l.id.clone() });
            }
            if let Some(image) = l.images.iter().find(|i| !fleet.contains_key(*i)) {
                return Err(PlanError::UnknownImage { layer: l.id.clone(), image: image.clone() });
            }
        }
        let layered = self.mode != Mode::Single && self.max_per_image > 1;
        for (image, members) in fleet {
            let mut builds: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for m in members {
                builds.entry(&m.key).or_default().push(&m.checksum);
            }
            let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
            let mut count = 1;
            for l in self.layers_for(image) {
                count += 1;
                for p in &l.packages {
                    if !builds.contains_key(p.as_str()) {
                        return Err(PlanError::NotInImage { image: image.clone(), package: p.clone(), layer: l.id.clone() });
                    }
                    if let Some(first) = seen.insert(p, &l.id) {
                        return Err(PlanError::TwiceInImage { image: image.clone(), package: p.clone(), first: first.to_string(), second: l.id.clone() });
                    }
                }
            }
            if layered {
                if let Some(p) = builds.keys().find(|k| !seen.contains_key(*k)) {
                    return Err(PlanError::Unplaced { image: image.clone(), package: p.to_string() });
                }
            }
            if count > self.max_per_image as usize && layered {
                return Err(PlanError::OverBudget { image: image.clone(), count, max: self.max_per_image });
            }
        }
        for l in &self.layers {
            for p in &l.packages {
                let mut first: Option<(&str, Vec<&str>)> = None;
                for image in &l.images {
                    let mut sums: Vec<&str> = fleet[image].iter().filter(|m| &m.key == p).map(|m| m.checksum.as_str()).collect();
                    sums.sort_unstable();
                    match &first {
                        None => first = Some((image, sums)),
                        Some((fi, fs)) if *fs != sums => {
                            return Err(PlanError::MixedBuilds { layer: l.id.clone(), package: p.clone(), first: fi.to_string(), second: image.clone() })
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }
}
