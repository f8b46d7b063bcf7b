//! `--junit FILE`: one testcase per cell, in the JUnit XML CI systems read
//! (written with quick-junit).

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::cell::{CellResult, NOT_RUN, NO_RESULT};

/// The report: a suite named after the gauntlet, a testcase per cell named
/// by its id, classed by scheduler; a failure's message is verdict, class
/// and reason, and every testcase's system-out is the run's summary.
pub fn report(results: &[CellResult], wall: Duration) -> Report {
    let mut suite = TestSuite::new("ktstr gauntlet");
    suite.set_time(wall);
    for r in results {
        let mut status = if r.passed() {
            TestCaseStatus::success()
        } else if r.verdict == NOT_RUN {
            TestCaseStatus::skipped()
        } else {
            let kind = if r.verdict == NO_RESULT {
                NonSuccessKind::Error
            } else {
                NonSuccessKind::Failure
            };
            TestCaseStatus::non_success(kind)
        };
        if !r.passed() {
            status.set_message(message(r)).set_type(r.verdict.as_str());
        }
        let mut case = TestCase::new(r.cell.id.as_str(), status);
        case.set_classname(format!("ktstr.gauntlet.{}", r.cell.scheduler));
        case.set_time(Duration::from_millis(r.wall_ms));
        case.set_system_out_lossy(r.summary());
        suite.add_test_case(case);
    }
    let mut report = Report::new("ktstr");
    report.set_time(wall);
    report.add_test_suite(suite);
    report
}

/// `SCHEDULER_FAILED (stall): the reason`.
pub fn message(r: &CellResult) -> String {
    match &r.class {
        Some(class) => format!("{} ({class}): {}", r.verdict, r.reason),
        None => format!("{}: {}", r.verdict, r.reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gauntlet::plan::test_cell;

    fn result(id: &str, verdict: &str) -> CellResult {
        let cell = test_cell(id);
        let mut r = CellResult::not_run(&cell, "/nonexistent".into(), "interrupted");
        r.verdict = verdict.into();
        r.class = (verdict == "SCHEDULER_FAILED").then(|| "stall".into());
        r.reason = format!("{id} reason");
        r.wall_ms = 1500;
        r
    }

    #[test]
    fn the_report_parses_back_with_one_testcase_per_cell() {
        let results = [
            result("a", "PASS"),
            result("b", "SCHEDULER_FAILED"),
            result("c", NO_RESULT),
            result("d", NOT_RUN),
        ];
        let xml = report(&results, Duration::from_secs(9)).to_string().unwrap();
        let back = Report::deserialize_from_str(&xml).unwrap();
        let cases = &back.test_suites[0].test_cases;
        assert_eq!(cases.len(), 4);
        assert_eq!((back.tests, back.failures, back.errors), (4, 1, 1));
        assert!(matches!(cases[0].status, TestCaseStatus::Success { .. }));
        match &cases[1].status {
            TestCaseStatus::NonSuccess { kind: NonSuccessKind::Failure, message, .. } => {
                assert_eq!(message.as_deref(), Some("SCHEDULER_FAILED (stall): b reason"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(cases[3].status, TestCaseStatus::Skipped { .. }));
        assert_eq!(cases[1].classname.as_deref(), Some("ktstr.gauntlet.scx_simple"));
    }
}
