//! Where a run's time went, stage by stage: the spans between the marks of
//! `ktstr run`'s timeline, and their medians per engine, so that two engines'
//! totals can be told apart (a slower boot, a slower power-off).

use serde::Serialize;
use serde_json::Value;

use super::report::{engine_width, median};

/// Each stage ends at a timeline mark; the last one ends at the wall time.
const STAGES: [(&str, Option<&str>); 8] = [
    ("prepare", Some("prepared_ms")),
    ("boot", Some("booted_ms")),
    ("kernel+init", Some("guest_up_ms")),
    ("scheduler", Some("scheduler_ready_ms")),
    ("payload", Some("payload_ended_ms")),
    ("results", Some("finished_ms")),
    ("power off", Some("vm_ended_ms")),
    ("exit", None),
];

#[derive(Debug, Serialize, PartialEq)]
pub struct StageMedian {
    pub stage: &'static str,
    pub ms: u64,
}

/// Each stage's span in one run; None for a stage whose mark is missing
/// (its time then counts towards the next stage that has one).
fn spans(timeline: &Value, wall_ms: u128) -> Vec<Option<u64>> {
    let mut prev = 0u64;
    STAGES
        .iter()
        .map(|(_, mark)| {
            let at = match mark {
                Some(m) => timeline.get(*m)?.as_u64()?,
                None => u64::try_from(wall_ms).ok()?,
            };
            let span = at.saturating_sub(prev);
            prev = at;
            Some(span)
        })
        .collect()
}

/// The median span of each stage over `runs` (timeline, wall time), for the
/// stages every run has.
pub fn medians<'a>(runs: impl Iterator<Item = (&'a Value, u128)>) -> Vec<StageMedian> {
    let all: Vec<Vec<Option<u64>>> = runs.map(|(t, wall)| spans(t, wall)).collect();
    STAGES
        .iter()
        .enumerate()
        .filter_map(|(i, (stage, _))| {
            let spans: Option<Vec<u64>> = all.iter().map(|s| s[i]).collect();
            Some(StageMedian { stage, ms: median(spans?)? })
        })
        .collect()
}

/// `median ms per stage` and one row per engine, columns as wide as their names.
pub fn table(rows: &[(&str, &[StageMedian])]) -> String {
    let w = engine_width(rows.iter().map(|(e, _)| *e));
    let mut s = format!("{:<w$}", "engine");
    for (stage, _) in STAGES {
        s.push_str(&format!("  {stage:>8}"));
    }
    s.push('\n');
    for (engine, medians) in rows {
        s.push_str(&format!("{engine:<w$}"));
        for (stage, _) in STAGES {
            let cell = medians.iter().find(|m| m.stage == stage).map(|m| m.ms.to_string());
            let cell = cell.unwrap_or_else(|| "-".into());
            s.push_str(&format!("  {:>w2$}", cell, w2 = stage.len().max(8)));
        }
        s.push('\n');
    }
    s
}

/// Each stage's mark in the picture, in `STAGES` order.
const GLYPHS: [char; 8] = ['p', 'b', 'K', 's', 'P', 'r', 'o', 'x'];

/// The medians as bars on one scale, a character per stage per `step` ms
/// (the longest bar is at most `width` wide), so that where two engines'
/// time parts shows at a glance. A stage ends where its cumulative time
/// rounds to, so a bar is as long as its total, short stages may vanish.
pub fn bars(rows: &[(&str, &[StageMedian])], width: usize) -> String {
    let total = |m: &[StageMedian]| m.iter().map(|s| s.ms).sum::<u64>();
    let longest = rows.iter().map(|(_, m)| total(m)).max().unwrap_or(0);
    let step = [50u64, 100, 200, 250, 500, 1000, 2000, 5000, 10_000]
        .into_iter()
        .find(|step| longest.div_ceil(*step) <= width as u64)
        .unwrap_or(longest.div_ceil(width.max(1) as u64).max(1));
    let legend: Vec<String> =
        STAGES.iter().zip(GLYPHS).map(|((stage, _), g)| format!("{g} {stage}")).collect();
    let mut s = format!("one character per {step} ms: {}\n", legend.join(", "));
    let w = engine_width(rows.iter().map(|(e, _)| *e));
    for (engine, medians) in rows {
        let mut bar = String::new();
        let mut at = 0u64;
        for ((stage, _), glyph) in STAGES.iter().zip(GLYPHS) {
            let Some(m) = medians.iter().find(|m| m.stage == *stage) else { continue };
            let from = (at + step / 2) / step;
            at += m.ms;
            let to = (at + step / 2) / step;
            bar.extend(std::iter::repeat_n(glyph, (to - from) as usize));
        }
        s.push_str(&format!("{engine:<w$}  {bar}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline(ms: [u64; 7]) -> Value {
        let names = STAGES.iter().filter_map(|(_, m)| *m);
        Value::Object(names.zip(ms).map(|(n, v)| (n.to_string(), v.into())).collect())
    }

    #[test]
    fn each_stage_is_the_span_since_the_previous_mark() {
        let t = timeline([300, 500, 2500, 2700, 3800, 3900, 4000]);
        let spans = spans(&t, 4100);
        assert_eq!(spans, [300, 200, 2000, 200, 1100, 100, 100, 100].map(Some));
    }

    #[test]
    fn medians_are_per_stage_and_a_missing_mark_folds_into_the_next_stage() {
        let a = timeline([300, 500, 2500, 2700, 3800, 3900, 4000]);
        let b = timeline([100, 400, 2400, 2500, 3600, 3700, 3800]);
        let mut c = timeline([200, 300, 2300, 2600, 3700, 3800, 3900]);
        c.as_object_mut().unwrap().remove("scheduler_ready_ms");
        let m = medians([(&a, 4100), (&b, 3900), (&c, 4000)].into_iter());
        let get = |s: &str| m.iter().find(|x| x.stage == s).map(|x| x.ms);
        assert_eq!(get("prepare"), Some(200));
        assert_eq!(get("kernel+init"), Some(2000));
        assert_eq!(get("scheduler"), None, "not every run has it");
        assert_eq!(get("payload"), Some(1100), "c's payload span starts at guest up");
        assert_eq!(get("exit"), Some(100));
    }

    #[test]
    fn the_table_has_a_column_per_stage_and_a_row_per_engine() {
        let t = timeline([300, 500, 2500, 2700, 3800, 3900, 4000]);
        let m = medians([(&t, 4100)].into_iter());
        let s = table(&[("kvm-vmlinux", &m), ("qemu", &[])]);
        let lines: Vec<&str> = s.lines().collect();
        assert!(lines[0].starts_with("engine") && lines[0].contains("kernel+init"), "{s}");
        assert!(lines[1].starts_with("kvm-vmlinux") && lines[1].contains(" 2000 "), "{s}");
        assert_eq!(lines[1].len(), lines[0].len(), "{s}");
        assert!(lines[2].trim_end().ends_with('-'), "an engine without passing runs: {s}");
    }

    #[test]
    fn the_bars_share_one_scale_and_each_is_as_long_as_its_total() {
        let fast = timeline([200, 300, 2300, 2350, 3450, 3600, 3650]);
        let slow = timeline([400, 750, 6250, 6300, 7450, 7600, 7850]);
        let (f, s) = (medians([(&fast, 3750)].into_iter()), medians([(&slow, 7950)].into_iter()));
        let pic = bars(&[("kvm", &f), ("qemu", &s)], 80);
        let lines: Vec<&str> = pic.lines().collect();
        assert!(lines[0].starts_with("one character per 100 ms: p prepare, b boot, K kernel+init"));
        let bar = |l: &str| l.split_whitespace().nth(1).unwrap().to_string();
        assert_eq!(bar(lines[1]), "ppbKKKKKKKKKKKKKKKKKKKKsPPPPPPPPPPProx", "{pic}");
        assert_eq!(bar(lines[2]).len(), 80, "{pic}");
        assert!(lines[2].starts_with("qemu    pppp"), "{pic}");
        // Too long for 100 ms a character: the next step that fits.
        assert!(bars(&[("kvm", &s)], 40).starts_with("one character per 200 ms"));
    }
}
