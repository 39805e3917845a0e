//! Dockerfile text and `.dockerignore` patterns: parsing, triggers, scoping and expansion of
//! every stage, printing, and pattern matching of the paths the Dockerfile names.
//!
//! The input is `IGNORE \0 DOCKERFILE` when it holds a NUL, otherwise the same text serves as
//! both (so plain Dockerfile and .dockerignore seeds both work).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_dockerfile::{
    parse, parse_trigger, BaseRef, BuildArgs, DockerIgnore, GlobalScope, Lexer, Platform, StageScope, Vars,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (ignore_text, dockerfile) = text.split_once('\0').unwrap_or((text, text));

    // Words the Dockerfile names, used as paths to match and as words to expand.
    let words: Vec<&str> = dockerfile.split_whitespace().take(256).collect();
    if let Ok(ignore) = DockerIgnore::parse(ignore_text) {
        let _ = ignore.patterns();
        let _ = ignore.build_files("Dockerfile");
        for w in words.iter().chain(["", ".", "/", "a/b/c", "Dockerfile", ".dockerignore"].iter()) {
            let _ = ignore.is_excluded(w);
            let _ = ignore.walk(w, true);
            let _ = ignore.walk(w, false);
            let _ = ignore.must_descend(w);
        }
    }
    let vars = Vars::from_env_strings(["A=1", "EMPTY=", "P=/usr/local/bin:/usr/bin"]);
    for escape in ['\\', '`'] {
        let lexer = Lexer::new(escape);
        for w in words.iter().take(32) {
            let _ = lexer.expand(w, &vars);
        }
        let _ = lexer.expand_words(dockerfile.lines().next().unwrap_or(""), &vars);
    }

    let _ = parse_trigger(dockerfile);
    let Ok(df) = parse(dockerfile) else { return };
    let build_args: BuildArgs = [("A", "1"), ("HTTP_PROXY", "p"), ("TARGETARCH", "arm64")].into_iter().collect();
    let amd64 = Platform::new("linux", "amd64", None);
    let Ok(global) = GlobalScope::new(&df, &build_args, &amd64, &amd64, None) else { return };
    let mut scopes: Vec<StageScope<'_>> = Vec::new();
    for (i, stage) in df.stages.iter().enumerate() {
        let base = global.expand_from(&stage.from.node).map(|(image, _)| df.base_of(i, &image));
        let mut scope = match base {
            Ok(BaseRef::Stage(p)) if p < scopes.len() => scopes[p].child(),
            _ => StageScope::new(&["PATH=/bin", "A=base"], &global, &build_args),
        };
        for ins in &stage.instructions {
            let printed = ins.node.to_string();
            let _ = parse_trigger(&printed);
            let _ = scope.expand_instruction(&ins.node);
            let _ = scope.apply(&ins.node);
            let _ = scope.run_env();
        }
        let _ = scope.image_env();
        scopes.push(scope);
    }
    let _ = build_args.unused();
});
