//! BuildKit's shell-lexer tables (`frontend/dockerfile/shell`: envVarTest, wordsTest and the
//! tables of lex_test.go) run against strata-dockerfile's word expansion.

mod common;

use common::{cases, read, same, str_of, strings, Suite};
use strata_dockerfile::{expand, expand_words, Vars};

const LIST: &str = "buildkit/differences.json";

#[test]
fn differences_lists_name_known_suites() {
    common::lists_name_known_suites();
}

/// `TestShellParser4EnvVars`: `platform | input | expected` lines, one word each, with the
/// environment that test sets. Only the `A` (all) and `U` (Unix) lines apply here.
#[test]
fn env_var_test() {
    let env = Vars::from_env_strings(["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]);
    let mut suite = Suite::new(LIST, "envVarTest");
    for (n, line) in read("buildkit/shell/envVarTest").lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.trim().split('|').map(str::trim).collect();
        let [platform, input, expected] = parts[..] else {
            panic!("envVarTest:{}: not three fields", n + 1);
        };
        if platform == "W" {
            continue;
        }
        let outcome = match (expand(input, &env), expected) {
            (Err(_), "error") => Ok(()),
            (Ok(w), "error") => Err(format!("{input:?}: expected an error, got {w:?}")),
            (Err(e), _) => Err(format!("{input:?}: expected {expected:?}, got error {e}")),
            (Ok(w), _) => same(input, expected, w.as_str()),
        };
        suite.record(format!("envVarTest:{}", n + 1), outcome);
    }
    suite.finish();
}

/// `TestShellParser4Words`: `input | word,word` lines, with `ENV name=value` lines adding to
/// the environment as they come. (Upstream's loop runs a second mode with raw quotes on the
/// same, already exhausted, scanner, so only this mode ever runs there either.)
#[test]
fn words_test() {
    let mut env: Vec<String> = Vec::new();
    let mut suite = Suite::new(LIST, "wordsTest");
    for (n, line) in read("buildkit/shell/wordsTest").lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            env.push(rest.trim_start_matches(' ').to_string());
            continue;
        }
        let parts: Vec<&str> = line.split('|').collect();
        let [input, expected] = parts[..] else {
            panic!("wordsTest:{}: not two fields", n + 1);
        };
        let input = input.trim();
        let expected: Vec<&str> = expected.trim_start_matches(' ').split(',').collect();
        let vars = Vars::from_env_strings(&env);
        let got = expand_words(input, &vars).unwrap_or_else(|_| vec!["error".into()]);
        suite.record(
            format!("wordsTest:{}", n + 1),
            same(input, expected, got.iter().map(String::as_str).collect()),
        );
    }
    suite.finish();
}

/// The `ProcessWord` tables of lex_test.go (`TestShellParserMandatoryEnvVars`,
/// `TestProcessWithMatches`, `TestProcessWithMatchesPlatform`).
#[test]
fn lex_test_tables() {
    let mut suite = Suite::new(LIST, "lex_test.go");
    for c in cases("buildkit/shell/lex.json") {
        let input = str_of(&c, "input");
        let vars = Vars::from_env_strings(strings(&c["env"]));
        let got = expand(input, &vars);
        let outcome = if let Some(expected) = c["expected"].as_str() {
            match got {
                Ok(w) => same(input, expected, w.as_str()),
                Err(e) => Err(format!("{input:?}: expected {expected:?}, got error {e}")),
            }
        } else {
            match (got, c["error_contains"].as_str()) {
                (Ok(w), _) => Err(format!("{input:?}: expected an error, got {w:?}")),
                (Err(e), Some(part)) if !e.to_string().contains(part) => {
                    Err(format!("{input:?}: error {e} does not say {part:?}"))
                }
                (Err(_), _) => Ok(()),
            }
        };
        suite.record(str_of(&c, "id"), outcome);
    }
    suite.finish();
}
