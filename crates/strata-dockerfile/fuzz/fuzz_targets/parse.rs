//! Feeds arbitrary text to the parser, and whatever parses through scoping, expansion and
//! printing, so a panic anywhere on the way from text to expanded instructions is found.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_dockerfile::{parse, BaseRef, BuildArgs, GlobalScope, Platform, StageScope};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = strata_dockerfile::DockerIgnore::parse(text).map(|d| d.walk(text, true));
    let _ = strata_dockerfile::parse_trigger(text);
    let Ok(df) = parse(text) else {
        return;
    };
    let build_args: BuildArgs = [("A", "1"), ("HTTP_PROXY", "p")].into_iter().collect();
    let amd64 = Platform::new("linux", "amd64", None);
    let Ok(global) = GlobalScope::new(&df, &build_args, &amd64, &amd64, None) else {
        return;
    };
    let mut scopes: Vec<StageScope<'_>> = Vec::new();
    for (i, stage) in df.stages.iter().enumerate() {
        let base = global.expand_from(&stage.from.node).map(|(image, _)| df.base_of(i, &image));
        let mut scope = match base {
            Ok(BaseRef::Stage(p)) => scopes[p].child(),
            _ => StageScope::new(&["PATH=/bin"], &global, &build_args),
        };
        for ins in &stage.instructions {
            let _ = ins.node.to_string();
            let _ = scope.apply(&ins.node);
            let _ = scope.run_env();
        }
        scopes.push(scope);
    }
});
