//! The files of a new plugin crate, per kind, from the templates in
//! `templates/` with `@KEY@` placeholders (`{{`/`}}` would clash with Rust's
//! format strings).

use crate::commands::plugin::NewKind;

const CARGO_TOML: &str = include_str!("templates/Cargo.toml.tmpl");
const CARGO_BIN: &str = include_str!("templates/Cargo-bin.toml.tmpl");
const PATCH: &str = include_str!("templates/patch.toml.tmpl");
const NO_PATCH: &str = include_str!("templates/no-patch.toml.tmpl");
const GITIGNORE: &str = include_str!("templates/gitignore.tmpl");
const README: &str = include_str!("templates/README.md.tmpl");
const PAYLOAD_LIB: &str = include_str!("templates/payload-lib.rs.tmpl");
const PAYLOAD: &str = include_str!("templates/payload.rs.tmpl");
const PAYLOAD_MAIN: &str = include_str!("templates/payload-main.rs.tmpl");
const EXTRACTOR: &str = include_str!("templates/extractor.rs.tmpl");
const EXTRACTOR_LIB: &str = include_str!("templates/extractor-lib.rs.tmpl");
const SCHEDULER_LIB: &str = include_str!("templates/scheduler-lib.rs.tmpl");

/// What the templates are filled with.
pub struct Vars {
    pub name: String,
    pub kind: NewKind,
    /// The API crate to patch in, as a TOML string; `None`: from crates.io.
    pub api_path: Option<String>,
}

impl Vars {
    /// The library's crate name: cargo turns `-` into `_` (libmy_bench.so).
    pub fn lib(&self) -> String {
        self.name.replace('-', "_")
    }

    /// The payload binary's env override: `MY_BENCH_BIN` (not `KTSTR_*`,
    /// which ktstr's own variables use).
    fn env(&self) -> String {
        format!("{}_BIN", self.lib().to_ascii_uppercase())
    }

    pub fn kind_str(&self) -> &'static str {
        match self.kind {
            NewKind::Payload => "payload",
            NewKind::Extractor => "extractor",
            NewKind::Scheduler => "scheduler",
        }
    }
}

/// Every file of the crate: its path in the crate and its contents.
pub fn files(v: &Vars) -> Vec<(&'static str, String)> {
    let sources: Vec<(&'static str, &str)> = match v.kind {
        NewKind::Payload => vec![
            ("src/lib.rs", PAYLOAD_LIB),
            ("src/payload.rs", PAYLOAD),
            ("src/extractor.rs", EXTRACTOR),
            ("src/main.rs", PAYLOAD_MAIN),
        ],
        NewKind::Extractor => vec![("src/lib.rs", EXTRACTOR_LIB), ("src/extractor.rs", EXTRACTOR)],
        NewKind::Scheduler => vec![("src/lib.rs", SCHEDULER_LIB)],
    };
    let mut out = vec![("Cargo.toml", cargo_toml(v)), ("README.md", readme(v))];
    out.push((".gitignore", GITIGNORE.to_string()));
    out.extend(sources.into_iter().map(|(path, t)| (path, fill(t, v, &[]))));
    out
}

fn cargo_toml(v: &Vars) -> String {
    let payload = v.kind == NewKind::Payload;
    let bin_note = if payload {
        format!("\n# and the payload's program, target/release/{}", v.name)
    } else {
        "".into()
    };
    let bin = if payload { fill(CARGO_BIN, v, &[]) } else { String::new() };
    let patch = match &v.api_path {
        Some(path) => fill(PATCH, v, &[("@API_PATH@", path)]),
        None => NO_PATCH.to_string(),
    };
    fill(
        CARGO_TOML,
        v,
        &[("@BIN_NOTE@", &bin_note), ("@BIN_SECTION@", &bin), ("@API_PATCH@", &patch)],
    )
}

fn readme(v: &Vars) -> String {
    let (name, lib) = (&v.name, v.lib());
    let (about, try_it, install) = match v.kind {
        NewKind::Payload => (
            format!(
                "The `{name}` payload runs its own program (`src/main.rs`, built as\n\
                 `target/release/{name}`), which works for a while and prints\n\
                 `key: value unit` lines; the `{name}` extractor in the same library\n\
                 turns them into metrics."
            ),
            format!("ktstr run --plugin-dir target/release --plugin {name}"),
            format!(
                "- `target/release/lib{lib}.so`\n\
                 - `target/release/{name}`, beside it: ktstr looks for the binary there"
            ),
        ),
        NewKind::Extractor => (
            format!("The `{name}` extractor turns `key: value unit` lines into metrics."),
            format!(
                "printf 'loops: 42 count\\nrate: 21.5 loops/s\\n' > out.txt\n\
                 ktstr extract --plugin-dir target/release --plugin {name} --stdout out.txt"
            ),
            format!("- `target/release/lib{lib}.so`"),
        ),
        NewKind::Scheduler => (
            format!("The `{name}` launcher starts scx_simple in FIFO mode (`scx_simple -f`)."),
            format!("ktstr run --plugin-dir target/release --plugin workers --scheduler {name}"),
            format!("- `target/release/lib{lib}.so`"),
        ),
    };
    fill(README, v, &[("@ABOUT@", &about), ("@TRY@", &try_it), ("@INSTALL@", &install)])
}

/// `template` with `extra` and the common placeholders replaced.
fn fill(template: &str, v: &Vars, extra: &[(&str, &str)]) -> String {
    let mut s = template.to_string();
    for (key, value) in extra {
        s = s.replace(key, value);
    }
    let common = [("@NAME@", v.name.clone()), ("@LIB@", v.lib()), ("@ENV@", v.env())];
    for (key, value) in common {
        s = s.replace(key, &value);
    }
    s.replace("@KIND@", v.kind_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_of_every_kind_is_filled() {
        for kind in [NewKind::Payload, NewKind::Extractor, NewKind::Scheduler] {
            for api_path in [None, Some("\"/x/plugin-api\"".to_string())] {
                let v = Vars { name: "my-bench".into(), kind, api_path };
                for (path, text) in files(&v) {
                    let left = text.split('@').skip(1).step_by(2).find(|w| {
                        !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                    });
                    assert!(left.is_none(), "{path} of {kind:?} keeps @{}@", left.unwrap());
                }
            }
        }
    }

    #[test]
    fn a_payload_crate_ships_its_binary_and_names_it() {
        let v = Vars { name: "my-bench".into(), kind: NewKind::Payload, api_path: None };
        let files = files(&v);
        let get = |p: &str| &files.iter().find(|(q, _)| *q == p).unwrap().1;
        assert!(get("Cargo.toml").contains("[[bin]]\nname = \"my-bench\""));
        assert!(get("Cargo.toml").contains("# [patch.crates-io]"), "no patch: a comment");
        assert!(get("src/payload.rs").contains("\"MY_BENCH_BIN\""));
        assert!(get("src/lib.rs").contains("export_plugins!(Payload, Extractor)"));
    }
}
