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
