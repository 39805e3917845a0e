use super::*;

fn dep(s: &str) -> Dep {
    Dep::parse(s).unwrap()
}
fn atom(s: &str) -> RichDep {
    RichDep::Atom(Atom::Dep(dep(s)))
}
fn with(ds: &[&str]) -> RichDep {
    RichDep::Atom(Atom::With(ds.iter().map(|d| dep(d)).collect()))
}
fn without(a: &str, bs: &[&str]) -> RichDep {
    RichDep::Atom(Atom::Without(dep(a), bs.iter().map(|d| dep(d)).collect()))
}

/// Clauses rendered as `a|b|!c` strings, for compact assertions.
fn show(text: &str) -> Vec<String> {
    parse_rich(text)
        .unwrap()
        .to_cnf_requires()
        .iter()
        .map(|c| {
            c.positive
                .iter()
                .map(|a| a.to_string())
                .chain(c.negative.iter().map(|a| format!("!{a}")))
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

#[test]
fn parses_each_operator() {
    assert_eq!(
        parse_rich("(a or b)").unwrap(),
        RichDep::Or(vec![atom("a"), atom("b")])
    );
    assert_eq!(
        parse_rich("(a and b and c)").unwrap(),
        RichDep::And(vec![atom("a"), atom("b"), atom("c")])
    );
    assert_eq!(
        parse_rich("(foo >= 1.0 or bar)").unwrap(),
        RichDep::Or(vec![atom("foo >= 1.0"), atom("bar")])
    );
    assert_eq!(
        parse_rich("(a if b)").unwrap(),
        RichDep::If(Box::new(atom("a")), Box::new(atom("b")), None)
    );
    assert_eq!(
        parse_rich("(a if b else c)").unwrap(),
        RichDep::If(
            Box::new(atom("a")),
            Box::new(atom("b")),
            Some(Box::new(atom("c")))
        )
    );
    assert_eq!(
        parse_rich("(a unless b)").unwrap(),
        RichDep::Unless(Box::new(atom("a")), Box::new(atom("b")), None)
    );
    assert_eq!(
        parse_rich("(a unless b else c)").unwrap(),
        RichDep::Unless(
            Box::new(atom("a")),
            Box::new(atom("b")),
            Some(Box::new(atom("c")))
        )
    );
    assert_eq!(
        parse_rich("(a with b with c)").unwrap(),
        with(&["a", "b", "c"])
    );
    assert_eq!(parse_rich("(a without b)").unwrap(), without("a", &["b"]));
    // rpm accepts a lone operand in parentheses.
    assert_eq!(parse_rich("(a >= 2)").unwrap(), atom("a >= 2"));
}

#[test]
fn versions_and_spacing() {
    assert_eq!(
        parse_rich("( python3dist(foo) >= 1:2.0-1 with python3dist(foo) < 3~ )").unwrap(),
        with(&["python3dist(foo) >= 1:2.0-1", "python3dist(foo) < 3~"])
    );
    // rpm's alternative spellings of operators, and commas as white space.
    assert!(parse_rich("(a => 1, b =< 2)")
        .unwrap_err()
        .message
        .contains("expected and, or"));
    assert_eq!(
        parse_rich("(a => 1 or b =< 2)").unwrap(),
        RichDep::Or(vec![atom("a >= 1"), atom("b <= 2")])
    );
    assert_eq!(
        parse_rich("(a,or,b)").unwrap(),
        RichDep::Or(vec![atom("a"), atom("b")])
    );
    assert_eq!(
        parse_rich("(a\tor\nb)").unwrap(),
        RichDep::Or(vec![atom("a"), atom("b")])
    );
}

#[test]
fn nesting() {
    assert_eq!(
        parse_rich("((a or b) and (c if (d unless e)))").unwrap(),
        RichDep::And(vec![
            RichDep::Or(vec![atom("a"), atom("b")]),
            RichDep::If(
                Box::new(atom("c")),
                Box::new(RichDep::Unless(
                    Box::new(atom("d")),
                    Box::new(atom("e")),
                    None
                )),
                None
            ),
        ])
    );
    let deep = format!("{}a{}", "(".repeat(40), ")".repeat(40));
    assert_eq!(parse_rich(&deep).unwrap(), atom("a"));
}

#[test]
fn names_with_parentheses_stay_whole() {
    assert_eq!(
        parse_rich("(libc.so.6()(64bit) or perl(Foo::Bar) >= 1.2)").unwrap(),
        RichDep::Or(vec![
            atom("libc.so.6()(64bit)"),
            atom("perl(Foo::Bar) >= 1.2")
        ])
    );
    assert_eq!(
        parse_rich("(a or font(:lang=en))").unwrap(),
        RichDep::Or(vec![atom("a"), atom("font(:lang=en)")])
    );
}

#[test]
fn with_and_without_over_unions() {
    // rpm evaluates these on package sets, where `or` is a union.
    assert_eq!(
        parse_rich("(a with (b or c))").unwrap(),
        RichDep::Or(vec![with(&["a", "b"]), with(&["a", "c"])])
    );
    assert_eq!(
        parse_rich("((a or b) with c)").unwrap(),
        RichDep::Or(vec![with(&["a", "c"]), with(&["b", "c"])])
    );
    assert_eq!(
        parse_rich("(a with (b with c))").unwrap(),
        with(&["a", "b", "c"])
    );
    assert_eq!(
        parse_rich("((a or b) without c)").unwrap(),
        RichDep::Or(vec![without("a", &["c"]), without("b", &["c"])])
    );
}

#[test]
fn corpus_expressions() {
    assert_eq!(
        show("(media-types or mime-support)"),
        ["media-types|mime-support"]
    );
    // debianutils' rich conflict.
    let r = parse_rich(
        "(ifupdown < 0.8.36+nmu1-0 without (ifupdown-ng or ifupdown2 or netscript-2.4))",
    )
    .unwrap();
    assert_eq!(
        r,
        without(
            "ifupdown < 0.8.36+nmu1-0",
            &["ifupdown-ng", "ifupdown2", "netscript-2.4"]
        )
    );
    assert_eq!(
        show("(perl-modules < 5.36.0~-0 without perl-modules-5.36)"),
        ["(perl-modules < 5.36.0~-0 without perl-modules-5.36)"]
    );
}

#[test]
fn cnf_of_every_operator() {
    assert_eq!(show("(a)"), ["a"]);
    assert_eq!(show("(a and b)"), ["a", "b"]);
    assert_eq!(show("(a or b or c)"), ["a|b|c"]);
    assert_eq!(show("(a if b)"), ["a|!b"]);
    assert_eq!(show("(a if b else c)"), ["a|!b", "c|b"]);
    assert_eq!(show("(a unless b)"), ["a|b"]);
    assert_eq!(show("(a unless b else c)"), ["a|b", "c|!b"]);
    assert_eq!(show("(a with b)"), ["(a with b)"]);
    assert_eq!(show("(a without b)"), ["(a without b)"]);
}

#[test]
fn cnf_of_nested_expressions() {
    assert_eq!(show("(a and (b or c))"), ["a", "b|c"]);
    assert_eq!(show("((a and b) or c)"), ["a|c", "b|c"]);
    assert_eq!(
        show("((a and b) or (c and d))"),
        ["a|c", "a|d", "b|c", "b|d"]
    );
    // ¬(b and c) = ¬b ∨ ¬c; ¬(b or c) = ¬b ∧ ¬c.
    assert_eq!(show("(a if (b and c))"), ["a|!b|!c"]);
    assert_eq!(show("(a if (b or c))"), ["a|!b", "a|!c"]);
    assert_eq!(show("(a unless (b or c))"), ["a|b|c"]);
    assert_eq!(show("(a unless (b and c))"), ["a|b", "a|c"]);
    assert_eq!(show("((a with b) or c)"), ["(a with b)|c"]);
    // A conditional in a condition: ¬(x if y) = ¬x ∧ y.
    assert_eq!(show("(a if (x if y))"), ["a|!x", "a|y"]);
    // ¬(x unless y) = ¬x ∧ ¬y.
    assert_eq!(show("(a if (x unless y))"), ["a|!x", "a|!y"]);
    // Tautologies vanish, repeats collapse.
    assert!(show("(a if a)").is_empty());
    assert_eq!(show("(a or a or b)"), ["a|b"]);
}

/// The CNF must agree with the expression's direct meaning under every assignment.
#[test]
fn cnf_is_equivalent_to_the_expression() {
    fn eval(r: &RichDep, on: &dyn Fn(&Atom) -> bool) -> bool {
        match r {
            RichDep::Atom(a) => on(a),
            RichDep::And(xs) => xs.iter().all(|x| eval(x, on)),
            RichDep::Or(xs) => xs.iter().any(|x| eval(x, on)),
            RichDep::If(a, b, c) => {
                if eval(b, on) {
                    eval(a, on)
                } else {
                    c.as_ref().is_none_or(|c| eval(c, on))
                }
            }
            RichDep::Unless(a, b, c) => {
                if !eval(b, on) {
                    eval(a, on)
                } else {
                    c.as_ref().is_none_or(|c| eval(c, on))
                }
            }
        }
    }
    let mut seed: u64 = 0x2545f4914f6cdd1d;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    fn gen(next: &mut dyn FnMut(u64) -> u64, depth: u32) -> String {
        let leaf =
            |next: &mut dyn FnMut(u64) -> u64| ["a", "b", "c", "d"][next(4) as usize].to_string();
        let operand = |next: &mut dyn FnMut(u64) -> u64| {
            if depth == 0 || next(3) == 0 {
                leaf(next)
            } else {
                gen(next, depth - 1)
            }
        };
        let x = operand(next);
        let y = operand(next);
        match next(6) {
            0 => format!("({x} and {y} and {})", operand(next)),
            1 => format!("({x} or {y})"),
            2 => format!("({x} if {y})"),
            3 => format!("({x} if {y} else {})", operand(next)),
            4 => format!("({x} unless {y})"),
            _ => format!("({x} unless {y} else {})", operand(next)),
        }
    }
    for _ in 0..300 {
        let text = gen(&mut next, 3);
        let r = parse_rich(&text).unwrap();
        let clauses = r.to_cnf_requires();
        for bits in 0..16u32 {
            let on = |a: &Atom| match a {
                Atom::Dep(d) => bits & (1 << (d.name.as_bytes()[0] - b'a')) != 0,
                _ => unreachable!("generator makes simple atoms only"),
            };
            let cnf_value = clauses
                .iter()
                .all(|c| c.positive.iter().any(&on) || c.negative.iter().any(|a| !on(a)));
            assert_eq!(
                cnf_value,
                eval(&r, &on),
                "{text} under {bits:04b}: {clauses:?}"
            );
        }
        // Display gives back the same expression.
        assert_eq!(parse_rich(&r.to_string()).unwrap(), r, "{text}");
    }
}

#[test]
fn cnf_size_is_bounded() {
    let big = format!(
        "({})",
        (0..13)
            .map(|i| format!("(a{i} and b{i})"))
            .collect::<Vec<_>>()
            .join(" or ")
    );
    let r = parse_rich(&big).unwrap();
    assert_eq!(
        r.try_to_cnf_requires(1000),
        Err(CnfTooLarge { limit: 1000 })
    );
    assert_eq!(r.try_to_cnf_requires(1 << 13).unwrap().len(), 1 << 13);
    // Over the default limit: one unsatisfiable clause rather than an unbounded CNF.
    assert_eq!(r.to_cnf_requires(), [Clause::default()]);
}

#[test]
fn leaf_names_cover_every_operand() {
    let r = parse_rich("((a with b) if c else (d without (e or f)))").unwrap();
    assert_eq!(r.leaf_names(), ["a", "b", "c", "d", "e", "f"]);
    assert!(r.has_conditionals());
    assert!(!parse_rich("(a or (b and c))").unwrap().has_conditionals());
}

#[test]
fn display_round_trips() {
    for text in [
        "(a or b)",
        "(a >= 1:2.0-1 and (b if c else d))",
        "(a unless b)",
        "(a with b with c)",
        "(a without (b or c))",
        "(a without b)",
        "((a with b) or c)",
    ] {
        let r = parse_rich(text).unwrap();
        assert_eq!(r.to_string(), text);
        assert_eq!(parse_rich(&r.to_string()).unwrap(), r);
    }
}

#[test]
fn errors_point_at_the_problem() {
    for (text, needle, pos) in [
        ("a or b", "starts with `(`", 0),
        ("(a or b", "expected `)`", 7),
        ("(a", "expected `)`", 2),
        ("()", "expected a dependency", 1),
        ("(a or b and c)", "cannot be mixed", 8),
        ("(a if b if c)", "cannot be mixed", 8),
        ("(a if b else c else d)", "cannot be mixed", 15),
        ("(a else b)", "expected and, or", 3),
        ("(a or)", "expected a dependency", 5),
        ("(a or or)", "expected a dependency, found `or`", 6),
        ("(a >= )", "version", 6),
        ("(a or b) c", "after the closing", 9),
        ("(a frob b)", "expected and, or", 3),
        ("((a and b) with c)", "may only use `or`", 1),
        ("(a with (b if c))", "may only use `or`", 8),
        ("((a with b) without c)", "left of `without`", 1),
        ("(a without (b with c))", "right of `without`", 11),
        ("((a without b) with c)", "`without` inside", 1),
    ] {
        let e = parse_rich(text).unwrap_err();
        assert!(e.to_string().contains(needle), "{text}: {e}");
        assert_eq!(e.pos, pos, "{text}: {e}");
    }
    let deep = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse_rich(&deep)
        .unwrap_err()
        .message
        .contains("nested too deeply"));
    let wide = format!(
        "({})",
        (0..20)
            .map(|i| format!("(a{i} or b{i})"))
            .collect::<Vec<_>>()
            .join(" with ")
    );
    assert!(parse_rich(&wide).unwrap_err().message.contains("too large"));
    assert!(is_rich("(a or b)") && !is_rich("a"));
}
