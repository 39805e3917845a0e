//! BuildKit's parser test data (`frontend/dockerfile/parser`): every `testfiles/*/Dockerfile`
//! parsed by strata-dockerfile and written back in BuildKit's AST dump format must equal the
//! `result` file beside it; every `testfiles-negative/*/Dockerfile` must be refused; and the
//! heredoc tables of parser_heredoc_test.go must find the same heredocs.

mod common;

use std::time::Duration;

use common::{cases, data, read, same, str_of, strings, Suite};
use strata_dockerfile::{parse, Command, Dockerfile, Healthcheck, Instruction};

const LIST: &str = "buildkit/differences.json";

/// Go's `strconv.Quote`.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0b' => out.push_str("\\v"),
            '\x0c' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `time.Duration.String` for the whole seconds and milliseconds flags use.
fn go_duration(d: Duration) -> String {
    match (d.as_secs(), d.subsec_millis()) {
        (0, 0) => "0s".into(),
        (s, 0) => format!("{s}s"),
        (0, ms) => format!("{ms}ms"),
        (s, ms) => format!("{s}.{ms:03}s"),
    }
}

/// Flags as BuildKit lists them: in the order they are written in the instruction.
fn ordered_flags(original: &str, mut flags: Vec<(String, String)>) -> Vec<String> {
    flags.sort_by_key(|(name, _)| original.find(&format!("--{name}")).unwrap_or(usize::MAX));
    flags
        .into_iter()
        .map(|(n, v)| format!("--{n}={v}"))
        .collect()
}

fn command_args(c: &Command) -> Vec<String> {
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) if s.is_empty() => Vec::new(),
        Command::Shell(s) => vec![s.clone()],
    }
}

/// One instruction as BuildKit's `Node.Dump` writes it (without the parentheses).
fn node(i: &Instruction, original: &str) -> String {
    let mut flags: Vec<(String, String)> = Vec::new();
    let mut opt = |name: &str, v: &Option<String>| {
        if let Some(v) = v {
            flags.push((name.to_string(), v.clone()));
        }
    };
    let args: Vec<String> = match i {
        Instruction::Run(r) => {
            r.mounts.iter().for_each(|m| opt("mount", &Some(m.clone())));
            opt("network", &r.network);
            opt("security", &r.security);
            command_args(&r.command)
        }
        Instruction::Cmd(c) | Instruction::Entrypoint(c) => command_args(c),
        Instruction::Copy(c) => {
            opt("from", &c.from);
            opt("chown", &c.chown);
            opt("chmod", &c.chmod);
            let mut a = c.sources.clone();
            a.extend(c.heredocs.iter().map(|h| format!("<<{}", h.name)));
            a.push(c.dest.clone());
            a
        }
        Instruction::Add(c) => {
            opt("chown", &c.chown);
            opt("chmod", &c.chmod);
            opt("checksum", &c.checksum);
            let mut a = c.sources.clone();
            a.extend(c.heredocs.iter().map(|h| format!("<<{}", h.name)));
            a.push(c.dest.clone());
            a
        }
        Instruction::Env(kv) | Instruction::Label(kv) => kv
            .iter()
            .flat_map(|p| {
                [
                    p.key.clone(),
                    p.value.clone(),
                    if p.legacy { "" } else { "=" }.into(),
                ]
            })
            .collect(),
        Instruction::Arg(decls) => decls
            .iter()
            .map(|d| match &d.default {
                Some(v) => format!("{}={v}", d.name),
                None => d.name.clone(),
            })
            .collect(),
        Instruction::Maintainer(s)
        | Instruction::User(s)
        | Instruction::Workdir(s)
        | Instruction::Stopsignal(s) => vec![s.clone()],
        Instruction::Expose(v) | Instruction::Volume(v) | Instruction::Shell(v) => v.clone(),
        Instruction::Healthcheck(Healthcheck::None) => vec!["NONE".into()],
        Instruction::Healthcheck(Healthcheck::Cmd {
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
            cmd,
        }) => {
            for (name, d) in [
                ("interval", interval),
                ("timeout", timeout),
                ("start-period", start_period),
                ("start-interval", start_interval),
            ] {
                opt(name, &d.map(go_duration));
            }
            opt("retries", &retries.map(|r| r.to_string()));
            let mut a = vec!["CMD".to_string()];
            a.extend(command_args(cmd));
            a
        }
        Instruction::Onbuild(o) => {
            let inner = node(&o.trigger, &o.expression);
            return format!("onbuild ({inner})");
        }
    };
    let mut out = i.keyword().to_ascii_lowercase();
    let flags = ordered_flags(original, flags);
    if !flags.is_empty() {
        let quoted: Vec<String> = flags.iter().map(|f| quote(f)).collect();
        out += &format!(" [{}]", quoted.join(" "));
    }
    for a in args {
        out.push(' ');
        out += &quote(&a);
    }
    out
}

/// The whole file as BuildKit's `result` files hold it.
fn dump(df: &Dockerfile) -> String {
    let mut lines: Vec<String> = Vec::new();
    for a in &df.global_args {
        lines.push(node(&Instruction::Arg(a.node.clone()), &a.original));
    }
    for s in &df.stages {
        let mut from = format!("from {}", quote(&s.from.node.image));
        if let Some(p) = &s.from.node.platform {
            from = format!(
                "from [{}] {}",
                quote(&format!("--platform={p}")),
                quote(&s.from.node.image)
            );
        }
        if let Some(name) = &s.name {
            from += &format!(" \"AS\" {}", quote(name));
        }
        lines.push(from);
        for i in &s.instructions {
            lines.push(node(&i.node, &i.original));
        }
    }
    lines.iter().map(|l| format!("({l})\n")).collect()
}

fn compare(
    got: Result<String, strata_dockerfile::ParseError>,
    expected: &str,
) -> Result<(), String> {
    let got = got.map_err(|e| format!("refused: {e}"))?;
    if got == expected {
        return Ok(());
    }
    let diff: Vec<String> = expected
        .lines()
        .zip(got.lines().chain(std::iter::repeat("<missing>")))
        .filter(|(e, g)| e != g)
        .map(|(e, g)| format!("expected {e}\n      got {g}"))
        .take(3)
        .collect();
    Err(diff.join("\n    "))
}

fn dirs(rel: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn testfiles() {
    let mut suite = Suite::new(LIST, "parser/testfiles");
    for name in dirs("buildkit/parser/testfiles") {
        let dir = data("buildkit/parser/testfiles").join(&name);
        let text = std::fs::read_to_string(dir.join("Dockerfile")).expect("Dockerfile");
        let expected = std::fs::read_to_string(dir.join("result")).expect("result");
        suite.record(&name, compare(parse(&text).map(|df| dump(&df)), &expected));
        // A file without FROM is refused by BuildKit's instruction stage as by strata (listed
        // once); its lines are still worth comparing inside a stage.
        if !expected.contains("(from ") {
            let in_stage = parse(&format!("FROM scratch\n{text}"))
                .map(|df| dump(&df).replacen("(from \"scratch\")\n", "", 1));
            suite.record(
                format!("{name} (after FROM scratch)"),
                compare(in_stage, &expected),
            );
        }
    }
    suite.finish();
}

#[test]
fn testfiles_negative() {
    let mut suite = Suite::new(LIST, "parser/testfiles-negative");
    for name in dirs("buildkit/parser/testfiles-negative") {
        let path = data("buildkit/parser/testfiles-negative")
            .join(&name)
            .join("Dockerfile");
        let text = std::fs::read_to_string(path).expect("Dockerfile");
        let outcome = match parse(&text) {
            Ok(_) => Err("parsed, but BuildKit refuses it".to_string()),
            Err(_) => Ok(()),
        };
        suite.record(name, outcome);
    }
    suite.finish();
}

/// `TestHeredocsFromLine` and `TestParseJSONHeredoc`: the heredocs read for a RUN line, each
/// closed by a line holding its name.
#[test]
fn heredocs_from_line() {
    let mut suite = Suite::new(LIST, "parser/heredoc.json");
    for c in cases("buildkit/parser/heredoc.json") {
        let line = str_of(&c, "line");
        let want = strings(&c["heredocs"]);
        let text = format!(
            "FROM scratch\n{line}\n{}",
            want.iter().map(|n| format!("{n}\n")).collect::<String>()
        );
        let outcome = match parse(&text) {
            Err(e) => Err(format!("{line:?}: {e}")),
            Ok(df) => match &df.stages[0].instructions[0].node {
                Instruction::Run(r) => same(
                    line,
                    want.clone(),
                    r.heredocs.iter().map(|h| h.name.clone()).collect(),
                ),
                other => Err(format!("{line:?}: parsed as {}", other.keyword())),
            },
        };
        suite.record(str_of(&c, "id"), outcome);
    }
    suite.finish();
}

/// The other tables of parser_test.go: line spans, empty-continuation warnings, the line
/// length limit, and `parseWords` (the words of ARG, ENV and LABEL).
#[test]
fn parser_test_tables() {
    let mut suite = Suite::new(LIST, "parser/parser.json");
    for c in cases("buildkit/parser/parser.json") {
        let outcome = if let Some(file) = c["file"].as_str() {
            parse(&read(file))
                .map_err(|e| e.to_string())
                .and_then(|df| {
                    let mut spans: Vec<Vec<usize>> = Vec::new();
                    for s in &df.stages {
                        spans.push(vec![s.from.span.line, s.from.span.end_line]);
                        spans.extend(
                            s.instructions
                                .iter()
                                .map(|i| vec![i.span.line, i.span.end_line]),
                        );
                    }
                    let want: Vec<Vec<usize>> =
                        serde_json::from_value(c["spans"].clone()).expect("spans");
                    same("spans", want, spans)
                })
        } else if let Some(text) = c["dockerfile"].as_str() {
            parse(text).map_err(|e| e.to_string()).and_then(|df| {
                let want = strings(&c["warnings"]);
                let got: Vec<&str> = df.warnings.iter().map(|w| w.message.as_str()).collect();
                match want
                    .iter()
                    .find(|w| !got.iter().any(|g| g.contains(w.as_str())))
                {
                    _ if got.len() != want.len() => {
                        Err(format!("warnings: expected {want:?}, got {got:?}"))
                    }
                    Some(w) => Err(format!("no warning names {w:?}: {got:?}")),
                    None => Ok(()),
                }
            })
        } else if let Some(template) = c["template"].as_str() {
            let fill =
                str_of(&c, "fill").repeat(c["fill_len"].as_u64().expect("fill_len") as usize);
            match parse(&template.replace("%s", &fill)) {
                Ok(_) => Err("parsed a line over BuildKit's line limit".to_string()),
                Err(e) if e.to_string().contains("65535") => Ok(()),
                Err(e) => Err(format!("error does not name the 65535-byte limit: {e}")),
            }
        } else if let Some(arg) = c["cmd"].as_str() {
            match (
                parse(&format!("FROM scratch\nCMD {arg}\n")),
                c["error"].as_str(),
            ) {
                (Err(e), Some(want)) if e.to_string().contains(want) => Ok(()),
                (Err(e), _) => Err(format!("CMD {arg}: {e}")),
                (Ok(_), Some(want)) => Err(format!("CMD {arg}: parsed, expected {want:?}")),
                (Ok(df), None) => match &df.stages[0].instructions[0].node {
                    Instruction::Cmd(Command::Exec(argv)) => {
                        same(arg, strings(&c["exec"]), argv.clone())
                    }
                    other => Err(format!("CMD {arg}: not exec form: {other:?}")),
                },
            }
        } else if let Some(instr) = c["instruction"].as_str() {
            match (
                parse(&format!("FROM scratch\n{instr}\n")),
                c["error"].as_str(),
            ) {
                (Err(e), Some(want)) if e.to_string().contains(want) => Ok(()),
                (Err(e), _) => Err(format!("{instr}: {e}")),
                (Ok(_), Some(want)) => Err(format!("{instr}: parsed, expected {want:?}")),
                (Ok(df), None) => {
                    let i = &df.stages[0].instructions[0];
                    same(
                        instr,
                        str_of(&c, "dump").to_string(),
                        format!("({})", node(&i.node, &i.original)),
                    )
                }
            }
        } else if let Some(lines) = c["directives"].as_str() {
            parse(&format!("{lines}FROM scratch\n"))
                .map_err(|e| e.to_string())
                .and_then(|df| {
                    same(
                        "escape",
                        str_of(&c, "escape"),
                        df.escape.to_string().as_str(),
                    )
                })
        } else {
            let words = str_of(&c, "words");
            parse(&format!("FROM scratch\nARG {words}\n"))
                .map_err(|e| e.to_string())
                .and_then(|df| match &df.stages[0].instructions[0].node {
                    Instruction::Arg(decls) => same(
                        words,
                        strings(&c["expect"]),
                        decls
                            .iter()
                            .map(|d| match &d.default {
                                Some(v) => format!("{}={v}", d.name),
                                None => d.name.clone(),
                            })
                            .collect(),
                    ),
                    other => Err(format!("parsed as {}", other.keyword())),
                })
        };
        suite.record(str_of(&c, "id"), outcome);
    }
    suite.finish();
}
