use super::*;
use crate::metrics::Stream;

fn m(name: &str, value: f64) -> Metric {
    Metric { name: name.into(), value, unit: "us".into(), stream: Stream::Stdout }
}

#[test]
fn parses_every_form() {
    assert_eq!(
        Check::parse("wakeup_latency_p99<=5000").unwrap(),
        Check::Max { metric: "wakeup_latency_p99".into(), max: 5000.0 }
    );
    assert_eq!(
        Check::parse(" iops >= 1000 ").unwrap(),
        Check::Min { metric: "iops".into(), min: 1000.0 }
    );
    assert_eq!(
        Check::parse("1<=int/x.y<=2.5").unwrap(),
        Check::Range { metric: "int/x.y".into(), min: 1.0, max: 2.5 }
    );
    assert_eq!(Check::parse("exit==0").unwrap(), Check::ExitCodeEq { code: 0 });
    assert_eq!(Check::parse("exit == 3").unwrap(), Check::ExitCodeEq { code: 3 });
    assert_eq!(
        Check::parse("exists(read/iops)").unwrap(),
        Check::Exists { metric: "read/iops".into() }
    );
    assert_eq!(Check::parse("read/iops").unwrap(), Check::Exists { metric: "read/iops".into() });
}

#[test]
fn text_form_round_trips() {
    for t in ["a>=1", "a<=2.5", "1<=a<=2", "exists(a)", "exit==0", "a<=0.0001", "-0.25<=a<=1.5"] {
        assert_eq!(Check::parse(t).unwrap().to_string(), t);
    }
}

#[test]
fn rejects_bad_expressions_with_a_reason() {
    for (t, why) in [
        ("", "empty"),
        ("a<5", "inclusive"),
        ("a>=", "not a finite number"),
        ("a>=x", "not a finite number"),
        ("5<=a<=1", "range is empty"),
        ("exit==zero", "integer"),
        ("a<=1<=2<=3", "too many"),
        ("a>=nan", "finite"),
        ("<=5", "empty"),
    ] {
        let err = Check::parse(t).unwrap_err();
        assert!(err.contains(why), "{t}: {err}");
        assert!(err.contains("expected"), "{t}: {err}");
    }
}

#[test]
fn bounds_are_inclusive_and_nan_fails() {
    let ms = [m("x", 5.0), m("n", f64::NAN)];
    let checks: Vec<Check> = ["x>=5", "x<=5", "5<=x<=5", "n>=0", "n<=0", "0<=n<=1", "exists(n)"]
        .iter()
        .map(|t| Check::parse(t).unwrap())
        .collect();
    let passed: Vec<bool> = evaluate(&checks, &ms, Some(0), b"").iter().map(|r| r.passed).collect();
    assert_eq!(passed, [true, true, true, false, false, false, true]);
}

#[test]
fn failure_names_metric_value_and_bound() {
    let r = &evaluate(&[Check::parse("x<=4").unwrap()], &[m("x", 5.0)], Some(0), b"")[0];
    assert!(!r.passed);
    assert_eq!(r.detail, "x = 5 us, must be <= 4");
}

#[test]
fn missing_metric_fails_loudly() {
    let r = &evaluate(&[Check::parse("y>=1").unwrap()], &[m("x", 5.0)], Some(0), b"")[0];
    assert!(!r.passed);
    assert!(r.detail.contains("`y` is missing") && r.detail.contains("x"), "{}", r.detail);
}

#[test]
fn exit_code_goes_first_and_carries_stderr_tail() {
    let stderr = [b"x".repeat(2000), b"the real reason".to_vec()].concat();
    let checks = [Check::parse("x>=1").unwrap(), Check::parse("exit==0").unwrap()];
    let rs = evaluate(&checks, &[m("x", 5.0)], Some(2), &stderr);
    assert_eq!(rs[0].check, "exit==0");
    assert!(!rs[0].passed);
    assert!(rs[0].detail.contains("got exit code 2") && rs[0].detail.ends_with("the real reason"));
    assert!(rs[0].detail.len() < STDERR_TAIL + 200);
    assert!(rs[1].passed);
    let killed = evaluate(&[Check::ExitCodeEq { code: 0 }], &[], None, b"");
    assert!(killed[0].detail.contains("killed by a signal"));
}

fn run(text: &str, metrics: &[Metric]) -> CheckResult {
    evaluate(&[Check::parse(text).unwrap()], metrics, Some(0), b"").remove(0)
}

/// `test/0` … `test/{n-1}`, valued 0 … n-1.
fn family(n: usize) -> Vec<Metric> {
    (0..n).map(|i| m(&format!("test/{i}"), i as f64)).collect()
}

#[test]
fn parses_family_forms() {
    let family =
        |aggregate, glob: &str, bound| Check::Family { aggregate, glob: glob.into(), bound };
    for (text, check) in [
        ("all(test/*)>=1", family(Aggregate::All, "test/*", Bound::AtLeast(1.0))),
        ("0<=all(x/*)<=5", family(Aggregate::All, "x/*", Bound::Within { min: 0.0, max: 5.0 })),
        ("count(test/*)>=21", family(Aggregate::Count, "test/*", Bound::AtLeast(21.0))),
        ("sum(*_bytes)<=1e6", family(Aggregate::Sum, "*_bytes", Bound::AtMost(1e6))),
        (" max( lat/*/p99 ) <= 5 ", family(Aggregate::Max, "lat/*/p99", Bound::AtMost(5.0))),
        ("min(*)>=-1", family(Aggregate::Min, "*", Bound::AtLeast(-1.0))),
        // A glob without `*` is a family of one.
        ("count(iops)<=1", family(Aggregate::Count, "iops", Bound::AtMost(1.0))),
        ("exists(test/*)", Check::Exists { metric: "test/*".into() }),
    ] {
        assert_eq!(Check::parse(text).unwrap(), check, "{text}");
    }
}

#[test]
fn family_text_form_round_trips() {
    for t in ["all(a/*)>=1", "0<=all(a/*)<=5", "count(*)>=21", "sum(a*b)<=2.5", "max(*)<=0"] {
        assert_eq!(Check::parse(t).unwrap().to_string(), t);
    }
    assert_eq!(Check::parse("min(*)>=1").unwrap().to_string(), "min(*)>=1");
    assert_eq!(Check::parse("exists(a/*)").unwrap().to_string(), "exists(a/*)");
}

#[test]
fn rejects_bad_family_expressions_with_a_reason() {
    for (t, why) in [
        ("test/*>=1", "globs only go inside"),
        ("test/*", "globs only go inside"),
        ("1<=a*<=2", "globs only go inside"),
        ("all(x/*)", "`all(…)` needs a bound"),
        ("count(x/*)", "`count(…)` needs a bound"),
        ("exists(x/*)>=1", "takes no bound"),
        ("avg(x/*)>=1", "`avg` is not a function"),
        ("all(x/*>=1", "does not end with `)`"),
        ("all()>=1", "empty"),
        ("all(a b)>=1", "not a metric name"),
        ("all(max(x))>=1", "not a metric name"),
        ("5<=sum(x*)<=1", "range is empty"),
    ] {
        let err = Check::parse(t).unwrap_err();
        assert!(err.contains(why), "{t}: {err}");
        // One message lists every accepted form.
        for form in ["LO<=name<=HI", "exists(glob)", "all(glob)", "count(glob)", "min(glob)"] {
            assert!(err.contains(form), "{t}: {err}");
        }
    }
}

#[test]
fn serde_form_of_existing_variants_is_unchanged() {
    let json = |c: &Check| serde_json::to_string(c).unwrap();
    assert_eq!(json(&Check::parse("x>=1").unwrap()), r#"{"kind":"min","metric":"x","min":1.0}"#);
    assert_eq!(json(&Check::parse("x<=1").unwrap()), r#"{"kind":"max","metric":"x","max":1.0}"#);
    assert_eq!(
        json(&Check::parse("0<=x<=1").unwrap()),
        r#"{"kind":"range","metric":"x","min":0.0,"max":1.0}"#
    );
    assert_eq!(json(&Check::parse("x").unwrap()), r#"{"kind":"exists","metric":"x"}"#);
    assert_eq!(json(&Check::parse("exit==3").unwrap()), r#"{"kind":"exit_code_eq","code":3}"#);
    let family = Check::parse("0<=all(x/*)<=5").unwrap();
    assert_eq!(
        json(&family),
        r#"{"kind":"family","aggregate":"all","glob":"x/*","bound":{"within":{"min":0.0,"max":5.0}}}"#
    );
    assert_eq!(serde_json::from_str::<Check>(&json(&family)).unwrap(), family);
}

#[test]
fn globs_match_any_run_including_slashes() {
    for (p, n) in [
        ("test/*", "test/a/b"),
        ("test/*", "test/"),
        ("*", ""),
        ("*_p99", "lat/wakeup_p99"),
        ("a*b*c", "abc"),
        ("a*b*c", "a/xb/yc"),
        ("a**", "a"),
        ("iops", "iops"),
    ] {
        assert!(glob_matches(p, n), "{p} ~ {n}");
    }
    for (p, n) in [
        ("test/*", "other/a"),
        ("test/*", "test"),
        ("a*a", "a"),
        ("a*b*c", "acb"),
        ("iops", "iops2"),
        ("*x", "xy"),
    ] {
        assert!(!glob_matches(p, n), "{p} !~ {n}");
    }
}

#[test]
fn all_holds_every_match_to_the_bound() {
    let ms = [family(3), vec![m("other", -5.0)]].concat();
    let pass = run("all(test/*)>=0", &ms);
    assert!(pass.passed && pass.value.is_none(), "{pass:?}");
    assert!(run("0<=all(test/*)<=2", &ms).passed);
    let fail = run("all(test/*)>=1", &ms);
    assert!(!fail.passed);
    assert_eq!(fail.value, Some(0.0));
    assert_eq!(
        fail.detail,
        "1 of 3 metrics matching `test/*` break the bound (must be >= 1): test/0 = 0 us"
    );
}

#[test]
fn failed_all_names_the_first_few_offenders() {
    let r = run("all(test/*)>=100", &family(21));
    assert!(r.detail.starts_with("21 of 21 metrics matching `test/*`"), "{}", r.detail);
    assert!(r.detail.ends_with("test/3 = 3 us, test/4 = 4 us, and 16 more"), "{}", r.detail);
    assert!(!r.detail.contains("test/5 "), "{}", r.detail);
}

#[test]
fn count_counts_and_zero_is_a_value() {
    let ms = family(21);
    let r = run("count(test/*)>=21", &ms);
    assert!(r.passed && r.value == Some(21.0), "{r:?}");
    let none = run("count(nope/*)<=0", &ms);
    assert!(none.passed && none.value == Some(0.0), "{none:?}");
    let few = run("count(test/1*)>=21", &ms);
    assert!(!few.passed);
    assert_eq!(
        few.detail,
        "count(test/1*) = 11 (test/1, test/10, test/11, test/12, test/13, test/14, test/15, \
         test/16, test/17, test/18, test/19), must be >= 21"
    );
    let zero = run("count(nope/*)>=1", &ms);
    assert!(zero.detail.contains("no metric matches; have: test/0, test/1"), "{}", zero.detail);
}

#[test]
fn sum_max_and_min_aggregate_the_matches() {
    let ms = [family(4), vec![m("other", 100.0)]].concat();
    let sum = run("sum(test/*)<=5", &ms);
    assert_eq!((sum.passed, sum.value), (false, Some(6.0)));
    assert_eq!(sum.detail, "sum(test/*) = 6 us over 4, must be <= 5");
    assert!(run("sum(test/*)>=6", &ms).passed);
    let max = run("max(test/*)<=2", &ms);
    assert_eq!((max.passed, max.value), (false, Some(3.0)));
    assert_eq!(max.detail, "max(test/*) is test/3 = 3 us, must be <= 2");
    let min = run("1<=min(test/*)<=9", &ms);
    assert_eq!(min.detail, "min(test/*) is test/0 = 0 us, must be in [1, 9]");
    assert!(run("min(test/*)>=0", &ms).passed);
}

#[test]
fn nan_fails_every_family_bound() {
    let ms = [family(3), vec![m("test/nan", f64::NAN)]].concat();
    for t in ["all(test/*)>=0", "sum(test/*)>=0", "max(test/*)>=0", "min(test/*)<=9"] {
        let r = run(t, &ms);
        assert!(!r.passed, "{t}: {r:?}");
        assert!(r.detail.contains("NaN"), "{t}: {}", r.detail);
    }
    assert!(run("count(test/*)>=4", &ms).passed);
}

#[test]
fn a_glob_that_matches_nothing_fails_loudly() {
    let ms = family(14);
    for t in ["all(nope/*)>=0", "sum(nope/*)>=0", "max(nope/*)<=1", "0<=min(nope/*)<=1"] {
        let r = run(t, &ms);
        assert!(!r.passed && r.value.is_none(), "{t}: {r:?}");
        assert!(
            r.detail.starts_with("no metric matches `nope/*` (have: test/0, test/1, ")
                && r.detail.ends_with("test/11, and 2 more)"),
            "{t}: {}",
            r.detail
        );
    }
    let exists = run("exists(nope/*)", &ms);
    assert!(!exists.passed && exists.detail.starts_with("no metric matches `nope/*`"));
    let found = run("exists(test/1*)", &ms);
    assert_eq!((found.passed, found.value), (true, Some(5.0)));
    assert!(run("exists(nope/*)", &[]).detail.contains("(have: none)"));
}

#[test]
fn every_failure_carries_the_notes_then_the_stderr_tail() {
    let notes = ["FAILED test_wake: expected 3, got 4".to_string(), "1 of 21 tests failed".into()];
    let stderr = b"warming up\nassertion failed at wake.c:12\n";
    let evidence = Evidence { stderr, notes: &notes };
    let checks: Vec<Check> =
        ["exit==0", "x<=4", "y>=1", "all(test/*)>=1", "count(test/*)>=3", "x>=0", "exists(x)"]
            .iter()
            .map(|t| Check::parse(t).unwrap())
            .collect();
    let ms = [vec![m("x", 5.0)], family(2)].concat();
    let rs = evaluate_with(&checks, &ms, Some(1), &evidence);
    let evidence_text = "\nFAILED test_wake: expected 3, got 4\n1 of 21 tests failed\n\
                         stderr tail:\nwarming up\nassertion failed at wake.c:12";
    for r in &rs[..5] {
        assert!(!r.passed, "{r:?}");
        let (why, rest) = r.detail.split_once('\n').unwrap();
        assert!(!why.is_empty() && !why.contains("stderr"), "{}", r.detail);
        assert_eq!(format!("\n{rest}"), evidence_text, "{}", r.check);
    }
    assert_eq!(rs[0].detail, format!("expected exit code 0, got exit code 1{evidence_text}"));
    for r in &rs[5..] {
        assert!(r.passed && r.detail.is_empty(), "{r:?}");
    }
}

#[test]
fn evaluate_is_evaluate_with_and_no_notes() {
    let checks = [Check::parse("x<=4").unwrap()];
    let r = &evaluate(&checks, &[m("x", 5.0)], Some(0), b"oops\n")[0];
    assert_eq!(r.detail, "x = 5 us, must be <= 4\nstderr tail:\noops");
    let with = evaluate_with(&checks, &[m("x", 5.0)], Some(0), &Evidence::default());
    assert_eq!(with[0].detail, "x = 5 us, must be <= 4");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn finite() -> impl Strategy<Value = f64> {
        any::<f64>().prop_filter("finite", |v| v.is_finite())
    }

    fn bound() -> impl Strategy<Value = Bound> {
        prop_oneof![
            finite().prop_map(Bound::AtLeast),
            finite().prop_map(Bound::AtMost),
            (finite(), finite()).prop_map(|(a, b)| Bound::Within { min: a.min(b), max: a.max(b) }),
        ]
    }

    fn check() -> impl Strategy<Value = Check> {
        let name = "[a-z_][a-z0-9_./-]{0,10}";
        let glob = "[a-z0-9_./*-]{1,10}";
        prop_oneof![
            (name, finite()).prop_map(|(metric, min)| Check::Min { metric, min }),
            (name, finite()).prop_map(|(metric, max)| Check::Max { metric, max }),
            (name, bound()).prop_map(|(metric, b)| match b {
                Bound::Within { min, max } => Check::Range { metric, min, max },
                Bound::AtLeast(v) | Bound::AtMost(v) => Check::Range { metric, min: v, max: v },
            }),
            name.prop_map(|metric| Check::Exists { metric }),
            glob.prop_map(|metric| Check::Exists { metric }),
            any::<i32>().prop_map(|code| Check::ExitCodeEq { code }),
            (proptest::sample::select(Aggregate::EVERY.to_vec()), glob, bound())
                .prop_map(|(aggregate, glob, bound)| Check::Family { aggregate, glob, bound }),
        ]
    }

    /// Glob matching by its definition, slowly.
    fn reference(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => reference(&p[1..], n) || (!n.is_empty() && reference(p, &n[1..])),
            (Some(a), Some(b)) if a == b => reference(&p[1..], &n[1..]),
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn display_parses_back(c in check()) {
            prop_assert_eq!(Check::parse(&c.to_string()), Ok(c));
        }

        #[test]
        fn globs_match_by_definition(p in "[ab/*]{0,8}", n in "[ab/]{0,10}") {
            prop_assert_eq!(glob_matches(&p, &n), reference(p.as_bytes(), n.as_bytes()));
        }
    }
}
