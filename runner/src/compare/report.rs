//! The comparison as people read it (a table), as they would rather look at
//! it (an SVG of box plots), and the gates' judgement.

use super::analysis::MetricVerdict;
use super::args::Gate;

/// Neutral metrics the table shows at most (all are in the JSON).
const NEUTRAL_ROWS: usize = 10;

pub fn table(metrics: &[MetricVerdict], runs: (usize, usize, usize, usize)) -> String {
    let (good_a, all_a, good_b, all_b) = runs;
    let mut out = format!(
        "A: {good_a} of {all_a} runs passed · B: {good_b} of {all_b} runs passed (failed runs \
            are left out)\n"
    );
    let head =
        ["METRIC", "BETTER", "A median [IQR]", "B median [IQR]", "B vs A [95% CI]", "p", "VERDICT"];
    let mut rows: Vec<[String; 7]> = vec![head.map(String::from)];
    let judged = metrics.iter().filter(|m| m.better != "neutral");
    let neutral = metrics.iter().filter(|m| m.better == "neutral").take(NEUTRAL_ROWS);
    for m in judged.chain(neutral) {
        rows.push([
            m.name.clone(),
            m.better.clone(),
            format!("{} [{}–{}]", num(m.a.median), num(m.a.q1), num(m.a.q3)),
            format!("{} [{}–{}]", num(m.b.median), num(m.b.q1), num(m.b.q3)),
            format!("{} [{}, {}]", pct(m.diff_rel), pct(m.ci_rel.0), pct(m.ci_rel.1)),
            format!("{:.3}", m.p),
            m.verdict.clone(),
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    for row in &rows {
        let cells: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    let hidden =
        metrics.iter().filter(|m| m.better == "neutral").count().saturating_sub(NEUTRAL_ROWS);
    if hidden > 0 {
        out.push_str(&format!("({hidden} more neutral metrics in the JSON)\n"));
    }
    out.push_str(
        "Mann-Whitney U (two-sided, normal approximation); interval: bootstrap of the \
        median difference.\n",
    );
    out
}

/// `--noise-check`: A against A again, the judged metrics' differences.
pub fn noise(metrics: &[MetricVerdict]) -> String {
    let mut out = String::from("noise floor (A against a second A, interleaved):\n");
    for m in metrics.iter().filter(|m| m.better != "neutral") {
        out.push_str(&format!(
            "  {:<28} {} [{}, {}]  p {:.3}  {}\n",
            m.name,
            pct(m.diff_rel),
            pct(m.ci_rel.0),
            pct(m.ci_rel.1),
            m.p,
            if m.significant {
                "DIFFERS: the runs are noisier than the test assumes"
            } else {
                "no significant difference"
            }
        ));
    }
    out
}

/// The gates that failed, each with why.
pub fn failed_gates(gates: &[Gate], metrics: &[MetricVerdict]) -> Vec<String> {
    let mut failed = Vec::new();
    for g in gates {
        let Some(m) = metrics.iter().find(|m| m.name == g.metric) else {
            failed.push(format!("{}: not measured in two passing runs of each side", g.metric));
            continue;
        };
        // Which way is a regression: the polarity's, else the gate's sign.
        let worse_sign = match (m.better.as_str(), g.sign) {
            ("higher", _) => -1.0,
            ("lower", _) => 1.0,
            (_, Some(s)) => s,
            (_, None) => {
                failed.push(format!("{}: neutral; give the gate a sign (+ or -)", g.metric));
                continue;
            }
        };
        if m.significant && m.diff_rel * worse_sign > g.allowed {
            failed.push(format!(
                "{}: {} (allowed {}{:.1}%, p {:.3})",
                g.metric,
                pct(m.diff_rel),
                if worse_sign > 0.0 { "+" } else { "-" },
                g.allowed * 100.0,
                m.p
            ));
        }
    }
    failed
}

/// Box plots of the judged metrics (at most 8), A above B, each metric on
/// its own scale (its extremes written at the ends), every run a dot.
pub fn svg(metrics: &[MetricVerdict], a_label: &str, b_label: &str) -> String {
    let shown: Vec<&MetricVerdict> =
        metrics.iter().filter(|m| m.better != "neutral").take(8).collect();
    let (w, row_h, left, right) = (760.0, 100.0, 40.0, 30.0);
    let h = 50.0 + row_h * shown.len().max(1) as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"22\" font-size=\"14\">ktstr compare · A: {} · B: {}</text>\n",
        escape(a_label),
        escape(b_label)
    );
    for (i, m) in shown.iter().enumerate() {
        let top = 40.0 + row_h * i as f64;
        let all = m.values_a.iter().chain(&m.values_b);
        let (lo, hi) =
            all.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
        let span = if hi > lo { hi - lo } else { 1.0 };
        let x = |v: f64| left + (v - lo) / span * (w - left - right);
        s.push_str(&format!(
            "<text x=\"10\" y=\"{:.1}\" font-weight=\"bold\">\
             {} ({} is better): B {}, {} vs A</text>\n",
            top + 4.0,
            escape(&m.name),
            m.better,
            escape(&m.verdict),
            pct(m.diff_rel)
        ));
        for (k, (values, spread, color)) in
            [(&m.values_a, m.a, "#1f77b4"), (&m.values_b, m.b, "#d62728")].into_iter().enumerate()
        {
            let y = top + 24.0 + 26.0 * k as f64;
            s.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"16\" fill=\"{color}\" \
                 fill-opacity=\"0.25\" stroke=\"{color}\"/>\n\
                 <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{color}\" \
                     stroke-width=\"2\"/>\n",
                x(spread.q1),
                y - 8.0,
                (x(spread.q3) - x(spread.q1)).max(1.0),
                x(spread.median),
                x(spread.median),
                y - 8.0,
                y + 8.0
            ));
            for &v in values {
                s.push_str(&format!(
                    "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{color}\"/>\n",
                    x(v)
                ));
            }
            let side = if k == 0 { "A" } else { "B" };
            s.push_str(&format!(
                "<text x=\"14\" y=\"{:.1}\" fill=\"{color}\">{side}</text>\n",
                y + 4.0
            ));
        }
        let axis = top + 74.0;
        s.push_str(&format!(
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\"/>\n\
             <text x=\"{left}\" y=\"{:.1}\" fill=\"#555\">{}</text>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#555\" text-anchor=\"end\">{}</text>\n",
            w - right,
            axis - 6.0,
            axis - 6.0,
            axis + 8.0,
            num(lo),
            w - right,
            axis + 8.0,
            num(hi)
        ));
    }
    s.push_str("</svg>\n");
    s
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:+.1}%", x * 100.0)
    } else {
        "n/a".into()
    }
}

fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}").trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::analysis::{compare, RunSample};

    fn runs(prefix: &str, values: &[f64]) -> Vec<RunSample> {
        let one = |(k, v): (usize, &f64)| RunSample {
            id: format!("{prefix}{k}"),
            verdict: "PASS".into(),
            metrics: [("ops".to_string(), (*v, "higher".to_string()))].into_iter().collect(),
        };
        values.iter().enumerate().map(one).collect()
    }

    #[test]
    fn a_regression_beyond_the_gate_fails_it_and_the_picture_has_both_sides() {
        let a = runs("a", &[100.0, 101.0, 99.0, 100.5, 99.5]);
        let b = runs("b", &[80.0, 81.0, 79.0, 80.5, 79.5]);
        let m = compare(&a, &b);
        let gate = |s: &str| vec![s.parse::<Gate>().unwrap()];
        assert_eq!(
            failed_gates(&gate("ops:5%"), &m).len(),
            1,
            "a 20% drop of a higher-is-better metric"
        );
        assert!(failed_gates(&gate("ops:25%"), &m).is_empty());
        assert!(failed_gates(&gate("other:5%"), &m)[0].contains("not measured"));
        let picture = svg(&m, "--scheduler eevdf", "--scheduler <x>");
        assert!(picture.starts_with("<svg") && picture.contains("&lt;x&gt;"));
        assert_eq!(picture.matches("<circle").count(), 10);
        let t = table(&m, (5, 5, 5, 6));
        assert!(
            t.contains("B: 5 of 6 runs passed") && t.contains("-20.0%") && t.contains("worse"),
            "{t}"
        );
    }
}
