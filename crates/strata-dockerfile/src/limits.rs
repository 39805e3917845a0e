//! Bounds on what a Dockerfile may make the front end hold, so a hostile one fails with a
//! message instead of exhausting memory.
//!
//! Each limit is far above anything a Dockerfile that builds elsewhere needs: BuildKit itself
//! refuses physical lines over 64 KiB (its line scanner's buffer), and a RUN step cannot pass
//! an environment string over 128 KiB to `execve` (Linux's `MAX_ARG_STRLEN`).

/// A whole Dockerfile (or ONBUILD trigger), in bytes.
pub const MAX_DOCKERFILE_BYTES: usize = 16 << 20;
/// One physical line, heredoc body lines included, and one `.dockerignore` line: BuildKit's
/// and moby's own limit (Go's `bufio.MaxScanTokenSize - 1`), so any file they read fits.
pub const MAX_LINE_BYTES: usize = 65_535;
/// One instruction with its continuation lines joined.
pub const MAX_INSTRUCTION_BYTES: usize = 1 << 20;
/// One heredoc body.
pub const MAX_HEREDOC_BYTES: usize = 8 << 20;
/// Instructions in a Dockerfile, FROM and global ARGs included.
pub const MAX_INSTRUCTIONS: usize = 10_000;
/// What one expansion may produce (a word, or an expanded heredoc body): bounds
/// `${A}${A}${A}...` and `${A//x/$B}` however large A and B are.
pub const MAX_EXPANSION_BYTES: usize = 16 << 20;
/// Pattern tokens × value characters in one `${V#p}`, `${V%p}` or `${V/p/r}`: the matcher's
/// memo table has at most one entry per cell (a 40-character pattern against a 100 KiB value
/// is 4 M cells), so this bounds its memory.
pub const MAX_PATTERN_CELLS: usize = 1 << 22;
/// Wildcards and characters in one `${V#p}`/`${V%p}`/`${V/p/r}` pattern or one wildcard
/// `.dockerignore` pattern: the shell matcher recurses once per token (60,000 `*` overflowed
/// the stack, an abort rather than an error) and the glob matcher's time is tokens × path
/// length per path (60,000 `?` took minutes). Real patterns are a few dozen characters; a
/// plain path without wildcards is compared as a string and not limited.
pub const MAX_PATTERN_TOKENS: usize = 1024;
/// How deep substitutions may nest (`${A:-${B:-...}}`). Each level recurses (~1 KiB of stack
/// in a release build, more in debug): ten thousand `${A:-` in one 60 KB line overflowed the
/// stack and killed the process, where BuildKit's growable goroutine stacks just keep going.
/// Real Dockerfiles nest two or three deep.
pub const MAX_NESTING: usize = 128;
/// All the ARG and ENV values a scope holds together (names included): bounds chains of
/// `ENV B=${A}${A}` that double a value per instruction.
pub const MAX_VARIABLES_BYTES: usize = 16 << 20;

/// `16 MiB`, `64 KiB`, or bytes.
pub(crate) fn size(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// The message for a limit that was passed: what, how large, and which limit.
pub(crate) fn exceeded(what: &str, actual: usize, limit: usize, name: &str) -> String {
    format!(
        "{what} is {actual} bytes, over strata's limit of {} ({name})",
        size(limit)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    fn parse_err(text: &str) -> String {
        parse(text).expect_err("over a limit").to_string()
    }

    fn expand_err(text: &str) -> String {
        crate::scope::first_expansion_error(text)
    }

    #[test]
    fn dockerfile_size() {
        let mut text = String::from("FROM a\n");
        while text.len() <= MAX_DOCKERFILE_BYTES {
            text.push_str(&format!("# {}\n", "x".repeat(60_000)));
        }
        let e = parse_err(&text);
        assert!(e.starts_with("Dockerfile:1:1: the Dockerfile is "), "{e}");
        assert!(
            e.contains("over strata's limit of 16 MiB (MAX_DOCKERFILE_BYTES)"),
            "{e}"
        );
    }

    #[test]
    fn line_size() {
        let ok = format!("FROM a\nRUN {}\n", "x".repeat(MAX_LINE_BYTES - 4));
        assert!(parse(&ok).is_ok());
        let e = parse_err(&format!("FROM a\nRUN {}\n", "x".repeat(MAX_LINE_BYTES)));
        assert!(e.starts_with("Dockerfile:2:1: line 2 is 65539 bytes, over strata's limit of 65535 bytes (MAX_LINE_BYTES)"), "{e}");
        // The offending line is quoted only in part.
        assert!(e.len() < 300, "{e}");
        // The same limit holds for .dockerignore lines, as moby's line scanner has it.
        let e = DockerIgnore::parse(&format!("a\n# {}\n", "x".repeat(MAX_LINE_BYTES))).unwrap_err();
        assert_eq!(
            e.to_string(),
            ".dockerignore:2: the line is 65537 bytes, over strata's limit of 65535 bytes (MAX_LINE_BYTES)"
        );
    }

    #[test]
    fn instruction_size() {
        let piece = format!("{} \\\n", "x".repeat(60_000));
        let e = parse_err(&format!("FROM a\nRUN {}end\n", piece.repeat(18)));
        assert!(
            e.starts_with("Dockerfile:2:1: the instruction starting on line 2 is "),
            "{e}"
        );
        assert!(e.contains("(MAX_INSTRUCTION_BYTES)"), "{e}");
    }

    #[test]
    fn heredoc_size() {
        let body = format!("{}\n", "x".repeat(60_000)).repeat(140);
        let e = parse_err(&format!("FROM a\nRUN <<EOF\n{body}EOF\n"));
        assert!(
            e.starts_with("Dockerfile:2:1: the heredoc \"EOF\" opened on line 2 is "),
            "{e}"
        );
        assert!(
            e.contains("over strata's limit of 8 MiB (MAX_HEREDOC_BYTES)"),
            "{e}"
        );
    }

    #[test]
    fn instruction_count() {
        let ok = format!("FROM a\n{}", "RUN x\n".repeat(MAX_INSTRUCTIONS - 1));
        assert!(parse(&ok).is_ok());
        let e = parse_err(&format!("FROM a\n{}", "RUN x\n".repeat(MAX_INSTRUCTIONS)));
        assert!(e.starts_with("Dockerfile:10001:1: instruction 10001 (line 10001): a Dockerfile has at most 10000 instructions"), "{e}");
    }

    #[test]
    fn expansion_size() {
        let a = "x".repeat(60_000);
        let e = expand_err(&format!(
            "FROM a\nENV A={a}\nLABEL l={}\n",
            "${A}".repeat(300)
        ));
        assert!(
            e.starts_with("Dockerfile:3:1: failed to process \"${A}${A}"),
            "{e}"
        );
        assert!(e.contains("the expansion is 16800000 bytes, over strata's limit of 16 MiB (MAX_EXPANSION_BYTES)"), "{e}");
        // Replacing every character with a long value is stopped too.
        let e = expand_err(&format!(
            "FROM a\nENV A={a}\nENV B={a}\nLABEL l=${{A//x/$B}}\n"
        ));
        assert!(e.contains("(MAX_EXPANSION_BYTES)"), "{e}");
    }

    #[test]
    fn pattern_cells() {
        let a = "x".repeat(60_000);
        let pattern = "?".repeat(100);
        let e = expand_err(&format!("FROM a\nENV A={a}\nLABEL l=${{A#{pattern}}}\n"));
        assert!(
            e.contains("matching a 100-character pattern against a 60000-character value is over strata's limit of 4194304 pattern × value cells (MAX_PATTERN_CELLS)"),
            "{e}"
        );
        // A pattern of ordinary size against the same value is fine.
        let vars: Vars = [("A", a.as_str())].into_iter().collect();
        assert_eq!(expand("${A%x?}", &vars).unwrap().len(), 59_998);
    }

    #[test]
    fn pattern_tokens() {
        // The shell one overflowed the stack before, the glob one took minutes.
        let vars: Vars = [("A", "abc")].into_iter().collect();
        let e = expand(&format!("${{A#{}}}", "*".repeat(60_000)), &vars).unwrap_err();
        assert!(
            e.to_string().contains("the pattern has 60000 characters, over strata's limit of 1024 (MAX_PATTERN_TOKENS)"),
            "{e}"
        );
        assert_eq!(
            expand(&format!("${{A#{}}}", "?".repeat(1024)), &vars).unwrap(),
            "abc"
        );
        let e = DockerIgnore::parse(&format!("ok\na{}\n", "?".repeat(60_000))).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(".dockerignore:2: a wildcard pattern of 60001 characters is over strata's limit of 1024 (MAX_PATTERN_TOKENS): \"a{}\"...", "?".repeat(79))
        );
        // A long plain path is compared as a string, so it is not limited.
        let long = "d/".repeat(2000) + "f";
        assert!(DockerIgnore::parse(&long).unwrap().is_excluded(&long));
    }

    #[test]
    fn variables_size() {
        let mut text = format!("FROM a\nENV A={}\n", "x".repeat(60_000));
        for n in 0..20 {
            text.push_str(&format!("ENV V{n}={}\n", "${A}".repeat(16)));
        }
        let e = expand_err(&text);
        assert!(e.contains("the total of the ARG and ENV values is "), "{e}");
        assert!(
            e.contains("over strata's limit of 16 MiB (MAX_VARIABLES_BYTES)"),
            "{e}"
        );
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(MAX_DOCKERFILE_BYTES), "16 MiB");
        assert_eq!(size(MAX_LINE_BYTES), "65535 bytes");
        assert_eq!(size(64 << 10), "64 KiB");
        assert_eq!(
            exceeded("line 3", 70_000, MAX_LINE_BYTES, "MAX_LINE_BYTES"),
            "line 3 is 70000 bytes, over strata's limit of 65535 bytes (MAX_LINE_BYTES)"
        );
    }
}
