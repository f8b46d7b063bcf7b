//! JSON documents in captured output, and the generic flattening rule.
//!
//! Flattening: every numeric leaf becomes a metric named by its path of
//! object keys and array indexes joined with `/`. Each key is escaped the
//! JSON-Pointer way (RFC 6901, `~` → `~0`, `/` → `~1`), so a key may hold
//! dots or slashes and the name still maps back to exactly one leaf.
//! Numbers keep their value, booleans become 1 or 0, strings holding a
//! finite number (`"2"`, `"1.5e3"`) become that number, and other strings
//! and nulls are skipped. Units are empty.

use ktstr_plugin_api::Metric;
use serde_json::Value;

use crate::number::parse_finite;

/// Escapes one object key for a metric name (RFC 6901): `~` → `~0`,
/// `/` → `~1`. `~` goes first so an escaped `/` is not escaped again.
pub fn escape_key(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Flattens `value` into one metric per numeric leaf (see the module docs).
/// A scalar root yields a single metric with an empty name.
pub fn flatten_json(value: &Value) -> Vec<Metric> {
    let mut out = Vec::new();
    walk(value, &mut String::new(), true, &mut out);
    out
}

fn walk(value: &Value, path: &mut String, root: bool, out: &mut Vec<Metric>) {
    let child = |segment: &str, v: &Value, path: &mut String, out: &mut Vec<Metric>| {
        let len = path.len();
        // Separator by depth, not by emptiness: a root key "" must still
        // give "/x" for its child, distinct from a root key "x".
        if !root {
            path.push('/');
        }
        path.push_str(segment);
        walk(v, path, false, out);
        path.truncate(len);
    };
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| child(&escape_key(k), v, path, out)),
        Value::Array(items) => {
            items.iter().enumerate().for_each(|(i, v)| child(&i.to_string(), v, path, out))
        }
        Value::Number(n) => out.extend(n.as_f64().map(|x| Metric::new(path.as_str(), x, ""))),
        Value::Bool(b) => out.push(Metric::new(path.as_str(), if *b { 1.0 } else { 0.0 }, "")),
        Value::String(s) => out.extend(parse_finite(s).map(|x| Metric::new(path.as_str(), x, ""))),
        Value::Null => {}
    }
}

/// Finds the first JSON document in captured output. Tools often print
/// warnings first (`fio: ...`), so lines before the first one that starts
/// (after blanks) with `{` or `[` are skipped.
///
/// - `None`: no such line; the text holds no JSON.
/// - `Some(Err)`: a `{` document that does not parse (truncated output), or
///   a `[` one that runs off the end of the text.
/// - `Some(Ok)`: the document. Text after it is ignored.
///
/// A `[` line that is not JSON, or is followed by more text on the same
/// line, is skipped: kernel-style log lines (`[    1.234567] ...`) start
/// with `[` and some even parse as an array.
pub fn find_json_document(text: &str) -> Option<Result<Value, String>> {
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let start = offset + (line.len() - line.trim_start().len());
        offset += line.len();
        let rest = &text[start..];
        let object = rest.starts_with('{');
        if !object && !rest.starts_with('[') {
            continue;
        }
        let mut docs = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
        match docs.next() {
            Some(Ok(value)) => {
                let after = &rest[docs.byte_offset()..];
                let same_line = after.split('\n').next().unwrap_or("");
                if object || same_line.trim().is_empty() {
                    return Some(Ok(value));
                }
            }
            Some(Err(e)) if object || e.is_eof() => return Some(Err(describe(&e, index + 1))),
            _ => {}
        }
    }
    None
}

/// serde_json counts lines from the start of the document; report them
/// from the start of the whole text instead.
fn describe(e: &serde_json::Error, first_line: usize) -> String {
    let msg = e.to_string();
    let what = msg.split(" at line ").next().unwrap_or(&msg);
    format!(
        "malformed JSON (the document starting on line {first_line}): {what} at line {}, column {}",
        first_line + e.line().saturating_sub(1),
        e.column()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(metrics: &[Metric]) -> Vec<(String, f64)> {
        metrics.iter().map(|m| (m.name.to_string(), m.value)).collect()
    }

    #[test]
    fn escapes_like_json_pointer() {
        assert_eq!(escape_key("a/b"), "a~1b");
        assert_eq!(escape_key("a~b"), "a~0b");
        assert_eq!(escape_key("~/"), "~0~1");
        assert_eq!(escape_key("wakeup_latency_pct99.0"), "wakeup_latency_pct99.0");
    }

    #[test]
    fn flattens_every_numeric_leaf() {
        let v = json!({
            "int": {"wakeup_latency_pct99.0": 27, "ok": true, "bad": false},
            "read/write": {"a~b": 1.5},
            "list": [10, {"x": "3"}],
            "name": "schbench", "version": "0.15.06", "none": null
        });
        let mut got = names(&flatten_json(&v));
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            vec![
                ("int/bad".into(), 0.0),
                ("int/ok".into(), 1.0),
                ("int/wakeup_latency_pct99.0".into(), 27.0),
                ("list/0".into(), 10.0),
                ("list/1/x".into(), 3.0),
                ("read~1write/a~0b".into(), 1.5),
            ]
        );
        assert!(flatten_json(&v).iter().all(|m| m.unit.is_empty()));
    }

    #[test]
    fn empty_root_key_keeps_its_separator() {
        let got = names(&flatten_json(&json!({"": {"x": 1}, "x": 2})));
        assert!(got.contains(&("/x".into(), 1.0)));
        assert!(got.contains(&("x".into(), 2.0)));
        assert_eq!(names(&flatten_json(&json!(5))), vec![(String::new(), 5.0)]);
    }

    #[test]
    fn skips_leading_noise_and_trailing_text() {
        let text = "fio: warning\n[    1.234567] kernel says hi\n  {\"a\": 1}\nbye\n";
        assert_eq!(find_json_document(text).unwrap().unwrap(), json!({"a": 1}));
        assert_eq!(find_json_document("[1, 2]").unwrap().unwrap(), json!([1, 2]));
    }

    #[test]
    fn no_json_is_none() {
        assert!(find_json_document("").is_none());
        assert!(find_json_document("plain text\n[info] not json\n").is_none());
    }

    #[test]
    fn truncated_json_is_an_error() {
        let err = find_json_document("warn\n{\"a\": {\"b\": 1,\n").unwrap().unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("EOF"), "{err}");
        assert!(find_json_document("[1, 2,\n3").unwrap().is_err());
    }
}
