use crate::*;
use proptest::prelude::*;

fn m(key: &str, sum: &str, source: &str, size: u64) -> Member {
    Member { key: format!("{key}.x86_64"), checksum: sum.into(), source: source.into(), size, buildtime: 0 }
}

/// The planner before the cost model: layers as fine as sharing allows (the structure the
/// tests below are about; the model's merges have their own tests in cost_tests.rs).
fn bytes_only() -> Settings {
    Settings::new(Mode::Auto, DEFAULT_MAX_PER_IMAGE, Cost::OFF)
}

/// Three images over a shared base, like the corpus: glibc stack everywhere, python in two.
fn fleet() -> Fleet {
    let base = || vec![m("libc6", "c1", "glibc", 100), m("libc-bin", "c2", "glibc", 10), m("bash", "b1", "bash", 50)];
    let mut f = Fleet::new();
    let mut web = base();
    web.push(m("nginx-light", "n1", "nginx", 5));
    web.push(m("nginx-common", "n2", "nginx", 1));
    f.insert("web".into(), web);
    let mut py = base();
    py.push(m("python3", "p1", "python3-defaults", 1));
    py.push(m("libpython3.11", "p2", "python3.11", 40));
    f.insert("python".into(), py.clone());
    py.push(m("python3-django", "d1", "python-django", 20));
    f.insert("django".into(), py);
    f
}

fn ids(p: &Plan, image: &str) -> Vec<String> {
    p.layers_for(image).map(|l| l.id.clone()).collect()
}

#[test]
fn shared_packages_are_shared_layers_below_the_own_ones() {
    let f = fleet();
    let p = plan(&f, &bytes_only(), None);
    p.check(&f).unwrap();
    assert_eq!(ids(&p, "web"), ["bash", "glibc", "nginx"]);
    assert_eq!(ids(&p, "python"), ["bash", "glibc", "python3-defaults", "python3.11"]);
    assert_eq!(ids(&p, "django"), ["bash", "glibc", "python3-defaults", "python3.11", "python-django"]);
    let glibc = p.layers.iter().find(|l| l.id == "glibc").unwrap();
    assert_eq!(glibc.packages, ["libc-bin.x86_64", "libc6.x86_64"]);
    assert_eq!(glibc.images, ["django", "python", "web"]);
}

#[test]
fn an_update_keeps_every_layer_and_its_members() {
    let f = fleet();
    let before = plan(&f, &bytes_only(), None);
    let mut updated = f.clone();
    for members in updated.values_mut() {
        for x in members.iter_mut().filter(|x| x.key.starts_with("libc")) {
            x.checksum.push_str("-security");
        }
    }
    let after = plan(&updated, &bytes_only(), Some(&before));
    after.check(&updated).unwrap();
    assert_eq!(after, before, "same names, same images: the plan does not move");
}

#[test]
fn a_new_dependency_gets_its_own_layer_and_moves_nothing_else() {
    let f = fleet();
    let before = plan(&f, &bytes_only(), None);
    let mut grown = f.clone();
    grown.get_mut("web").unwrap().push(m("libpcre2", "r1", "pcre2", 3));
    let after = plan(&grown, &bytes_only(), Some(&before));
    after.check(&grown).unwrap();
    for l in &before.layers {
        assert!(after.layers.contains(l), "layer {} changed", l.id);
    }
    assert_eq!(after.layers.len(), before.layers.len() + 1);
    assert!(ids(&after, "web").contains(&"pcre2".to_string()));
}

#[test]
fn a_package_whose_users_change_moves_alone() {
    let f = fleet();
    let before = plan(&f, &bytes_only(), None);
    let mut g = f.clone();
    // web now needs python3 too: python3 leaves the {django, python} layer.
    g.get_mut("web").unwrap().push(m("python3", "p1", "python3-defaults", 1));
    let after = plan(&g, &bytes_only(), Some(&before));
    after.check(&g).unwrap();
    let py3: Vec<&PlannedLayer> = after.layers.iter().filter(|l| l.packages.contains(&"python3.x86_64".to_string())).collect();
    assert_eq!(py3.len(), 1);
    assert_eq!(py3[0].images, ["django", "python", "web"]);
    let rest: Vec<&PlannedLayer> = after.layers.iter().filter(|l| !l.packages.contains(&"python3.x86_64".to_string())).collect();
    for l in rest {
        assert!(before.layers.contains(l), "layer {} changed", l.id);
    }
}

#[test]
fn different_builds_of_one_name_are_different_layers() {
    let mut f = fleet();
    f.get_mut("web").unwrap().iter_mut().find(|x| x.key == "bash.x86_64").unwrap().checksum = "b2".into();
    let p = plan(&f, &bytes_only(), None);
    p.check(&f).unwrap();
    let bash: Vec<&PlannedLayer> = p.layers.iter().filter(|l| l.packages == ["bash.x86_64"]).collect();
    assert_eq!(bash.len(), 2);
    assert_eq!(bash[0].images, ["django", "python"]);
    assert_eq!(bash[1].images, ["web"]);
}

#[test]
fn replanning_is_idempotent() {
    let f = fleet();
    for mode in [Mode::Auto, Mode::Package, Mode::Single] {
        for max in [1, 2, 3, 4, 100] {
            let s = Settings::new(mode, max, Cost::OFF);
            let p = plan(&f, &s, None);
            p.check(&f).unwrap();
            assert_eq!(plan(&f, &s, Some(&p)), p, "{mode:?} {max}");
        }
    }
}

#[test]
fn modes() {
    let f = fleet();
    let single = plan(&f, &Settings::new(Mode::Single, 100, Cost::OFF), None);
    assert!(single.layers.is_empty());
    single.check(&f).unwrap();
    let per = plan(&f, &Settings::new(Mode::Package, 100, Cost::OFF), None);
    per.check(&f).unwrap();
    assert!(per.layers.iter().all(|l| l.packages.len() == 1));
    assert_eq!(ids(&per, "web"), ["bash", "libc-bin", "libc6", "nginx-common", "nginx-light"]);
}

#[test]
fn the_budget_merges_layers_of_the_same_images_first_and_smallest_first() {
    let f = fleet();
    // django has 5 layers + top; a budget of 5 forces one merge. The smallest pair with the
    // same images: bash (50) + ... no, among {all three}: bash 50 + glibc 110; among
    // {django, python}: python3-defaults 1 + python3.11 40 — the smaller pair.
    let p = plan(&f, &Settings::new(Mode::Auto, 5, Cost::OFF), None);
    p.check(&f).unwrap();
    assert_eq!(ids(&p, "django"), ["bash", "glibc", "python3.11", "python-django"]);
    let merged = p.layers.iter().find(|l| l.id == "python3.11").unwrap();
    assert_eq!(merged.packages, ["libpython3.11.x86_64", "python3.x86_64"]);
    assert_eq!(ids(&p, "web"), ["bash", "glibc", "nginx"], "web is untouched");
}

#[test]
fn a_tight_budget_gives_an_image_a_private_layer() {
    let f = fleet();
    // Budget 3 → 2 package layers. django's layers have image sets {all}, {all},
    // {django,python}, {django,python}, {django}: merging the same-set pairs leaves 3.
    let p = plan(&f, &Settings::new(Mode::Auto, 3, Cost::OFF), None);
    p.check(&f).unwrap();
    for image in ["web", "python", "django"] {
        assert!(p.layers_for(image).count() <= 2, "{image}: {:?}", ids(&p, image));
    }
    let own = p.layers.iter().find(|l| l.id == "django~own").expect("a private layer");
    assert_eq!(own.images, ["django"]);
    assert!(!own.replaces.is_empty());
    // The shared layers it copies are still there, unchanged, for the other images.
    assert!(p.layers_for("python").all(|l| !l.id.ends_with("~own")));
}

#[test]
fn plan_errors_name_the_problem() {
    let f = fleet();
    let mut p = plan(&f, &bytes_only(), None);
    p.layers.retain(|l| l.id != "nginx");
    assert_eq!(p.check(&f).unwrap_err().to_string(), "image web: package nginx-common.x86_64 is in no layer");
    let mut p = plan(&f, &bytes_only(), None);
    p.layers[0].images.push("gone".into());
    assert!(p.check(&f).unwrap_err().to_string().contains("names image gone"));
    let mut g = f.clone();
    g.get_mut("web").unwrap().iter_mut().find(|x| x.key == "bash.x86_64").unwrap().checksum = "b2".into();
    let p = plan(&f, &bytes_only(), None);
    assert!(matches!(p.check(&g).unwrap_err(), PlanError::MixedBuilds { .. }));
}

#[test]
fn fingerprint_changes_only_with_the_images_own_layers() {
    let f = fleet();
    let p = plan(&f, &bytes_only(), None);
    let mut g = f.clone();
    g.get_mut("web").unwrap().push(m("libpcre2", "r1", "pcre2", 3));
    let q = plan(&g, &bytes_only(), Some(&p));
    assert_ne!(p.image_fingerprint("web"), q.image_fingerprint("web"));
    assert_eq!(p.image_fingerprint("django"), q.image_fingerprint("django"));
}

#[test]
fn plan_round_trips_through_json() {
    let p = plan(&fleet(), &bytes_only(), None);
    let text = serde_json::to_string(&p).unwrap();
    assert!(text.contains("\"mode\":\"auto\""));
    assert_eq!(serde_json::from_str::<Plan>(&text).unwrap(), p);
}

fn arb_fleet() -> impl Strategy<Value = Fleet> {
    // Up to 6 images over 30 package names; each image picks a subset, with a build per
    // (name, image group) so that version skew happens too.
    (1usize..6, proptest::collection::vec((0usize..30, 0u8..2, 0u64..4_000_000, 0u64..1000), 1..120)).prop_map(|(n, picks)| {
        let mut f = Fleet::new();
        for (i, (name, build, size, days)) in picks.into_iter().enumerate() {
            let image = format!("img{}", i % n);
            let members: &mut Vec<Member> = f.entry(image).or_default();
            let key = format!("p{name}.x86_64");
            if members.iter().any(|x| x.key == key) {
                continue;
            }
            members.push(Member { key, checksum: format!("{name}-{build}"), source: format!("s{}", name / 3), size, buildtime: 1_700_000_000 - days * 86_400 });
        }
        f
    })
}

fn arb_cost() -> impl Strategy<Value = Cost> {
    prop_oneof![Just(Cost::OFF), Just(Cost::LAN), Just(Cost::WAN), (1u64..2_000_000_000, 1u64..500_000).prop_map(|(b, p)| Cost { bandwidth_bits: b, per_layer_us: p })]
}

proptest! {
    #[test]
    fn every_plan_covers_each_image_exactly_within_budget(f in arb_fleet(), max in 2u32..12, mode in prop_oneof![Just(Mode::Auto), Just(Mode::Package)], cost in arb_cost()) {
        let s = Settings::new(mode, max, cost);
        let p = plan(&f, &s, None);
        prop_assert!(p.check(&f).is_ok(), "{:?}", p.check(&f));
        let again = plan(&f, &s, Some(&p));
        prop_assert_eq!(&again, &p);
    }

    #[test]
    fn replanning_after_changes_stays_valid(f in arb_fleet(), g in arb_fleet(), max in 2u32..12, cost in arb_cost()) {
        let s = Settings::new(Mode::Auto, max, cost);
        let p = plan(&f, &s, None);
        let q = plan(&g, &s, Some(&p));
        prop_assert!(q.check(&g).is_ok(), "{:?}", q.check(&g));
    }
}
