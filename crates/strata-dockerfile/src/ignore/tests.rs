use super::*;
use proptest::prelude::*;

fn ignore(text: &str) -> DockerIgnore {
    DockerIgnore::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn reading_like_ignorefile_readall() {
    let d = ignore("\u{feff}# comment\n  *.md  \n\n!README.md\n/abs/path\n./rel//x/\n !  spaced\n  # not a comment\n");
    assert_eq!(
        d.patterns(),
        [
            "*.md",
            "!README.md",
            "abs/path",
            "rel/x",
            "!spaced",
            "# not a comment"
        ]
    );
    let e = DockerIgnore::parse("ok\n!\n").unwrap_err();
    assert_eq!(
        (e.line, e.to_string().contains("illegal exclusion pattern")),
        (2, true)
    );
    let e = DockerIgnore::parse("a\n[z\n").unwrap_err();
    assert_eq!(e.line, 2);
    // A reversed range fails the build in moby too (its regexp refuses it), never matches
    // nothing in silence.
    let e = DockerIgnore::parse("# local files\nnode_modules\n[Local-Only]/\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        ".dockerignore:3: invalid character class range l-O: \"[Local-Only]\""
    );
}

#[test]
fn single_pattern_cases_from_patternmatcher() {
    let cases: &[(&str, &str, bool)] = &[
        ("**", "file", true),
        ("**", "dir/file", true),
        ("**/", "dir/file", true),
        ("**/**", "dir/file", true),
        ("dir/**", "dir/file", true),
        ("dir/**", "dir/dir2/file", true),
        ("**/dir", "dir", true),
        ("**/dir", "dir/file", true),
        ("**/dir2/*", "dir/dir2/file", true),
        ("**/dir2/**", "dir/dir2/dir3/file", true),
        ("**file", "file", true),
        ("**file", "dir/file", true),
        ("**/file", "dir/file", true),
        ("**file", "dir/dir/file", true),
        ("**/file", "dir/dir/file", true),
        ("**/file*", "dir/dir/file", true),
        ("**/file*", "dir/dir/file.txt", true),
        ("**/file*txt", "dir/dir/file.txt", true),
        ("**/file*.txt", "dir/dir/file.txt", true),
        ("**/file*.txt*", "dir/dir/file.txt", true),
        ("**/**/*.txt", "dir/dir/file.txt", true),
        ("**/**/*.txt2", "dir/dir/file.txt", false),
        ("**/*.txt", "file.txt", true),
        ("**/**/*.txt", "file.txt", true),
        ("a**/*.txt", "a/file.txt", true),
        ("a**/*.txt", "a/dir/file.txt", true),
        ("a**/*.txt", "a/dir/dir/file.txt", true),
        ("a/*.txt", "a/dir/file.txt", false),
        ("a/*.txt", "a/file.txt", true),
        ("a/*.txt**", "a/file.txt", true),
        ("a[b-d]e", "ae", false),
        ("a[b-d]e", "ace", true),
        ("a[b-d]e", "aae", false),
        ("a[^b-d]e", "aze", true),
        (".*", ".foo", true),
        (".*", "foo", false),
        ("abc.def", "abcdef", false),
        ("abc.def", "abc.def", true),
        ("abc.def", "abcZdef", false),
        ("abc?def", "abcZdef", true),
        ("abc?def", "abcdef", false),
        ("a\\\\", "a\\", true),
        ("**/foo/bar", "foo/bar", true),
        ("**/foo/bar", "dir/foo/bar", true),
        ("**/foo/bar", "dir/dir2/foo/bar", true),
        ("abc/**", "abc", false),
        ("abc/**", "abc/def", true),
        ("abc/**", "abc/def/ghi", true),
        ("**/.foo", ".foo", true),
        ("**/.foo", "bar.foo", false),
        ("a(b)c/def", "a(b)c/def", true),
        ("a(b)c/def", "a(b)c/xyz", false),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
        (
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
    ];
    for (pattern, path, want) in cases {
        assert_eq!(
            ignore(pattern).is_excluded(path),
            *want,
            "{pattern:?} on {path:?}"
        );
    }
}

#[test]
fn dockerignore_reference_examples() {
    let d = ignore("# comment\n*/temp*\n*/*/temp*\ntemp?\n");
    assert!(d.is_excluded("somedir/temporary.txt"));
    assert!(d.is_excluded("somedir/temp"));
    assert!(d.is_excluded("somedir/subdir/temporary.txt"));
    assert!(d.is_excluded("tempa"));
    assert!(!d.is_excluded("temporary.txt"));
    assert!(!d.is_excluded("tempab"));

    let d = ignore("*.md\n!README.md\n");
    assert!(d.is_excluded("CHANGELOG.md"));
    assert!(!d.is_excluded("README.md"));
    assert!(
        !d.is_excluded("docs/guide.md"),
        "* does not cross directories"
    );

    let d = ignore("*.md\n!README*.md\nREADME-secret.md\n");
    assert!(d.is_excluded("README-secret.md"));
    assert!(!d.is_excluded("README-public.md"));
    assert!(d.is_excluded("other.md"));

    let d = ignore("*.md\nREADME-secret.md\n!README*.md\n");
    assert!(!d.is_excluded("README-secret.md"));
}

#[test]
fn excluded_directories_exclude_their_contents_unless_an_exception_follows() {
    let d = ignore("docs\n!docs/README.md\n");
    assert!(d.is_excluded("docs"));
    assert!(d.is_excluded("docs/other.txt"));
    assert!(!d.is_excluded("docs/README.md"));
    assert_eq!(d.walk("docs", true), Walk::Descend);
    assert_eq!(d.walk("docs/other.txt", false), Walk::Exclude);
    assert_eq!(d.walk("docs/README.md", false), Walk::Include);

    let d = ignore("node_modules\n");
    assert!(d.is_excluded("node_modules/a/b/c.js"));
    assert_eq!(d.walk("node_modules", true), Walk::Exclude);
    assert_eq!(d.walk("src", true), Walk::Include);

    // Exception with a wildcard inside an excluded tree.
    let d = ignore("vendor/\n!vendor/**/*.go\n");
    assert!(d.is_excluded("vendor/x/README"));
    assert!(!d.is_excluded("vendor/x/y.go"));
    assert_eq!(d.walk("vendor", true), Walk::Descend);
    assert_eq!(d.walk("vendor/x", true), Walk::Descend);
    assert_eq!(d.walk("other", true), Walk::Include);

    // Everything but one directory.
    let d = ignore("**\n!keep\n");
    assert!(!d.is_excluded("keep/deep/file"));
    assert!(d.is_excluded("drop/file"));
    assert_eq!(d.walk("drop", true), Walk::Exclude);
    assert_eq!(d.walk("keep", true), Walk::Include);

    // A later exclusion wins again, the last match decides.
    let d = ignore("a\n!a/b\na/b/c\n");
    assert!(!d.is_excluded("a/b/x"));
    assert!(d.is_excluded("a/b/c/x"));
}

#[test]
fn paths_are_cleaned_before_matching() {
    let d = ignore("a/b\n");
    for p in ["a/b", "./a/b", "a//b", "/a/b", "a/b/", "a/./b", "x/../a/b"] {
        assert!(d.is_excluded(p), "{p}");
    }
    assert!(!ignore("**").is_excluded("."));
    assert!(!ignore("**").is_excluded(""));
}

#[test]
fn build_files_are_reported() {
    let d = ignore("*\n!src\n");
    assert_eq!(
        d.build_files("Dockerfile"),
        BuildFiles {
            dockerfile_excluded: true,
            dockerignore_excluded: true
        }
    );
    let d = ignore("*.txt\n");
    assert_eq!(
        d.build_files("build/Dockerfile.prod"),
        BuildFiles {
            dockerfile_excluded: false,
            dockerignore_excluded: false
        }
    );
}

#[test]
fn go_clean() {
    for (i, o) in [
        ("", "."),
        ("a/../..", ".."),
        ("/..", "/"),
        ("a/../../b", "../b"),
        ("//a//b/./", "/a/b"),
        (".", "."),
    ] {
        assert_eq!(clean(i), o, "{i}");
    }
}

proptest! {
    #[test]
    fn matching_never_panics(pattern in "[a-z*?\\[\\]^!\\\\/.-]{0,12}", path in "[a-z*/.]{0,16}") {
        if let Ok(d) = DockerIgnore::parse(&pattern) {
            let _ = d.is_excluded(&path);
            let _ = d.walk(&path, true);
        }
    }

    /// Descend is sound: if some path below an excluded directory is included, the walker
    /// was told to look inside.
    #[test]
    fn walker_never_prunes_an_included_path(
        patterns in prop::collection::vec("!?[ab*]{1,2}(/[ab*]{1,2}){0,2}", 1..4),
        path in "[ab](/[ab]){1,3}",
    ) {
        let d = DockerIgnore::parse(&patterns.join("\n")).unwrap();
        if !d.is_excluded(&path) {
            let mut dir = String::new();
            for part in path.split('/').take(path.split('/').count() - 1) {
                if !dir.is_empty() {
                    dir.push('/');
                }
                dir.push_str(part);
                prop_assert_ne!(d.walk(&dir, true), Walk::Exclude, "{} pruned though {} is included", dir, path);
            }
        }
    }
}
