use std::time::Duration;

use proptest::prelude::*;

use crate::*;

fn reparse(i: &Instruction) -> Result<Instruction, String> {
    let text = format!("FROM scratch\n{i}\n");
    let df = parse(&text).map_err(|e| format!("{e}\n--- text ---\n{text}"))?;
    match df.stages[0].instructions.as_slice() {
        [one] => Ok(one.node.clone()),
        other => Err(format!("{} instructions from\n{text}", other.len())),
    }
}

/// A word every instruction accepts unchanged: no blanks, quotes, escapes or heredoc marks.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_./:@+-]{1,8}",
        1 => "--[a-z]{0,3}",
        1 => "\\$[A-Z]{1,3}",
        1 => "\\$\\{[A-Z]{1,3}:-[a-z]{0,3}\\}",
    ]
}

fn words(max: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(word(), 1..=max)
}

/// A shell command line: words, never starting with `[` and never ending in the escape.
fn line() -> impl Strategy<Value = String> {
    words(4).prop_map(|w| w.join(" "))
}

/// Any strings, for JSON forms that are never expanded.
fn any_strings() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[ -~\u{e9}\u{1f600}]{0,8}", 0..4)
}

/// Strings JSON forms may carry into fields that are expanded.
fn json_words() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-zA-Z0-9_./ -]{1,8}", 1..4)
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        any_strings().prop_map(Command::Exec),
        line().prop_map(Command::Shell)
    ]
}

fn flag_value() -> impl Strategy<Value = String> {
    "[a-z0-9=,/ \"'\\\\]{1,10}"
}

fn heredoc_files() -> impl Strategy<Value = Vec<HeredocFile>> {
    prop::collection::vec(
        (
            "[A-Z]{1,4}",
            prop::collection::vec("[a-z ]{0,6}", 0..3),
            any::<bool>(),
        )
            .prop_map(|(name, lines, expand)| HeredocFile {
                name,
                content: lines.iter().map(|l| format!("{l}\n")).collect(),
                expand,
            }),
        0..3,
    )
    // Docker finds bodies by delimiter, so two heredocs of one name share the last body.
    .prop_filter("distinct delimiters", |hs| {
        hs.iter()
            .enumerate()
            .all(|(i, h)| hs[..i].iter().all(|o| o.name != h.name))
    })
}

fn pairs() -> impl Strategy<Value = Vec<KeyValue>> {
    prop_oneof![
        ("[A-Za-z_][A-Za-z0-9_]{0,5}", line()).prop_map(|(key, value)| vec![KeyValue {
            key,
            value,
            legacy: true
        }]),
        prop::collection::vec(
            (
                "[A-Za-z_][A-Za-z0-9_.]{0,5}",
                prop_oneof![word(), Just(String::new()), "\"[a-z ]{0,6}\""]
            ),
            1..4
        )
        .prop_map(|kv| kv
            .into_iter()
            .map(|(key, value)| KeyValue {
                key,
                value,
                legacy: false
            })
            .collect()),
    ]
}

fn duration() -> impl Strategy<Value = Option<Duration>> {
    prop_oneof![
        Just(None),
        Just(Some(Duration::ZERO)),
        (1u64..10_000_000).prop_map(|ms| Some(Duration::from_millis(ms)))
    ]
}

fn simple() -> impl Strategy<Value = Instruction> {
    prop_oneof![
        (
            prop::collection::vec(flag_value(), 0..3),
            proptest::option::of("[a-z]{1,6}"),
            command()
        )
            .prop_map(|(mounts, network, command)| {
                Instruction::Run(Run {
                    mounts,
                    network,
                    security: None,
                    command,
                    heredocs: vec![],
                })
            }),
        command().prop_map(Instruction::Cmd),
        command().prop_map(Instruction::Entrypoint),
        (
            proptest::option::of("[a-z][a-z0-9]{0,5}"),
            proptest::option::of(flag_value()),
            proptest::option::of("[0-7]{3,4}"),
            any::<(bool, bool)>(),
            prop::collection::vec(flag_value(), 0..2),
            prop_oneof![
                words(3).prop_map(|w| (w, false)),
                json_words().prop_map(|w| (w, true))
            ],
            heredoc_files(),
        )
            .prop_map(
                |(from, chown, chmod, (link, parents), exclude, (mut srcs, json), heredocs)| {
                    let dest = srcs.pop().unwrap_or_else(|| "/d".into());
                    let heredocs = if json { vec![] } else { heredocs };
                    let srcs = if srcs.is_empty() && heredocs.is_empty() {
                        vec!["src".to_string()]
                    } else {
                        srcs
                    };
                    let chown = chown.filter(|c| !c.contains(['"', '\'', '\\']));
                    Instruction::Copy(Copy {
                        from,
                        chown,
                        chmod,
                        link,
                        parents,
                        exclude,
                        sources: srcs,
                        dest,
                        heredocs,
                        json,
                    })
                }
            ),
        (
            any::<(bool, bool)>(),
            proptest::option::of(any::<bool>()),
            words(3),
            heredoc_files()
        )
            .prop_map(|((link, keep_git_dir), unpack, mut srcs, heredocs)| {
                let dest = srcs.pop().unwrap_or_else(|| "/d".into());
                Instruction::Add(Add {
                    chown: None,
                    chmod: None,
                    link,
                    keep_git_dir,
                    checksum: Some("sha256:abc".into()),
                    unpack,
                    exclude: vec![],
                    sources: if srcs.is_empty() && heredocs.is_empty() {
                        vec!["s".into()]
                    } else {
                        srcs
                    },
                    dest,
                    heredocs,
                    json: false,
                })
            }),
        pairs().prop_map(Instruction::Env),
        pairs().prop_map(Instruction::Label),
        prop::collection::vec(
            ("[A-Za-z_][A-Za-z0-9_]{0,5}", proptest::option::of(word())),
            1..4
        )
        .prop_map(|d| Instruction::Arg(
            d.into_iter()
                .map(|(name, default)| ArgDecl { name, default })
                .collect()
        )),
        line().prop_map(Instruction::Maintainer),
        words(3).prop_map(Instruction::Expose),
        line().prop_map(Instruction::User),
        line().prop_map(Instruction::Workdir),
        word().prop_map(Instruction::Stopsignal),
        json_words().prop_map(|v| Instruction::Volume(
            v.into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .chain(["/v".to_string()])
                .collect()
        )),
        any_strings()
            .prop_filter("SHELL needs an argument", |v| !v.is_empty())
            .prop_map(Instruction::Shell),
        Just(Instruction::Healthcheck(Healthcheck::None)),
        (
            duration(),
            duration(),
            duration(),
            duration(),
            proptest::option::of(0u32..1000),
            command()
        )
            .prop_filter(
                "HEALTHCHECK CMD needs a command",
                |t| !matches!(&t.5, Command::Exec(v) if v.is_empty())
            )
            .prop_map(
                |(interval, timeout, start_period, start_interval, retries, cmd)| {
                    Instruction::Healthcheck(Healthcheck::Cmd {
                        interval,
                        timeout,
                        start_period,
                        start_interval,
                        retries,
                        cmd,
                    })
                }
            ),
    ]
}

fn instruction() -> impl Strategy<Value = Instruction> {
    prop_oneof![
        6 => simple(),
        1 => simple()
            .prop_filter("a trigger without heredocs, not MAINTAINER", |i| {
                !matches!(i, Instruction::Copy(c) if !c.heredocs.is_empty())
                    && !matches!(i, Instruction::Add(a) if !a.heredocs.is_empty())
                    && !matches!(i, Instruction::Maintainer(_))
            })
            .prop_map(|t| Instruction::Onbuild(Onbuild { expression: t.to_string(), trigger: Box::new(t) })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn printed_instructions_parse_back(i in instruction()) {
        prop_assert_eq!(reparse(&i).map_err(TestCaseError::fail)?, i);
    }
}

#[test]
fn run_heredocs_print_with_their_bodies() {
    let df = parse("FROM a\nRUN --mount=type=cache,target=/x\\ y <<A cat\nline\nA\n").unwrap();
    let i = &df.stages[0].instructions[0].node;
    assert_eq!(
        i.to_string(),
        "RUN --mount=\"type=cache,target=/x y\" <<A cat\nline\nA"
    );
    assert_eq!(reparse(i).unwrap(), *i);
}

#[test]
fn arguments_that_look_like_flags_survive() {
    for i in [
        Instruction::Maintainer("--".into()),
        Instruction::User("--x".into()),
        Instruction::Expose(vec!["--80".into()]),
        Instruction::Cmd(Command::Shell("--help".into())),
    ] {
        assert_eq!(reparse(&i).unwrap(), i);
    }
}

#[test]
fn stages_print_as_dockerfiles() {
    let text = "FROM --platform=linux/amd64 alpine AS base\nENV A=1\nFROM base\nCMD [\"sh\"]";
    let df = parse(text).unwrap();
    let printed: Vec<String> = df.stages.iter().map(ToString::to_string).collect();
    assert_eq!(printed.join("\n"), text);
}
