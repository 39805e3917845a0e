use super::*;
use crate::{parse, Command, Instruction, KeyValue, RunScript};

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

fn args(list: &[(&str, &str)]) -> BuildArgs {
    list.iter().copied().collect()
}

/// Runs every stage in order (each on an empty base, or on its parent stage's scope) and
/// returns, per stage, the expanded instructions and the RUN environments seen.
struct Walked {
    stages: Vec<Vec<Instruction>>,
    runs: Vec<RunEnv>,
    images: Vec<String>,
    image_env: Vec<Vec<String>>,
}

fn walk(text: &str, build_args: &BuildArgs, base_env: &[&str]) -> Walked {
    let df = parse(text).unwrap();
    let global = GlobalScope::new(&df, build_args, &amd64(), &amd64(), None).unwrap();
    let mut scopes: Vec<StageScope<'_>> = Vec::new();
    let mut out = Walked {
        stages: vec![],
        runs: vec![],
        images: vec![],
        image_env: vec![],
    };
    for (i, stage) in df.stages.iter().enumerate() {
        let (image, _) = global.expand_from(&stage.from.node).unwrap();
        let mut scope = match df.base_of(i, &image) {
            crate::BaseRef::Stage(p) => scopes[p].child(),
            _ => StageScope::new(base_env, &global, build_args),
        };
        out.images.push(image);
        let mut done = Vec::new();
        for ins in &stage.instructions {
            let e = scope.apply(&ins.node).map_err(|e| e.at(ins.span)).unwrap();
            if matches!(e, Instruction::Run(_)) {
                out.runs.push(scope.run_env());
            }
            done.push(e);
        }
        out.image_env.push(scope.image_env());
        out.stages.push(done);
        scopes.push(scope);
    }
    out
}

fn user(i: &Instruction) -> &str {
    match i {
        Instruction::User(u) => u,
        other => panic!("not USER: {other:?}"),
    }
}

fn env_of(run: &RunEnv, name: &str) -> Option<String> {
    run.env
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

#[test]
fn arg_is_visible_only_after_its_declaration() {
    // The Dockerfile reference's `USER ${username:-some_user}` example.
    let text = "FROM busybox\nUSER ${username:-some_user}\nARG username\nUSER $username\n";
    let w = walk(text, &args(&[("username", "what_user")]), &[]);
    assert_eq!(user(&w.stages[0][0]), "some_user");
    assert_eq!(user(&w.stages[0][2]), "what_user");
}

#[test]
fn env_after_arg_shadows_it() {
    let text = "FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=v1.0.0\nRUN echo $CONT_IMG_VER\n";
    let w = walk(text, &args(&[("CONT_IMG_VER", "v2.0.1")]), &[]);
    assert_eq!(
        env_of(&w.runs[0], "CONT_IMG_VER").as_deref(),
        Some("v1.0.0")
    );
    let text = "FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}\nRUN echo $CONT_IMG_VER\n";
    let w = walk(text, &args(&[]), &[]);
    assert_eq!(
        env_of(&w.runs[0], "CONT_IMG_VER").as_deref(),
        Some("v1.0.0")
    );
    let w = walk(text, &args(&[("CONT_IMG_VER", "v2.0.1")]), &[]);
    assert_eq!(
        env_of(&w.runs[0], "CONT_IMG_VER").as_deref(),
        Some("v2.0.1")
    );
}

#[test]
fn arg_with_a_value_overrides_base_image_env_as_in_buildkit() {
    let base = ["PATH=/bin", "DEBIAN_FRONTEND=teletype"];
    let w = walk(
        "FROM x\nARG DEBIAN_FRONTEND=noninteractive\nRUN env\n",
        &args(&[]),
        &base,
    );
    assert_eq!(
        env_of(&w.runs[0], "DEBIAN_FRONTEND").as_deref(),
        Some("noninteractive")
    );
    // ARG never reaches the image config.
    assert_eq!(w.image_env[0], ["PATH=/bin", "DEBIAN_FRONTEND=teletype"]);
    // Without a value, the declaration leaves the base image's variable alone.
    let w = walk("FROM x\nARG DEBIAN_FRONTEND\nRUN env\n", &args(&[]), &base);
    assert_eq!(
        env_of(&w.runs[0], "DEBIAN_FRONTEND").as_deref(),
        Some("teletype")
    );
}

#[test]
fn global_args_reach_from_and_redeclared_stage_args_only() {
    let text = "ARG VERSION=latest\nARG ONLY_GLOBAL=g\nFROM busybox:$VERSION\nARG VERSION\nRUN echo $VERSION $ONLY_GLOBAL\nUSER ${ONLY_GLOBAL:-none}\n";
    let w = walk(text, &args(&[]), &[]);
    assert_eq!(w.images[0], "busybox:latest");
    assert_eq!(env_of(&w.runs[0], "VERSION").as_deref(), Some("latest"));
    assert_eq!(env_of(&w.runs[0], "ONLY_GLOBAL"), None);
    assert_eq!(user(&w.stages[0][2]), "none");
    let w = walk(text, &args(&[("VERSION", "1.36")]), &[]);
    assert_eq!(w.images[0], "busybox:1.36");
    assert_eq!(env_of(&w.runs[0], "VERSION").as_deref(), Some("1.36"));
}

#[test]
fn global_defaults_see_earlier_globals_and_platform_args() {
    let text = "ARG BASE=alpine\nARG IMG=${BASE}:3-${TARGETARCH}\nFROM $IMG\n";
    let w = walk(text, &args(&[]), &[]);
    assert_eq!(w.images[0], "alpine:3-amd64");
    let df = parse("FROM $UNSET\n").unwrap();
    let g = GlobalScope::new(&df, &BuildArgs::new(), &amd64(), &amd64(), None).unwrap();
    let e = g.expand_from(&df.stages[0].from.node).unwrap_err();
    assert!(
        e.message()
            .contains("base name ($UNSET) should not be blank"),
        "{e}"
    );
}

#[test]
fn stage_args_do_not_leak_into_other_stages() {
    let text = "FROM busybox\nARG SETTINGS\nRUN ./setup $SETTINGS\n\nFROM busybox\nRUN ./other $SETTINGS\n";
    let w = walk(text, &args(&[("SETTINGS", "s")]), &[]);
    assert_eq!(env_of(&w.runs[0], "SETTINGS").as_deref(), Some("s"));
    assert_eq!(env_of(&w.runs[1], "SETTINGS"), None);
}

#[test]
fn a_child_stage_inherits_the_parent_state() {
    let text = "FROM busybox AS base\nARG A=1\nENV E=e\nFROM base\nRUN x\n";
    let w = walk(text, &args(&[]), &[]);
    assert_eq!(env_of(&w.runs[0], "A").as_deref(), Some("1"));
    assert_eq!(env_of(&w.runs[0], "E").as_deref(), Some("e"));
    assert_eq!(w.runs[0].args, [("A".to_string(), "1".to_string())]);
}

#[test]
fn platform_args_need_a_declaration_inside_a_stage() {
    let text = "FROM alpine\nRUN echo $TARGETPLATFORM\nARG TARGETPLATFORM\nARG BUILDARCH\nRUN echo $TARGETPLATFORM\n";
    let build = Platform::new("linux", "arm64", Some("v8"));
    let df = parse(text).unwrap();
    let ba = BuildArgs::new();
    let g = GlobalScope::new(&df, &ba, &build, &amd64(), Some("")).unwrap();
    let mut s = StageScope::new::<&str>(&[], &g, &ba);
    s.apply(&df.stages[0].instructions[0].node).unwrap();
    assert_eq!(
        s.run_env().env.iter().find(|(k, _)| k == "TARGETPLATFORM"),
        None
    );
    for i in &df.stages[0].instructions[1..] {
        s.apply(&i.node).unwrap();
    }
    assert_eq!(s.vars().get("TARGETPLATFORM"), Some("linux/amd64"));
    assert_eq!(s.vars().get("BUILDARCH"), Some("arm64"));
    assert_eq!(g.vars().get("BUILDPLATFORM"), Some("linux/arm64/v8"));
    assert_eq!(g.vars().get("TARGETVARIANT"), Some(""));
}

#[test]
fn env_pairs_expand_against_the_previous_state() {
    // From the ENV reference: `def` gets the old value of `abc`.
    let w = walk(
        "FROM x\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n",
        &args(&[]),
        &[],
    );
    assert_eq!(
        w.image_env[0],
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "abc=bye",
            "def=hello",
            "ghi=bye"
        ]
    );
    let Instruction::Env(p) = &w.stages[0][1] else {
        panic!()
    };
    assert_eq!(
        p[1],
        KeyValue {
            key: "def".into(),
            value: "hello".into(),
            legacy: false
        }
    );
}

#[test]
fn environment_replacement_reference_example() {
    let w = walk(
        "FROM busybox\nENV FOO=/bar\nWORKDIR ${FOO}\nADD . $FOO\nCOPY \\$FOO /quux\n",
        &args(&[]),
        &[],
    );
    let s = &w.stages[0];
    assert_eq!(s[1], Instruction::Workdir("/bar".into()));
    let Instruction::Add(a) = &s[2] else { panic!() };
    assert_eq!(a.dest, "/bar");
    let Instruction::Copy(c) = &s[3] else {
        panic!()
    };
    assert_eq!(c.sources, ["$FOO"]);
}

#[test]
fn which_fields_expand() {
    let text = "FROM x\nENV V=val P=8080 U=app\n\
        COPY --chown=$U --chmod=$U --from=build --exclude=$V a$V '$V' /d/$V\n\
        RUN echo $V\nCMD echo $V\nENTRYPOINT [\"$V\"]\nEXPOSE $P ${P}/udp\nLABEL k$V=\"v $V\"\n\
        USER $U\nVOLUME [\"/$V\"]\nSTOPSIGNAL SIG$V\nMAINTAINER $V\nHEALTHCHECK CMD echo $V\n";
    let w = walk(text, &args(&[]), &[]);
    let s = &w.stages[0];
    let Instruction::Copy(c) = &s[1] else {
        panic!()
    };
    assert_eq!(c.chown.as_deref(), Some("app"));
    assert_eq!(c.chmod.as_deref(), Some("app"));
    assert_eq!(c.exclude, ["$V"]);
    assert_eq!(c.sources, ["aval", "$V"]);
    assert_eq!(c.dest, "/d/val");
    let Instruction::Run(r) = &s[2] else { panic!() };
    assert_eq!(r.script(), RunScript::Shell("echo $V".into()));
    assert_eq!(s[3], Instruction::Cmd(Command::Shell("echo $V".into())));
    assert_eq!(
        s[4],
        Instruction::Entrypoint(Command::Exec(vec!["$V".into()]))
    );
    assert_eq!(
        s[5],
        Instruction::Expose(vec!["8080".into(), "8080/udp".into()])
    );
    let Instruction::Label(l) = &s[6] else {
        panic!()
    };
    assert_eq!((l[0].key.as_str(), l[0].value.as_str()), ("kval", "v val"));
    assert_eq!(s[7], Instruction::User("app".into()));
    assert_eq!(s[8], Instruction::Volume(vec!["/val".into()]));
    assert_eq!(s[9], Instruction::Stopsignal("SIGval".into()));
    assert_eq!(s[10], Instruction::Maintainer("$V".into()));
    let Instruction::Healthcheck(h) = &s[11] else {
        panic!()
    };
    assert_eq!(h.test(), ["CMD-SHELL", "echo $V"]);
}

#[test]
fn copy_sources_split_on_blanks_before_expansion() {
    // Shell-form COPY splits on white space first and removes quotes word by word, so a
    // quoted path with a space fails to expand (Docker needs the JSON form), when the stage
    // is built, as in BuildKit.
    let df = parse("FROM x\nCOPY \"q r\" /d\n").unwrap();
    let ba = BuildArgs::new();
    let g = GlobalScope::new(&df, &ba, &amd64(), &amd64(), None).unwrap();
    let s = StageScope::new::<&str>(&[], &g, &ba);
    let e = s
        .expand_instruction(&df.stages[0].instructions[0].node)
        .unwrap_err();
    assert!(e.to_string().contains("matching double-quote"), "{e}");
    let df = parse("FROM x\nCOPY [\"q r\", \"/d\"]\n").unwrap();
    let g = GlobalScope::new(&df, &ba, &amd64(), &amd64(), None).unwrap();
    let s = StageScope::new::<&str>(&[], &g, &ba);
    let Instruction::Copy(c) = s
        .expand_instruction(&df.stages[0].instructions[0].node)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(c.sources, ["q r"]);
}

#[test]
fn heredoc_files_expand_unless_quoted() {
    let text = "FROM alpine\nARG FOO=bar\nCOPY <<-EOT /script.sh\n\techo \"hello ${FOO}\" it's\nEOT\nCOPY <<-\"EOT\" /s2\n\techo \"hello ${FOO}\"\nEOT\n";
    let w = walk(text, &args(&[]), &[]);
    let Instruction::Copy(c) = &w.stages[0][1] else {
        panic!()
    };
    assert_eq!(c.heredocs[0].content, "echo \"hello bar\" it's\n");
    let Instruction::Copy(c) = &w.stages[0][2] else {
        panic!()
    };
    assert_eq!(c.heredocs[0].content, "echo \"hello ${FOO}\"\n");
}

#[test]
fn run_env_args_and_cache_relevant_values() {
    let text = "FROM ubuntu\nARG CONT_IMG_VER\nARG UNSET\nRUN echo $CONT_IMG_VER\n";
    let a = walk(text, &args(&[("CONT_IMG_VER", "1")]), &[]);
    let b = walk(text, &args(&[("CONT_IMG_VER", "2")]), &[]);
    assert_ne!(
        a.runs[0].env, b.runs[0].env,
        "a changed ARG must change the step's cache key"
    );
    assert_eq!(
        a.runs[0].args,
        [
            ("CONT_IMG_VER".into(), "1".into()),
            ("UNSET".into(), String::new())
        ]
    );
    assert_eq!(a.runs[0].history_prefix(), "|2 CONT_IMG_VER=1 UNSET=");
    assert!(a.runs[0]
        .process_env()
        .contains(&"CONT_IMG_VER=1".to_string()));
}

#[test]
fn proxy_build_args_reach_run_without_arg_and_stay_out_of_the_cache_key() {
    let text = "FROM x\nRUN curl example.com\n";
    let with = walk(text, &args(&[("HTTPS_PROXY", "https://proxy:3128")]), &[]);
    let without = walk(text, &args(&[]), &[]);
    assert_eq!(with.runs[0].env, without.runs[0].env);
    assert_eq!(
        with.runs[0].proxy,
        [
            ("HTTPS_PROXY".into(), "https://proxy:3128".into()),
            ("https_proxy".into(), "https://proxy:3128".into())
        ]
    );
    assert!(with.runs[0]
        .process_env()
        .contains(&"https_proxy=https://proxy:3128".to_string()));
    // Expansion does not see them.
    let w = walk(
        "FROM x\nUSER ${HTTPS_PROXY:-none}\n",
        &args(&[("HTTPS_PROXY", "p")]),
        &[],
    );
    assert_eq!(user(&w.stages[0][0]), "none");
    // Declared, it is an ordinary ARG (and so part of the cache key).
    let w = walk(
        "FROM x\nARG HTTPS_PROXY\nRUN y\n",
        &args(&[("HTTPS_PROXY", "p")]),
        &[],
    );
    assert_eq!(env_of(&w.runs[0], "HTTPS_PROXY").as_deref(), Some("p"));
    assert!(w.runs[0].proxy.is_empty());
}

#[test]
fn unused_build_args_are_reported_except_predefined() {
    let text = "ARG G\nFROM x\nARG USED\nRUN y\n";
    let ba = args(&[
        ("USED", "1"),
        ("G", "2"),
        ("TYPO", "3"),
        ("HTTP_PROXY", "p"),
        ("TARGETARCH", "arm64"),
        ("BUILDKIT_INLINE_CACHE", "1"),
    ]);
    walk(text, &ba, &[]);
    assert_eq!(ba.unused(), ["TYPO"]);
}

#[test]
fn build_arg_cli_forms() {
    let mut ba = BuildArgs::new();
    ba.add_cli("A=1=2", |_| None);
    ba.add_cli("FROM_ENV", |k| (k == "FROM_ENV").then(|| "e".to_string()));
    ba.add_cli("MISSING", |_| None);
    let df = parse("FROM x\nARG A\nARG FROM_ENV\nARG MISSING=default\n").unwrap();
    let g = GlobalScope::new(&df, &ba, &amd64(), &amd64(), None).unwrap();
    let mut s = StageScope::new::<&str>(&[], &g, &ba);
    for i in &df.stages[0].instructions {
        s.apply(&i.node).unwrap();
    }
    assert_eq!(s.vars().get("A"), Some("1=2"));
    assert_eq!(s.vars().get("FROM_ENV"), Some("e"));
    assert_eq!(s.vars().get("MISSING"), Some("default"));
}

#[test]
fn arg_defaults_expand_and_errors_carry_spans() {
    let w = walk(
        "FROM x\nENV E=e\nARG A=${E}x B=$A\nRUN y\n",
        &args(&[]),
        &[],
    );
    assert_eq!(env_of(&w.runs[0], "B").as_deref(), Some("ex"));
    let Instruction::Arg(d) = &w.stages[0][1] else {
        panic!()
    };
    assert_eq!(d[1].default.as_deref(), Some("ex"));
    let df = parse("FROM x\n\nUSER ${NEED:?set NEED}\n").unwrap();
    let ba = BuildArgs::new();
    let g = GlobalScope::new(&df, &ba, &amd64(), &amd64(), None).unwrap();
    let mut s = StageScope::new::<&str>(&[], &g, &ba);
    let i = &df.stages[0].instructions[0];
    let e = s.apply(&i.node).map_err(|e| e.at(i.span)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile:3:1: failed to process \"${NEED:?set NEED}\": NEED: set NEED"
    );
}

#[test]
fn mounts_split_and_expand() {
    let df = parse("FROM x\n").unwrap();
    let ba = args(&[]);
    let g = GlobalScope::new(&df, &ba, &amd64(), &amd64(), None).unwrap();
    let mut s = StageScope::new::<&str>(&[], &g, &ba);
    s.set_env(&[KeyValue {
        key: "ARCH".into(),
        value: "amd64".into(),
        legacy: false,
    }])
    .unwrap();
    let f = s
        .expand_mount("type=cache,Target=/root/.cache,id=go-$ARCH,\"source=a,b\",ro")
        .unwrap();
    let f: Vec<(&str, Option<&str>)> = f.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
    assert_eq!(
        f,
        [
            ("type", Some("cache")),
            ("target", Some("/root/.cache")),
            ("id", Some("go-amd64")),
            ("source", Some("a,b")),
            ("ro", None)
        ]
    );
    assert!(s.expand_mount("\"unterminated").is_err());
}

#[test]
fn backtick_escape_applies_to_expansion() {
    let w = walk("# escape=`\nFROM x\nENV A=1\nUSER `$A$A\n", &args(&[]), &[]);
    assert_eq!(user(&w.stages[0][1]), "$A1");
}
