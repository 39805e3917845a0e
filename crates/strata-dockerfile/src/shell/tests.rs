use super::*;
use proptest::prelude::*;

fn env() -> Vars {
    [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("NULL", ""),
        ("WORD", "hello  world"),
        ("P", "a/b/c.tar.gz"),
    ]
    .into_iter()
    .collect()
}

/// `None` means an error is expected.
fn check(cases: &[(&str, Option<&str>)]) {
    let env = env();
    for (input, want) in cases {
        let got = expand(input, &env);
        match want {
            Some(w) => assert_eq!(got.as_deref().ok(), Some(*w), "{input:?} -> {got:?}"),
            None => assert!(got.is_err(), "{input:?} should fail, got {got:?}"),
        }
    }
}

#[test]
fn quotes_and_escapes() {
    check(&[
        ("hello", Some("hello")),
        ("he'l'lo", Some("hello")),
        ("he'llo", None),
        ("he\\'llo", Some("he'llo")),
        ("he\\\\'llo", None),
        ("abc\\tdef", Some("abctdef")),
        ("\"abc\\tdef\"", Some("abc\\tdef")),
        ("\"abc\\\\tdef\"", Some("abc\\tdef")),
        ("'abc\\tdef'", Some("abc\\tdef")),
        ("hello\\", Some("hello")),
        ("hello\\\\", Some("hello\\")),
        ("\"hello", None),
        ("\"hello\\\"", None),
        ("\"hel'lo\"", Some("hel'lo")),
        ("'hello", None),
        ("'hello\\'", Some("hello\\")),
        ("\"''\"", Some("''")),
        ("'\"hello\"'", Some("\"hello\"")),
        ("a b  c", Some("a b  c")),
    ]);
}

#[test]
fn plain_variables() {
    check(&[
        ("$.", Some("$.")),
        ("he$1x", Some("hex")),
        ("he$.x", Some("he$.x")),
        ("he$pwd.", Some("he.")),
        ("he$PWD", Some("he/home")),
        ("he\\$PWD", Some("he$PWD")),
        ("he\\\\$PWD", Some("he\\/home")),
        ("\"he\\$PWD\"", Some("he$PWD")),
        ("\"he\\\\$PWD\"", Some("he\\/home")),
        ("'$PWD'", Some("$PWD")),
        ("'\\$PWD'", Some("\\$PWD")),
        ("\"$PWD\"", Some("/home")),
        ("\"he'$PWD'\"", Some("he'/home'")),
        ("$PWD$SHELL", Some("/homebash")),
        ("${PWD}x", Some("/homex")),
        ("he${hi}xx", Some("hexx")),
        ("$", Some("$")),
        // `$$` names the special parameter `$`, which is never set.
        ("$${XXX:-x}", Some("{XXX:-x}")),
    ]);
}

#[test]
fn braces_and_errors() {
    check(&[
        ("\\${}", Some("${}")),
        ("\\${}aaa", Some("${}aaa")),
        ("he\\${}xx", Some("he${}xx")),
        ("${}", None),
        ("${}aaa", None),
        ("he${}xx", None),
        ("he${.}", None),
        ("he${PWD", None),
        ("he${PWD=000}xx", None),
        ("${", None),
        ("${:-x}", None),
        ("${{x}}", None),
        ("'he${XX}'", Some("he${XX}")),
        ("\"he${PWD}\"", Some("he/home")),
    ]);
}

#[test]
fn modifiers_as_in_the_dockerfile_reference() {
    check(&[
        ("he${XXX:-000}xx", Some("he000xx")),
        ("he${PWD:-000}xx", Some("he/homexx")),
        ("he${XXX:-$PWD}xx", Some("he/homexx")),
        ("he${XXX:-${PWD:-yyy}}xx", Some("he/homexx")),
        ("he${XXX:-${YYY:-yyy}}xx", Some("heyyyxx")),
        ("he${XXX:YYY}", None),
        ("he${NULL:-x}", Some("hex")),
        ("he${NULL-x}", Some("he")),
        ("he${XXX-x}", Some("hex")),
        ("he${XXX?}", None),
        ("he${XXX:?}", None),
        ("he${PWD?}", Some("he/home")),
        ("he${PWD:?}", Some("he/home")),
        ("he${NULL?}", Some("he")),
        ("he${NULL:?}", None),
        ("he${XXX:+${PWD}}xx", Some("hexx")),
        ("he${PWD:+${XXX}}xx", Some("hexx")),
        ("he${PWD:+${SHELL}}xx", Some("hebashxx")),
        ("he${XXX:+000}xx", Some("hexx")),
        ("he${PWD:+000}xx", Some("he000xx")),
        ("he${NULL+x}", Some("hex")),
        ("he${NULL:+x}", Some("he")),
        ("he${PWD+${PWD}:}xx", Some("he/home:xx")),
        ("${XXX:-\\$PWD:}xx", Some("$PWD:xx")),
        ("he${XXX:-\\}}xx", Some("he}xx")),
        ("${XXX:-\"a b\"}", Some("a b")),
    ]);
}

#[test]
fn unset_with_message() {
    let e = expand("${X:?set X first}", &env()).unwrap_err();
    assert_eq!(
        e.message(),
        "failed to process \"${X:?set X first}\": X: set X first"
    );
    let e = expand("${NULL:?}", &env()).unwrap_err();
    assert!(
        e.message().ends_with("NULL: is not allowed to be empty"),
        "{e}"
    );
    let e = expand("${X?}", &env()).unwrap_err();
    assert!(
        e.message().ends_with("X: is not allowed to be unset"),
        "{e}"
    );
}

#[test]
fn pattern_modifiers() {
    check(&[
        ("${P#*/}", Some("b/c.tar.gz")),
        ("${P##*/}", Some("c.tar.gz")),
        ("${P%.*}", Some("a/b/c.tar")),
        ("${P%%.*}", Some("a/b/c")),
        ("${P/b/B}", Some("a/B/c.tar.gz")),
        ("${P//\\//-}", Some("a-b-c.tar.gz")),
        ("${XXX#x}", Some("")),
        ("${P#\\x}", None),
        ("${P/x", None),
    ]);
}

#[test]
fn backtick_escape() {
    let lex = Lexer::new('`');
    let env = env();
    assert_eq!(lex.expand("a`$PWD", &env).unwrap(), "a$PWD");
    assert_eq!(lex.expand("c:\\dir", &env).unwrap(), "c:\\dir");
    assert_eq!(lex.expand("\"x`\"y\"", &env).unwrap(), "x\"y");
}

#[test]
fn word_splitting() {
    let env = env();
    let cases: &[(&str, &[&str])] = &[
        ("hello", &["hello"]),
        ("hello world", &["hello", "world"]),
        ("hello   world", &["hello", "world"]),
        ("'hello'   world", &["hello", "world"]),
        ("'hello   world'", &["hello   world"]),
        ("\"hello   world\"", &["hello   world"]),
        ("' hello world '", &[" hello world "]),
        ("hello\\ world", &["hello world"]),
        ("hello\\\\ world", &["hello\\", "world"]),
        ("$WORD", &["hello", "world"]),
        ("\"$WORD\"", &["hello  world"]),
        ("x${WORD}y", &["xhello", "worldy"]),
        ("a \"\" b", &["a", "b"]),
        ("80/tcp 443", &["80/tcp", "443"]),
        ("", &[]),
    ];
    for (input, want) in cases {
        assert_eq!(expand_words(input, &env).unwrap(), *want, "{input:?}");
    }
}

#[test]
fn heredoc_lexer_keeps_quotes() {
    let env = env();
    let lex = Lexer::heredoc();
    assert_eq!(
        lex.expand("it's \"$PWD\"\n", &env).unwrap(),
        "it's \"/home\"\n"
    );
    assert_eq!(lex.expand("\\$PWD", &env).unwrap(), "$PWD");
}

#[test]
fn raw_lexer_changes_nothing_but_splits() {
    let empty = Vars::new();
    let words = Lexer::raw('\\')
        .expand_words("RUN cat <<'EOF' \"a b\" \\$X $Y ${Z:-q}", &empty)
        .unwrap();
    assert_eq!(
        words,
        ["RUN", "cat", "<<'EOF'", "\"a b\"", "\\$X", "$Y", "${Z:-q}"]
    );
}

#[test]
fn syntax_check_accepts_valid_and_rejects_malformed() {
    let empty = Vars::new();
    let ok = Lexer::new('\\').checking();
    for w in ["${X:?must}", "${X#*/}", "${X//a/b}", "$X", "'q'"] {
        assert!(ok.process(w, &empty).is_ok(), "{w}");
    }
    for w in ["${X", "${X:x}", "${}", "'q", "${X#\\q}"] {
        assert!(ok.process(w, &empty).is_err(), "{w}");
    }
    // Heredoc bodies are checked without quote processing.
    let body = Lexer::heredoc().checking();
    assert!(body
        .process("it's ${X:?unset is fine here}", &empty)
        .is_ok());
    assert!(body.process("${X", &empty).is_err());
}

/// Ten thousand nested `${A:-` overflowed the stack (found probing fuzz/dockerfile past its
/// input size); now deep nesting is an error and the usual depths still expand.
#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let nested = |n: usize| "${UNSET:-".repeat(n) + "x" + &"}".repeat(n);
    assert_eq!(expand(&nested(100), &env()).unwrap(), "x");
    let e = expand(&nested(10_000), &env()).unwrap_err().to_string();
    assert!(e.contains("nested more than 128 deep"), "{e}");
    let quoted = "\"${UNSET:-".repeat(10_000);
    assert!(expand(&quoted, &env()).is_err());
}

proptest! {
    #[test]
    fn expansion_never_panics(s in "[\\PC\\\\$\"'{}:?#%/+\\-]{0,40}") {
        let _ = expand(&s, &env());
        let _ = expand_words(&s, &env());
        let _ = Lexer::new('`').expand(&s, &env());
        let _ = Lexer::raw('\\').expand_words(&s, &env());
        let _ = Lexer::new('\\').checking().process(&s, &env());
    }

    #[test]
    fn text_without_specials_is_unchanged(s in "[a-zA-Z0-9_./,=@-]{0,30}") {
        prop_assert_eq!(expand(&s, &env()).unwrap(), s);
    }

    #[test]
    fn single_quoting_is_literal(s in "[^']{0,30}") {
        prop_assert_eq!(expand(&format!("'{s}'"), &env()).unwrap(), s);
    }
}
