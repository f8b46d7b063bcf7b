//! `ktstr plugin new NAME --kind K`: writes an out-of-tree plugin crate that
//! builds as it is and passes `ktstr plugin check`.

mod templates;

use std::path::{Path, PathBuf};

use super::plugin::NewArgs;
use crate::usage::UsageError;
use templates::Vars;

/// This checkout's API crate, when ktstr runs from (or was built in) one.
const CHECKOUT_API: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugin-api");

/// Names cargo refuses for a package or library (keywords, the standard
/// crates), which would make the generated crate fail to build.
const RESERVED: &[&str] = &[
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "try",
    "std",
    "core",
    "alloc",
    "proc_macro",
    "test",
];

pub fn run(args: &NewArgs) -> anyhow::Result<i32> {
    validate_name(&args.name).map_err(UsageError)?;
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    refuse_to_overwrite(&dir).map_err(UsageError)?;
    let api_path = api_patch(args.api_path.as_deref()).map_err(UsageError)?;
    let vars = Vars { name: args.name.clone(), kind: args.kind, api_path };
    let files = templates::files(&vars);
    for (rel, text) in &files {
        let path = dir.join(rel);
        let parent = path.parent().unwrap_or(&dir);
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", parent.display()))?;
        std::fs::write(&path, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    let names: Vec<&str> = files.iter().map(|(p, _)| *p).collect();
    let (kind, lib) = (vars.kind_str(), vars.lib());
    println!(
        "Created the {kind} plugin `{}` in {}: {}",
        args.name,
        dir.display(),
        names.join(", ")
    );
    if vars.api_path.is_none() {
        println!("note: ktstr-plugin-api comes from crates.io (see the comment in Cargo.toml)");
    }
    println!("\nNext:\n    cd {} && cargo build --release", dir.display());
    println!("    ktstr plugin check target/release/lib{lib}.so");
    let try_it = match args.kind {
        super::plugin::NewKind::Payload => format!("--plugin {}", args.name),
        super::plugin::NewKind::Scheduler => format!("--plugin workers --scheduler {}", args.name),
        super::plugin::NewKind::Extractor => {
            println!(
                "    ktstr extract --plugin-dir target/release --plugin {} --stdout FILE",
                args.name
            );
            return Ok(crate::exit::PASS);
        }
    };
    println!("    ktstr run --plugin-dir target/release {try_it}");
    Ok(crate::exit::PASS)
}

/// A plugin name that is also a valid package, library and binary name.
fn validate_name(name: &str) -> Result<(), String> {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if name.is_empty() || name.len() > 64 || !ok_chars {
        return Err(format!(
            "invalid plugin name `{name}`: use 1 to 64 letters, digits, `-` and `_`"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!("invalid plugin name `{name}`: start it with a letter"));
    }
    if RESERVED.contains(&name.replace('-', "_").as_str()) {
        return Err(format!(
            "invalid plugin name `{name}`: cargo reserves it (a Rust keyword or crate)"
        ));
    }
    Ok(())
}

/// A missing or empty directory is fine; anything else is someone's work.
fn refuse_to_overwrite(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        return Ok(());
    }
    let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none());
    match empty {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "{} already exists and is not empty; refusing to overwrite it (give another --dir)",
            dir.display()
        )),
        Err(_) => Err(format!("{} exists and is not a directory", dir.display())),
    }
}

/// The `[patch.crates-io]` path, as a TOML string: `--api-path`, else this
/// checkout's `plugin-api`, else none. Absolute, since cargo reads a patch
/// path relative to the Cargo.toml, not to where `plugin new` ran.
fn api_patch(given: Option<&Path>) -> Result<Option<String>, String> {
    let path = match given {
        Some(p) => {
            let manifest = std::fs::read_to_string(p.join("Cargo.toml")).unwrap_or_default();
            if !manifest.contains("name = \"ktstr-plugin-api\"") {
                return Err(format!(
                    "--api-path {}: not the ktstr-plugin-api crate (no Cargo.toml naming it)",
                    p.display()
                ));
            }
            p.to_path_buf()
        }
        None if Path::new(CHECKOUT_API).join("Cargo.toml").is_file() => PathBuf::from(CHECKOUT_API),
        None => return Ok(None),
    };
    let abs = path.canonicalize().map_err(|e| format!("{}: {e}", path.display()))?;
    let text = abs.to_str().ok_or_else(|| format!("{} is not UTF-8", abs.display()))?;
    Ok(Some(toml_string(text)))
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_build_as_crates() {
        for good in ["my-bench", "a", "Sched_2"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1st", "-x", "my bench", "a.b", "fn", "self", "core", "über"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_missing_or_empty_directories_are_written() {
        let dir = tempfile::tempdir().unwrap();
        assert!(refuse_to_overwrite(&dir.path().join("new")).is_ok());
        assert!(refuse_to_overwrite(dir.path()).is_ok());
        std::fs::write(dir.path().join("keep"), b"mine").unwrap();
        assert!(refuse_to_overwrite(dir.path()).unwrap_err().contains("refusing to overwrite"));
    }

    #[test]
    fn patch_paths_are_absolute_toml_strings() {
        assert_eq!(toml_string(r#"/a "b"\c"#), r#""/a \"b\"\\c""#);
        let checkout = api_patch(None).unwrap().expect("run from a checkout");
        assert!(checkout.starts_with("\"/") && checkout.ends_with("plugin-api\""), "{checkout}");
        assert!(api_patch(Some(Path::new("/"))).unwrap_err().contains("not the ktstr-plugin-api"));
    }
}
