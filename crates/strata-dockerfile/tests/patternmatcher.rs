//! moby/patternmatcher's tables (patternmatcher_test.go, ignorefile_test.go), translated to
//! data, run against strata-dockerfile's `.dockerignore` reading and matching.

mod common;

use common::{cases, same, str_of, strings, Suite};
use strata_dockerfile::DockerIgnore;

const LIST: &str = "patternmatcher/differences.json";

/// Each case: the patterns as `.dockerignore` lines, and whether `path` is excluded (or, for
/// `error`, that the patterns fail: strata refuses them when reading the file, moby when it
/// first matches against them, which a build always does).
#[test]
fn match_tables() {
    let mut suite = Suite::new(LIST, "patternmatcher_test.go");
    for c in cases("patternmatcher/patternmatcher.json") {
        let patterns = strings(&c["patterns"]);
        let path = str_of(&c, "path");
        let want_error = c["error"].as_bool() == Some(true);
        let outcome = match (DockerIgnore::parse(&patterns.join("\n")), want_error) {
            (Err(_), true) => Ok(()),
            (Err(e), false) => Err(format!("{patterns:?}: refused: {e}")),
            (Ok(_), true) => Err(format!("{patterns:?}: accepted, moby fails on them")),
            (Ok(d), false) => same(
                &format!("{patterns:?} excludes {path:?}"),
                c["excluded"].as_bool().expect("excluded"),
                d.is_excluded(path),
            ),
        };
        suite.record(str_of(&c, "id"), outcome);
    }
    suite.finish();
}

/// `TestReadAll`: the patterns read from a file's text.
#[test]
fn ignorefile_read_all() {
    let mut suite = Suite::new(LIST, "ignorefile_test.go");
    for c in cases("patternmatcher/ignorefile.json") {
        let outcome = match DockerIgnore::parse(str_of(&c, "content")) {
            Err(e) => Err(format!("refused: {e}")),
            Ok(d) => same("patterns", strings(&c["patterns"]), d.patterns()),
        };
        suite.record(str_of(&c, "id"), outcome);
    }
    suite.finish();
}
