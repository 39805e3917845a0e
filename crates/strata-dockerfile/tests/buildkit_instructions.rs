//! The table tests of BuildKit's `frontend/dockerfile/instructions` (parse_test.go,
//! parse_heredoc_test.go), translated to data, run against strata-dockerfile's parser.

mod common;

use common::{cases, same, str_of, strings, Suite};
use serde_json::Value;
use strata_dockerfile::{parse, Command, Instruction};

const LIST: &str = "buildkit/differences.json";

fn check(c: &Value) -> Result<(), String> {
    let text = str_of(c, "dockerfile");
    let text = if text.to_ascii_uppercase().starts_with("FROM") {
        text.to_string()
    } else {
        format!("FROM scratch\n{text}")
    };
    let parsed = std::panic::catch_unwind(|| parse(&text))
        .map_err(|_| format!("{text:?}: the parser panicked"))?;
    if c["no_panic"].as_bool() == Some(true) {
        return Ok(());
    }
    if let Some(want) = c["error"].as_str() {
        return match parsed {
            Ok(_) => Err(format!(
                "{text:?}: parsed, expected an error saying {want:?}"
            )),
            Err(e) if e.to_string().contains(want) => Ok(()),
            Err(e) => Err(format!(
                "{text:?}: error {:?} does not say {want:?}",
                e.kind.to_string()
            )),
        };
    }
    let df = parsed.map_err(|e| format!("{text:?}: {e}"))?;
    let instr = &df
        .stages
        .last()
        .ok_or("no stage")?
        .instructions
        .last()
        .ok_or("no instruction")?
        .node;
    if let Some(test) = c.get("healthcheck_test") {
        let Instruction::Healthcheck(h) = instr else {
            return Err(format!("{text:?}: not a HEALTHCHECK"));
        };
        return same("Healthcheck.Test", strings(test), h.test());
    }
    if let Some(want) = c.get("copy") {
        let Instruction::Copy(cp) = instr else {
            return Err(format!("{text:?}: not a COPY"));
        };
        same("DestPath", str_of(want, "dest"), cp.dest.as_str())?;
        same("SourcePaths", strings(&want["sources"]), cp.sources.clone())?;
        let contents: Vec<(String, String, bool)> = want["contents"]
            .as_array()
            .expect("contents")
            .iter()
            .map(|s| {
                (
                    str_of(s, "path").into(),
                    str_of(s, "data").into(),
                    s["expand"].as_bool().expect("expand"),
                )
            })
            .collect();
        let got = cp
            .heredocs
            .iter()
            .map(|h| (h.name.clone(), h.content.clone(), h.expand))
            .collect();
        return same("SourceContents", contents, got);
    }
    if let Some(want) = c.get("run") {
        let Instruction::Run(r) = instr else {
            return Err(format!("{text:?}: not a RUN"));
        };
        let (shell, cmdline) = match &r.command {
            Command::Exec(v) => (false, v.clone()),
            Command::Shell(s) => (true, vec![s.clone()]),
        };
        same(
            "PrependShell",
            want["shell"].as_bool().expect("shell"),
            shell,
        )?;
        same("CmdLine", strings(&want["command"]), cmdline)?;
        if let Some(m) = want.get("mounts") {
            same("mounts", strings(m), r.mounts.clone())?;
        }
        let files: Vec<(String, String, bool)> = want["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| {
                (
                    str_of(f, "name").into(),
                    str_of(f, "data").into(),
                    f["chomp"].as_bool().expect("chomp"),
                )
            })
            .collect();
        let got = r
            .heredocs
            .iter()
            .map(|h| (h.name.clone(), h.content.clone(), h.chomp))
            .collect();
        return same("Files", files, got);
    }
    panic!("case without an expectation: {c}");
}

#[test]
fn instruction_tables() {
    let mut suite = Suite::new(LIST, "instructions");
    for c in cases("buildkit/instructions/instructions.json") {
        suite.record(str_of(&c, "id"), check(&c));
    }
    suite.finish();
}
