use super::*;

const POLICY: &str = r#"
[roles]
"ci-bot" = "submitter"
"demoted" = "reader"

[default]
submit = ["role:submitter"]
promote = ["role:admin"]
sources = ["https://git.example.org/**", "file:///srv/git/**"]
refs = ["HEAD", "main", "release/*"]
registries = ["registry.example.org/team"]

[[image]]
match = "apps/*"
submit = ["ci-bot"]
promote = ["ci-bot"]
network_host = true
remote_content = false

[[image]]
match = "apps/**"
sources = ["https://other.example.org/**"]
"#;

fn submission<'a>(image: &'a str, source: &'a str) -> Submission<'a> {
    Submission {
        actor: "alice",
        role: "submitter",
        image,
        source,
        r#ref: Some("main"),
        destination: Some("registry.example.org/team/x"),
        network_host: false,
    }
}

#[test]
fn image_globs_pick_the_first_matching_rule_and_fill_in_the_default() {
    let p = Policy::parse("policy.toml", POLICY).unwrap();
    let ok = submission("web", "https://git.example.org/team/web.git");
    assert_eq!(p.check_submit(&ok), Ok(Grant { remote_content: true }));

    // apps/* names its submitters: alice (a submitter) is not one; ci-bot is.
    let app = Submission { image: "apps/site", ..ok.clone() };
    let e = p.check_submit(&app).unwrap_err();
    assert!(e.rule.starts_with("[[image]] match = \"apps/*\" (line 13)"), "{e}");
    assert!(e.to_string().contains("alice (submitter) may not submit apps/site"), "{e}");
    let bot = Submission { actor: "ci-bot", ..app.clone() };
    assert_eq!(p.check_submit(&bot), Ok(Grant { remote_content: false }), "remote content off for apps/*");
    assert_eq!(p.check_submit(&Submission { network_host: true, ..bot.clone() }), Ok(Grant { remote_content: false }));
    let e = p.check_submit(&Submission { network_host: true, ..ok.clone() }).unwrap_err();
    assert_eq!(e.rule, "[default]");
    assert!(e.reason.contains("host's network"), "{e}");

    // `*` stays within a segment: apps/a/b falls to the second rule, with its own sources.
    let deep = Submission { image: "apps/a/b", ..ok.clone() };
    let e = p.check_submit(&deep).unwrap_err();
    assert!(e.rule.contains("apps/**") && e.reason.contains("source https://git.example.org/team/web.git is not one of https://other.example.org/**"), "{e}");
}

#[test]
fn sources_refs_and_registries_each_refuse_naming_the_rule() {
    let p = Policy::parse("policy.toml", POLICY).unwrap();
    let base = submission("web", "https://git.example.org/web.git");
    let e = p.check_submit(&Submission { source: "https://evil.example.com/web.git", ..base.clone() }).unwrap_err();
    assert_eq!(e.to_string(), "refused by policy rule [default]: source https://evil.example.com/web.git is not one of https://git.example.org/**, file:///srv/git/**");
    let e = p.check_submit(&Submission { r#ref: Some("feature/x"), ..base.clone() }).unwrap_err();
    assert!(e.reason.contains("ref feature/x is not one of HEAD, main, release/*"), "{e}");
    assert!(p.check_submit(&Submission { r#ref: Some("release/1.0"), ..base.clone() }).is_ok());
    assert!(p.check_submit(&Submission { r#ref: None, ..base.clone() }).is_ok(), "the remote HEAD is checked as HEAD");
    let e = p.check_submit(&Submission { destination: Some("registry.example.org/teamX/web"), ..base.clone() }).unwrap_err();
    assert!(e.reason.contains("pushing to registry.example.org/teamX/web is not under registry.example.org/team"), "a prefix is whole path parts: {e}");
    assert!(p.check_submit(&Submission { destination: Some("registry.example.org/team/web"), ..base.clone() }).is_ok());
}

#[test]
fn roles_and_promotion() {
    let p = Policy::parse("policy.toml", POLICY).unwrap();
    assert_eq!(p.role_of("ci-bot", "reader"), "submitter");
    assert_eq!(p.role_of("demoted", "admin"), "reader");
    assert_eq!(p.role_of("other", "worker"), "worker");
    assert!(p.check_promote("alice", "submitter", "web").is_err(), "promote is admin only by default");
    assert!(p.check_promote("root", "admin", "web").is_ok());
    assert!(p.check_promote("ci-bot", "submitter", "apps/site").is_ok());
    // Without a policy: submitters submit and promote anything.
    let open = Policy::default();
    assert!(open.check_promote("alice", "submitter", "web").is_ok());
    assert!(open.check_promote("r", "reader", "web").is_err());
    assert_eq!(open.check_submit(&submission("web", "ssh://anywhere/x")), Ok(Grant { remote_content: true }));
}

#[test]
fn errors_name_the_line_and_the_key() {
    let e = Policy::parse("p.toml", "[default]\nsubmit = [\"role:submiter\"]\n").unwrap_err();
    assert_eq!(e.to_string(), "p.toml: line 2: default.submit: role \"submiter\" is not one of admin, submitter, worker, reader");
    let e = Policy::parse("p.toml", "[default]\n\nsubmti = []\n").unwrap_err();
    assert!(e.to_string().starts_with("p.toml: line 3: unknown field `submti`"), "{e}");
    let e = Policy::parse("p.toml", "[[image]]\nmatch = \"a/[\"\n").unwrap_err();
    assert!(e.to_string().starts_with("p.toml: line 2: image[0].match:"), "{e}");
    let e = Policy::parse("p.toml", "[roles]\nbob = \"root\"\n").unwrap_err();
    assert!(e.to_string().contains("line 2: roles.\"bob\": role \"root\""), "{e}");
    let e = Policy::parse("p.toml", "[default]\nregistries = [\"https://r\"]\n").unwrap_err();
    assert!(e.to_string().contains("line 2: default.registries"), "{e}");
    let e = Policy::parse("p.toml", "[default\n").unwrap_err();
    assert!(e.to_string().starts_with("p.toml: line 1:"), "{e}");
}
