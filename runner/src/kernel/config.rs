//! The kconfig fragment: parsing it and a `.config`, and verifying that
//! every fragment line took effect. `merge_config.sh` and `olddefconfig`
//! silently drop options whose dependencies are unmet, so a kernel that
//! "built fine" can still lack sched_ext; the check turns that into an error
//! naming each option.

use std::collections::HashMap;

use anyhow::{bail, Result};

/// ktstr's fragment, merged on top of `make ARCH=x86_64 tinyconfig`.
pub const FRAGMENT: &str = include_str!("../../kernel/fragment.config");

/// What a cache entry records of the fragment it was built with
/// (`fragment_hash` in its metadata): this ktstr's.
pub fn fragment_hash() -> String {
    super::cache::sha256_hex(FRAGMENT.as_bytes())
}

/// What a fragment line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// `CONFIG_X=<value>` (value as written, quotes included for strings).
    Value(String),
    /// `# CONFIG_X is not set`.
    NotSet,
}

/// The fragment's options in order. Comments and blank lines are skipped;
/// anything else that is not an option line is an error, so a typo such as
/// `CONFIG_FOO y` cannot be ignored silently.
pub fn parse_fragment(text: &str) -> Result<Vec<(String, Want)>> {
    let mut out: Vec<(String, Want)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = not_set(line) {
            out.push((name.to_string(), Want::NotSet));
        } else if line.starts_with('#') {
            continue;
        } else if let Some((name, value)) = assignment(line) {
            out.push((name.to_string(), Want::Value(value.to_string())));
        } else {
            bail!(
                "fragment line {}: not `CONFIG_X=value` or `# CONFIG_X is not set`: {raw}",
                n + 1
            );
        }
    }
    // A later line for the same option wins, as in merge_config.sh.
    let mut last: HashMap<String, usize> = HashMap::new();
    for (i, (name, _)) in out.iter().enumerate() {
        last.insert(name.clone(), i);
    }
    Ok(out
        .into_iter()
        .enumerate()
        .filter(|(i, (name, _))| last[name] == *i)
        .map(|(_, o)| o)
        .collect())
}

/// A final `.config`: option → `Some(value)`, or `None` for "is not set".
pub fn parse_config(text: &str) -> HashMap<String, Option<String>> {
    let mut map = HashMap::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = not_set(line) {
            map.insert(name.to_string(), None);
        } else if let Some((name, value)) = assignment(line) {
            map.insert(name.to_string(), Some(value.to_string()));
        }
    }
    map
}

/// Every fragment option that did not take effect, described.
pub fn mismatches(
    fragment: &[(String, Want)],
    config: &HashMap<String, Option<String>>,
) -> Vec<String> {
    let mut bad = Vec::new();
    for (name, want) in fragment {
        let got = config.get(name);
        let ok = match (want, got) {
            (Want::Value(v), Some(Some(g))) => v == g,
            (Want::Value(_), _) => false,
            // Absent means its dependencies are off: it is not set either.
            (Want::NotSet, None | Some(None)) => true,
            (Want::NotSet, Some(Some(_))) => false,
        };
        if !ok {
            let wanted = match want {
                Want::Value(v) => format!("{name}={v}"),
                Want::NotSet => format!("{name} off"),
            };
            let found = match got {
                Some(Some(g)) => format!("{name}={g}"),
                Some(None) => "is not set".to_string(),
                None => "absent (a dependency is off or the option does not exist)".to_string(),
            };
            bad.push(format!("{wanted}: final .config has {found}"));
        }
    }
    bad
}

/// Fails naming every fragment option the final `.config` does not honour.
pub fn verify(fragment_text: &str, config_text: &str) -> Result<()> {
    let fragment = parse_fragment(fragment_text)?;
    let bad = mismatches(&fragment, &parse_config(config_text));
    if bad.is_empty() {
        return Ok(());
    }
    bail!(
        "{} option(s) of the kconfig fragment did not take effect (unmet dependency, renamed \
        option, or wrong value):\n  {}",
        bad.len(),
        bad.join("\n  ")
    )
}

fn not_set(line: &str) -> Option<&str> {
    let name = line.strip_prefix("# ")?.strip_suffix(" is not set")?;
    is_option(name).then_some(name)
}

fn assignment(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once('=')?;
    (is_option(name) && !value.is_empty()).then_some((name, value))
}

fn is_option(name: &str) -> bool {
    name.strip_prefix("CONFIG_").is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_fragment_parses_and_has_sched_ext() {
        let f = parse_fragment(FRAGMENT).unwrap();
        assert!(f.contains(&("CONFIG_SCHED_CLASS_EXT".into(), Want::Value("y".into()))));
        assert!(f.contains(&("CONFIG_VT".into(), Want::NotSet)));
        assert!(f.len() > 50);
    }

    #[test]
    fn parse_skips_comments_and_rejects_garbage() {
        let f =
            parse_fragment("# a comment\n\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_S=\"x y\"\n")
                .unwrap();
        assert_eq!(
            f,
            vec![
                ("CONFIG_A".into(), Want::Value("y".into())),
                ("CONFIG_B".into(), Want::NotSet),
                ("CONFIG_S".into(), Want::Value("\"x y\"".into())),
            ]
        );
        let err = parse_fragment("CONFIG_A=y\nCONFIG_B y\n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn later_line_wins() {
        let f = parse_fragment("CONFIG_A=y\n# CONFIG_A is not set\n").unwrap();
        assert_eq!(f, vec![("CONFIG_A".into(), Want::NotSet)]);
    }

    #[test]
    fn verify_names_each_missing_option() {
        let fragment = "CONFIG_A=y\nCONFIG_B=y\nCONFIG_N=64\n# CONFIG_C is not set\n# CONFIG_D \
            is not set\nCONFIG_E=y\n";
        let config = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_N=32\nCONFIG_C=y\n";
        let err = verify(fragment, config).unwrap_err().to_string();
        assert!(err.starts_with("4 option(s)"), "{err}");
        assert!(err.contains("CONFIG_B=y: final .config has is not set"), "{err}");
        assert!(err.contains("CONFIG_N=64: final .config has CONFIG_N=32"), "{err}");
        assert!(err.contains("CONFIG_C off: final .config has CONFIG_C=y"), "{err}");
        assert!(err.contains("CONFIG_E=y: final .config has absent"), "{err}");
        // Absent "is not set" options (CONFIG_D) are fine.
        assert!(!err.contains("CONFIG_D"), "{err}");
        assert!(!err.contains("CONFIG_A="), "{err}");
    }

    #[test]
    fn verify_accepts_a_matching_config() {
        verify(
            "CONFIG_A=y\n# CONFIG_B is not set\n",
            "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_X=m\n",
        )
        .unwrap();
    }
}
