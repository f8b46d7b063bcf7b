//! The canned scenarios shipped in the binary (`core/scenarios/*.toml`).

use super::Scenario;

/// (name, TOML) of every canned scenario; the name is also the file stem.
const CANNED: [(&str, &str); 5] = [
    ("two-equal-cgroups", include_str!("../../scenarios/two-equal-cgroups.toml")),
    ("cpuset-split-per-llc", include_str!("../../scenarios/cpuset-split-per-llc.toml")),
    ("nested-cgroups", include_str!("../../scenarios/nested-cgroups.toml")),
    ("payload-plus-background", include_str!("../../scenarios/payload-plus-background.toml")),
    ("cgroup-churn", include_str!("../../scenarios/cgroup-churn.toml")),
];

/// Every canned scenario as (name, description, TOML text).
pub fn library() -> Vec<(&'static str, String, &'static str)> {
    CANNED
        .iter()
        .map(|&(name, text)| {
            // Parsing is covered by the tests; a broken file still lists.
            let description = Scenario::from_toml(text)
                .map(|s| s.description)
                .unwrap_or_else(|e| format!("(unreadable: {e})"));
            (name, description, text)
        })
        .collect()
}

/// The TOML of the canned scenario called `name`.
pub fn canned(name: &str) -> Option<&'static str> {
    CANNED.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;

    #[test]
    fn every_canned_scenario_parses_validates_and_round_trips() {
        let topo: Topology = "1n2l2c1t".parse().unwrap();
        let lib = library();
        assert_eq!(lib.len(), CANNED.len());
        for (name, description, text) in lib {
            let s = Scenario::from_toml(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(s.name, name, "the name inside matches the file");
            assert!(!description.is_empty() && !description.starts_with("(unreadable"), "{name}");
            s.validate(&topo).unwrap_or_else(|e| panic!("{name}: {e}"));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(
                serde_json::from_str::<Scenario>(&json).unwrap(),
                s,
                "{name}: JSON round trip"
            );
            let again = toml::to_string(&s).unwrap();
            assert_eq!(Scenario::from_toml(&again).unwrap(), s, "{name}: TOML round trip");
        }
        assert!(canned("cgroup-churn").is_some());
        assert!(canned("nope").is_none());
    }

    #[test]
    fn topology_bound_scenarios_say_why_they_do_not_fit() {
        let one_llc: Topology = "1n1l4c1t".parse().unwrap();
        let s = Scenario::from_toml(canned("cpuset-split-per-llc").unwrap()).unwrap();
        let err = s.validate(&one_llc).unwrap_err().to_string();
        assert!(
            err.contains(
                "step \"split\" cgroup 2: cpuset { llc = 1 }: LLC 1 is outside the \
            topology 1n1l4c1t (1 LLCs)"
            ),
            "{err}"
        );
        for name in
            ["two-equal-cgroups", "nested-cgroups", "payload-plus-background", "cgroup-churn"]
        {
            Scenario::from_toml(canned(name).unwrap()).unwrap().validate(&one_llc).unwrap();
        }
        let s = Scenario::from_toml(canned("payload-plus-background").unwrap()).unwrap();
        assert_eq!(s.payload_plugins().into_iter().collect::<Vec<_>>(), ["workers"]);
    }
}
