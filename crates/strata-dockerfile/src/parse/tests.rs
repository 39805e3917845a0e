use std::time::Duration;

use crate::*;

/// The only instruction of `FROM scratch` + `text`.
fn one(text: &str) -> Instruction {
    let df = parse(&format!("FROM scratch\n{text}")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(df.stages[0].instructions.len(), 1, "{text:?}");
    df.stages[0].instructions[0].node.clone()
}

fn err(text: &str) -> ParseError {
    parse(text).expect_err(text)
}

fn shell(s: &str) -> Command {
    Command::Shell(s.to_string())
}

fn exec(v: &[&str]) -> Command {
    Command::Exec(v.iter().map(|s| s.to_string()).collect())
}

#[test]
fn stages_names_and_global_args() {
    let df = parse(
        "ARG CODE_VERSION=latest\nARG X\nFROM base:${CODE_VERSION} AS Build\nCMD /code/run-app\n\nfrom extras:${CODE_VERSION}\nCMD /code/run-extras\n",
    )
    .unwrap();
    assert_eq!(df.global_args.len(), 2);
    assert_eq!(
        df.global_args[0].node,
        [ArgDecl {
            name: "CODE_VERSION".into(),
            default: Some("latest".into())
        }]
    );
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[0].from.node.image, "base:${CODE_VERSION}");
    assert_eq!(df.stages[0].name.as_deref(), Some("build"));
    assert_eq!(df.stages[1].name, None);
    assert_eq!(
        df.stages[1].instructions[0].node,
        Instruction::Cmd(shell("/code/run-extras"))
    );
}

#[test]
fn keywords_are_case_insensitive_and_flags_kept() {
    let df = parse("from --platform=$BUILDPLATFORM golang AS b\nrun --mount=type=cache,target=/root/.cache --mount=type=secret,id=x --network=none go build\n").unwrap();
    assert_eq!(
        df.stages[0].from.node.platform.as_deref(),
        Some("$BUILDPLATFORM")
    );
    let Instruction::Run(r) = &df.stages[0].instructions[0].node else {
        panic!()
    };
    assert_eq!(
        r.mounts,
        ["type=cache,target=/root/.cache", "type=secret,id=x"]
    );
    assert_eq!(r.network.as_deref(), Some("none"));
    assert_eq!(r.command, shell("go build"));
}

#[test]
fn escape_directive_reference_example() {
    let df = parse("# escape=`\n\nFROM mcr.microsoft.com/windows/servercore\nCOPY testfile.txt c:\\\nRUN dir c:\\\n").unwrap();
    assert_eq!(df.escape, '`');
    let ins = &df.stages[0].instructions;
    let Instruction::Copy(c) = &ins[0].node else {
        panic!()
    };
    assert_eq!(
        (c.sources.as_slice(), c.dest.as_str()),
        (&["testfile.txt".to_string()][..], "c:\\")
    );
    assert_eq!(
        ins[1].node,
        Instruction::Run(Run {
            command: shell("dir c:\\"),
            ..run_default()
        })
    );
    // With the default escape, an escaped backslash at the end is no continuation.
    let df = parse("FROM x\nCOPY testfile.txt c:\\\\\nRUN dir c:\n").unwrap();
    assert_eq!(df.stages[0].instructions.len(), 2);
}

fn run_default() -> Run {
    Run {
        mounts: vec![],
        network: None,
        security: None,
        command: shell(""),
        heredocs: vec![],
    }
}

#[test]
fn directives_are_recorded_and_end_at_the_first_other_line() {
    let df = parse("# syntax=docker/dockerfile:1.7\n# check=skip=all\nFROM a\n").unwrap();
    assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1.7"));
    assert_eq!(df.check.as_deref(), Some("skip=all"));
    let df = parse("FROM a\n# escape=`\nRUN a \\\n b\n").unwrap();
    assert_eq!(df.escape, '\\');
    assert_eq!(
        df.stages[0].instructions[0].node,
        Instruction::Run(Run {
            command: shell("a  b"),
            ..run_default()
        })
    );
}

#[test]
fn comments_and_blank_lines_inside_continuations() {
    let df =
        parse("FROM a\nRUN apt-get update \\\n  # a comment\n\n  && apt-get install -y curl\n")
            .unwrap();
    assert_eq!(
        df.stages[0].instructions[0].node,
        Instruction::Run(Run {
            command: shell("apt-get update   && apt-get install -y curl"),
            ..run_default()
        })
    );
    assert_eq!(df.warnings.len(), 1);
    assert_eq!(df.warnings[0].line, 2);
}

#[test]
fn exec_form_and_fallback_to_shell() {
    assert_eq!(
        one("CMD [\"nginx\", \"-g\", \"daemon off;\"]"),
        Instruction::Cmd(exec(&["nginx", "-g", "daemon off;"]))
    );
    // Not valid JSON (single quotes): Docker runs it with the shell as written.
    assert_eq!(
        one("RUN [ \"echo\", 'x' ]"),
        Instruction::Run(Run {
            command: shell("[ \"echo\", 'x' ]"),
            ..run_default()
        })
    );
    assert_eq!(
        one("ENTRYPOINT [\"a\"] trailing"),
        Instruction::Entrypoint(shell("[\"a\"] trailing"))
    );
    assert_eq!(one("ENTRYPOINT []"), Instruction::Entrypoint(exec(&[])));
    assert_eq!(one("CMD"), Instruction::Cmd(shell("")));
    let e = err("FROM a\nCMD [\"a\", 1]\n");
    assert_eq!(e.kind, ErrorKind::NotStringArray { instruction: "CMD" });
    assert_eq!((e.line, e.column), (2, 5));
}

#[test]
fn env_forms_from_the_reference() {
    let Instruction::Env(p) =
        one("ENV MY_NAME=\"John Doe\" MY_DOG=Rex\\ The\\ Dog \\\n    MY_CAT=fluffy")
    else {
        panic!()
    };
    let kv: Vec<(&str, &str, bool)> = p
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str(), p.legacy))
        .collect();
    assert_eq!(
        kv,
        [
            ("MY_NAME", "\"John Doe\"", false),
            ("MY_DOG", "Rex\\ The\\ Dog", false),
            ("MY_CAT", "fluffy", false)
        ]
    );
    let Instruction::Env(p) = one("ENV MY_VAR my-value") else {
        panic!()
    };
    assert_eq!(
        (p[0].key.as_str(), p[0].value.as_str(), p[0].legacy),
        ("MY_VAR", "my-value", true)
    );
    // The old form takes the whole rest of the line as the value.
    let Instruction::Env(p) = one("ENV ONE TWO= THREE=world") else {
        panic!()
    };
    assert_eq!((p.len(), p[0].value.as_str()), (1, "TWO= THREE=world"));
    assert!(err("FROM a\nENV ONLYKEY\n")
        .to_string()
        .contains("ENV must have two arguments"));
    assert!(err("FROM a\nENV a=1 b\n")
        .to_string()
        .contains("can't find = in \"b\""));
    assert!(err("FROM a\nENV =x\n")
        .to_string()
        .contains("ENV names can not be blank"));
}

#[test]
fn label_arg_expose_volume_and_simple_instructions() {
    let Instruction::Label(l) =
        one("LABEL \"com.example.vendor\"=\"ACME Incorporated\" version=1.0")
    else {
        panic!()
    };
    assert_eq!(
        (l[0].key.as_str(), l[0].value.as_str()),
        ("\"com.example.vendor\"", "\"ACME Incorporated\"")
    );
    assert_eq!(
        one("ARG user1 buildno=1 empty="),
        Instruction::Arg(vec![
            ArgDecl {
                name: "user1".into(),
                default: None
            },
            ArgDecl {
                name: "buildno".into(),
                default: Some("1".into())
            },
            ArgDecl {
                name: "empty".into(),
                default: Some(String::new())
            },
        ])
    );
    assert_eq!(
        one("EXPOSE 80/tcp ${PORT} 53/udp"),
        Instruction::Expose(vec!["80/tcp".into(), "${PORT}".into(), "53/udp".into()])
    );
    assert_eq!(
        one("VOLUME [\"/data\", \"/logs\"]"),
        Instruction::Volume(vec!["/data".into(), "/logs".into()])
    );
    assert_eq!(
        one("VOLUME /var/log /var/db"),
        Instruction::Volume(vec!["/var/log".into(), "/var/db".into()])
    );
    assert_eq!(one("USER app:app"), Instruction::User("app:app".into()));
    assert_eq!(
        one("WORKDIR /path to/dir"),
        Instruction::Workdir("/path to/dir".into())
    );
    assert_eq!(
        one("STOPSIGNAL SIGTERM"),
        Instruction::Stopsignal("SIGTERM".into())
    );
    assert_eq!(
        one("MAINTAINER Jane <jane@example.com>"),
        Instruction::Maintainer("Jane <jane@example.com>".into())
    );
    assert_eq!(
        one("SHELL [\"powershell\", \"-command\"]"),
        Instruction::Shell(vec!["powershell".into(), "-command".into()])
    );
}

#[test]
fn copy_and_add_flags_and_forms() {
    let Instruction::Copy(c) = one(
        "COPY --from=build --chown=app:app --chmod=755 --link --exclude=*.md --exclude=x a b /dst/",
    ) else {
        panic!()
    };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("app:app"));
    assert_eq!(c.chmod.as_deref(), Some("755"));
    assert!(c.link && !c.parents && !c.json);
    assert_eq!(c.exclude, ["*.md", "x"]);
    assert_eq!(
        (c.sources.as_slice(), c.dest.as_str()),
        (&["a".to_string(), "b".to_string()][..], "/dst/")
    );
    let Instruction::Copy(c) = one("COPY [\"my file\", \"/d st/\"]") else {
        panic!()
    };
    assert!(c.json);
    assert_eq!(
        (c.sources[0].as_str(), c.dest.as_str()),
        ("my file", "/d st/")
    );
    let Instruction::Add(a) =
        one("ADD --checksum=sha256:abc --keep-git-dir=true --unpack=false https://x/y.tgz /")
    else {
        panic!()
    };
    assert_eq!(
        (a.checksum.as_deref(), a.keep_git_dir, a.unpack),
        (Some("sha256:abc"), true, Some(false))
    );
    assert!(err("FROM a\nCOPY onlyone\n")
        .to_string()
        .contains("COPY requires at least two arguments"));
}

#[test]
fn copy_from_refuses_variables() {
    let e = err("FROM a\nCOPY --from=${STAGE} /x /y\n");
    assert!(
        e.to_string()
            .contains("variable expansion is not supported for --from"),
        "{e}"
    );
    assert_eq!((e.line, e.column), (2, 6));
}

/// BuildKit allows blanks between `<<` and the delimiter (its lexer keeps `<<` and the
/// blanks after it one word), but not between `<<-` and the delimiter.
#[test]
fn heredocs_with_a_blank_after_the_arrows() {
    let Instruction::Run(r) = one("RUN << EOF\necho hi\nEOF") else {
        panic!()
    };
    assert_eq!(r.script(), RunScript::Shell("echo hi\n".into()));
    let Instruction::Run(r) = one("RUN cat <<  'EOF' > /f\n$x\nEOF") else {
        panic!()
    };
    assert_eq!(
        (r.heredocs[0].name.as_str(), r.heredocs[0].expand),
        ("EOF", false)
    );
    assert_eq!(
        r.script(),
        RunScript::Shell("cat <<  'EOF' > /f\n$x\nEOF".into())
    );
    // `<<- EOF` is two words there, so no heredoc: the body is read as instructions.
    let e = parse("FROM a\nRUN cat <<- EOF\nhello\nEOF\n").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Dockerfile:3:1: unknown instruction: hello"),
        "{e}"
    );
    // COPY splits its arguments on blanks, so `<<` and `EOF` are two source paths, as in
    // BuildKit, which still reads (and drops) the body the line announced.
    let df = parse("FROM a\nCOPY << EOF /d\nbody\nEOF\nRUN true\n").unwrap();
    let Instruction::Copy(c) = &df.stages[0].instructions[0].node else {
        panic!()
    };
    assert_eq!(
        (c.sources.clone(), c.heredocs.len()),
        (vec!["<<".to_string(), "EOF".to_string()], 0)
    );
    assert_eq!(df.stages[0].instructions.len(), 2);
}

#[test]
fn run_heredocs_from_the_reference() {
    let Instruction::Run(r) = one("RUN <<EOF\napt-get update\napt-get install -y curl\nEOF") else {
        panic!()
    };
    assert_eq!(
        r.script(),
        RunScript::Shell("apt-get update\napt-get install -y curl\n".into())
    );

    let Instruction::Run(r) = one("RUN <<EOT bash\n  set -ex\n  apt-get update\nEOT") else {
        panic!()
    };
    assert_eq!(
        r.script(),
        RunScript::Shell("<<EOT bash\n  set -ex\n  apt-get update\nEOT".into())
    );

    let Instruction::Run(r) = one("RUN <<EOT\n#!/usr/bin/env python\nprint(\"hello world\")\nEOT")
    else {
        panic!()
    };
    assert_eq!(
        r.script(),
        RunScript::Executable {
            name: "EOT".into(),
            content: "#!/usr/bin/env python\nprint(\"hello world\")\n".into()
        }
    );

    let Instruction::Run(r) = one(
        "RUN <<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2",
    ) else {
        panic!()
    };
    assert_eq!(r.heredocs.len(), 2);
    assert_eq!(
        (r.heredocs[0].name.as_str(), r.heredocs[0].content.as_str()),
        ("FILE1", "I am\nfirst\n")
    );
    assert_eq!(
        (r.heredocs[1].name.as_str(), r.heredocs[1].content.as_str()),
        ("FILE2", "I am\nsecond\n")
    );

    let Instruction::Run(r) = one("RUN <<-EOF\n\techo hi\n\tEOF") else {
        panic!()
    };
    assert!(r.heredocs[0].chomp);
    assert_eq!(r.script(), RunScript::Shell("echo hi\n".into()));
    // The shebang test looks at the body before tabs are stripped, as BuildKit does.
    let Instruction::Run(r) = one("RUN <<-EOF\n\t#!/bin/sh\n\techo hi\n\tEOF") else {
        panic!()
    };
    assert_eq!(r.script(), RunScript::Shell("#!/bin/sh\necho hi\n".into()));

    let Instruction::Run(r) = one("RUN [\"echo\", \"<<EOF\"]\n") else {
        panic!()
    };
    assert!(r.heredocs.is_empty());
    assert_eq!(
        r.script(),
        RunScript::Exec(vec!["echo".into(), "<<EOF".into()])
    );
}

#[test]
fn copy_heredocs_become_files() {
    let Instruction::Copy(c) = one("COPY <<robots.txt <<humans.txt /usr/share/nginx/html/\nUser-agent: *\nrobots.txt\nhello\nhumans.txt") else { panic!() };
    assert!(c.sources.is_empty());
    let files: Vec<(&str, &str, bool)> = c
        .heredocs
        .iter()
        .map(|h| (h.name.as_str(), h.content.as_str(), h.expand))
        .collect();
    assert_eq!(
        files,
        [
            ("robots.txt", "User-agent: *\n", true),
            ("humans.txt", "hello\n", true)
        ]
    );
    let Instruction::Copy(c) = one("COPY <<-\"EOT\" /script.sh\n\t  echo \"hello ${FOO}\"\nEOT")
    else {
        panic!()
    };
    assert_eq!(
        (c.heredocs[0].content.as_str(), c.heredocs[0].expand),
        ("  echo \"hello ${FOO}\"\n", false)
    );
    assert!(err("FROM a\nCOPY x <<EOF\nhi\nEOF\n")
        .to_string()
        .contains("cannot accept a heredoc as a destination"));
}

#[test]
fn healthcheck_forms() {
    assert_eq!(
        one("HEALTHCHECK NONE"),
        Instruction::Healthcheck(Healthcheck::None)
    );
    let Instruction::Healthcheck(h) = one("HEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s --start-interval=500ms --retries=3 CMD curl -f http://localhost/ || exit 1") else { panic!() };
    let Healthcheck::Cmd {
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
        ..
    } = &h
    else {
        panic!()
    };
    assert_eq!(*interval, Some(Duration::from_secs(300)));
    assert_eq!(*timeout, Some(Duration::from_secs(3)));
    assert_eq!(*start_period, Some(Duration::from_secs(90)));
    assert_eq!(*start_interval, Some(Duration::from_millis(500)));
    assert_eq!(*retries, Some(3));
    assert_eq!(
        h.test(),
        ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]
    );
    let Instruction::Healthcheck(h) = one("healthcheck cmd [\"/bin/check\", \"-q\"]") else {
        panic!()
    };
    assert_eq!(h.test(), ["CMD", "/bin/check", "-q"]);
    for (text, msg) in [
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        (
            "HEALTHCHECK PING x",
            "Unknown type \"PING\" in HEALTHCHECK (try CMD)",
        ),
        (
            "HEALTHCHECK --interval=1us CMD x",
            "cannot be less than 1ms",
        ),
        (
            "HEALTHCHECK --interval=soon CMD x",
            "--interval: invalid duration \"soon\"",
        ),
        (
            "HEALTHCHECK --retries=-1 CMD x",
            "--retries cannot be negative (-1)",
        ),
        (
            "HEALTHCHECK --bogus=1 CMD x",
            "unknown flag: --bogus for HEALTHCHECK",
        ),
    ] {
        let e = err(&format!("FROM a\n{text}\n"));
        assert!(e.to_string().contains(msg), "{text}: {e}");
    }
}

#[test]
fn onbuild_parses_its_trigger() {
    let Instruction::Onbuild(o) = one("ONBUILD ADD . /app/src") else {
        panic!()
    };
    assert_eq!(o.expression, "ADD . /app/src");
    assert!(matches!(*o.trigger, Instruction::Add(ref a) if a.dest == "/app/src"));
    let Instruction::Onbuild(o) = one("onbuild run <<EOF\necho $HOME\nEOF") else {
        panic!()
    };
    assert_eq!(o.expression, "run <<EOF\necho $HOME\nEOF");
    let fired = parse_trigger(&o.expression).unwrap();
    assert_eq!(fired.node, *o.trigger);
    for (text, msg) in [
        (
            "ONBUILD ONBUILD RUN x",
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
        ),
        ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
        (
            "ONBUILD maintainer me",
            "MAINTAINER isn't allowed as an ONBUILD trigger",
        ),
        ("ONBUILD", "ONBUILD requires at least one argument"),
        (
            "ONBUILD RUNN x",
            "unknown instruction: RUNN (did you mean RUN?)",
        ),
    ] {
        let e = err(&format!("FROM a\n{text}\n"));
        assert!(e.to_string().contains(msg), "{text}: {e}");
    }
    assert!(parse_trigger("FROM x").is_err());
    assert!(parse_trigger("RUN a\nRUN b").is_err());
}

#[test]
fn spans_and_original_text() {
    let text = "FROM a\n\n  RUN echo \\\n  # c\n  b\nCOPY <<EOF /x\nbody\nEOF\nUSER me\n";
    let df = parse(text).unwrap();
    let ins = &df.stages[0].instructions;
    assert_eq!(
        ins[0].span,
        Span {
            line: 3,
            column: 3,
            end_line: 5
        }
    );
    assert_eq!(ins[0].original, "RUN echo \\\n  # c\n  b");
    assert_eq!(
        ins[1].span,
        Span {
            line: 6,
            column: 1,
            end_line: 8
        }
    );
    assert_eq!(ins[1].original, "COPY <<EOF /x\nbody\nEOF");
    assert_eq!(
        ins[2].span,
        Span {
            line: 9,
            column: 1,
            end_line: 9
        }
    );
    assert_eq!(
        df.stages[0].from.span,
        Span {
            line: 1,
            column: 1,
            end_line: 1
        }
    );
}

#[test]
fn unknown_instruction_error_format() {
    let e = err("FROM a\nRUN x\n\n\n\n  RUNN echo hi\n");
    assert_eq!((e.line, e.column), (6, 3));
    assert_eq!(
        e.to_string(),
        "Dockerfile:6:3: unknown instruction: RUNN (did you mean RUN?)\n  6 |   RUNN echo hi"
    );
    let e = err("FROM a\nFOO bar\n");
    assert_eq!(
        e.kind,
        ErrorKind::UnknownInstruction {
            name: "FOO".into(),
            suggestion: None
        }
    );
}

#[test]
fn errors_point_at_the_problem() {
    let cases: &[(&str, (usize, usize), &str)] = &[
        (
            "FROM a\nCOPY --form=x a b\n",
            (2, 6),
            "unknown flag: --form for COPY (did you mean --from?)",
        ),
        (
            "FROM a\nRUN --mount type=cache x\n",
            (2, 5),
            "flag --mount of RUN needs a value",
        ),
        (
            "FROM a\nENV --x=1 a=b\n",
            (2, 5),
            "unknown flag: --x for ENV",
        ),
        (
            "FROM a\nSHELL /bin/bash -c\n",
            (2, 7),
            "SHELL requires the arguments to be in JSON form",
        ),
        (
            "FROM a\nSHELL []\n",
            (2, 1),
            "SHELL requires at least one argument",
        ),
        (
            "FROM a\nWORKDIR\n",
            (2, 1),
            "WORKDIR requires exactly one argument",
        ),
        (
            "FROM a\nEXPOSE\n",
            (2, 1),
            "EXPOSE requires at least one argument",
        ),
        (
            "FROM a\nVOLUME\n",
            (2, 1),
            "VOLUME requires at least one argument",
        ),
        ("RUN x\nFROM a\n", (1, 1), "RUN before the first FROM"),
        ("FROM a${X\n", (1, 6), "missing '}'"),
        (
            "FROM\n",
            (1, 1),
            "FROM requires either one or three arguments",
        ),
        (
            "FROM a b\n",
            (1, 1),
            "FROM requires either one or three arguments",
        ),
        (
            "FROM a AS 1x\n",
            (1, 11),
            "invalid name for build stage: \"1x\"",
        ),
        (
            "FROM a\nRUN <<EOF\nno end\n",
            (2, 1),
            "no line \"EOF\" closes the heredoc opened on line 2",
        ),
        ("ARG a\n", (1, 1), "has no FROM"),
        ("# just a comment\n\n", (1, 1), "has no instructions"),
        (
            "FROM a\nCOPY --link=maybe a b\n",
            (2, 6),
            "takes true or false, not \"maybe\"",
        ),
        (
            "FROM a\nCOPY --from=a --from=b a b\n",
            (2, 15),
            "given twice",
        ),
    ];
    for (text, pos, msg) in cases {
        let e = err(text);
        assert_eq!((e.line, e.column), *pos, "{text:?}: {e}");
        assert!(e.to_string().contains(msg), "{text:?}: {e}");
    }
}

#[test]
fn stage_references() {
    let df = parse("FROM alpine AS base\nFROM base AS build\nFROM scratch\nCOPY --from=build /a /b\nCOPY --from=0 /a /b\nFROM busybox@sha256:abc\n").unwrap();
    assert_eq!(df.base_of(1, "base"), BaseRef::Stage(0));
    assert_eq!(df.base_of(1, "BASE"), BaseRef::Stage(0));
    assert_eq!(df.base_of(0, "base"), BaseRef::Image("base".into()));
    assert_eq!(df.base_of(2, "scratch"), BaseRef::Scratch);
    assert_eq!(df.copy_source(2, "build"), Ok(BaseRef::Stage(1)));
    assert_eq!(df.copy_source(2, "0"), Ok(BaseRef::Stage(0)));
    assert!(df.copy_source(2, "2").is_err());
    assert!(df.copy_source(2, "9").is_err());
    assert!(df.copy_source(0, "build").is_err());
    assert_eq!(
        df.copy_source(2, "nginx:latest"),
        Ok(BaseRef::Image("nginx:latest".into()))
    );
    assert_eq!(df.stages[0].onbuild_expressions(), Vec::<String>::new());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_never_panics(s in "(FROM a\n)?([A-Za-z #=\\\\`$\\[\\]\"'{}<>:,/.*-]{0,20}\n?){0,8}") {
            let _ = parse(&s);
            let _ = parse_trigger(&s);
        }

        #[test]
        fn parse_never_panics_on_any_text(s in "\\PC{0,200}") {
            let _ = parse(&s);
        }
    }
}

#[test]
fn expanded_heredoc_bodies_are_checked_when_expanded() {
    let Instruction::Copy(c) = one("COPY <<EOF /x\nneeds ${X:?later} it's fine\nEOF") else {
        panic!()
    };
    assert!(c.heredocs[0].expand);
    let e = expansion_error("FROM a\nCOPY <<EOF /x\nbroken ${X\nEOF\n");
    assert!(e.contains("unsupported modifier (\\n)"), "{e}");
}

fn expansion_error(text: &str) -> String {
    crate::scope::first_expansion_error(text)
}

/// BuildKit expands a stage's words only when it builds that stage, and an ARG default only
/// when no build argument replaces it, so words that cannot be expanded parse, and fail when
/// expanded, at the instruction's line.
#[test]
fn words_that_cannot_expand_fail_when_expanded() {
    for (text, want) in [
        ("FROM a\nWORKDIR ${HOME\n", "Dockerfile:2:1: failed to process \"${HOME\": syntax error: missing '}'"),
        ("FROM a\nCOPY a ${X:x} /d\n", "Dockerfile:2:1: failed to process \"${X:x}\": unsupported modifier (:x)"),
        ("FROM a\nLABEL a=\"b\n", "Dockerfile:2:1: failed to process \"\\\"b\": unexpected end of statement while looking for matching double-quote"),
        ("FROM a\nARG V=\"b\n", "matching double-quote"),
        ("FROM a\nEXPOSE ${P:%x}\n", "unsupported modifier (:%)"),
    ] {
        let e = expansion_error(text);
        assert!(e.contains(want), "{text:?}: {e}");
    }
    // A stage that is never built may hold such a word (`--target` builds the first one).
    let df = parse("FROM a AS ok\nRUN true\nFROM ok\nENV X=\"unterminated\n").unwrap();
    assert_eq!(df.stages.len(), 2);
    // A build argument replaces the default before it is ever expanded.
    let df = parse("FROM a\nARG V=\"b\nRUN echo $V\n").unwrap();
    let args: BuildArgs = [("V", "given")].into_iter().collect();
    let p = Platform::new("linux", "amd64", None);
    let global = GlobalScope::new(&df, &args, &p, &p, None).unwrap();
    let mut scope = StageScope::new::<&str>(&[], &global, &args);
    scope.apply(&df.stages[0].instructions[0].node).unwrap();
    assert_eq!(scope.vars().get("V"), Some("given"));
}
