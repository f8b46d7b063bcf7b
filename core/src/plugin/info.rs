//! Owned copies of the ABI manifest types, for JSON output, the run plan and
//! everything else that outlives a call into a plugin.

use abi_stable::std_types::ROption;
use ktstr_plugin_api as api;
use serde::{Deserialize, Serialize};

use crate::metrics::Stream;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Payload,
    Extractor,
    Scheduler,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Payload => "payload",
            Kind::Extractor => "extractor",
            Kind::Scheduler => "scheduler",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<api::PluginKind> for Kind {
    fn from(k: api::PluginKind) -> Self {
        match k {
            api::PluginKind::Payload => Kind::Payload,
            api::PluginKind::Extractor => Kind::Extractor,
            api::PluginKind::Scheduler => Kind::Scheduler,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub kind: Kind,
    pub description: String,
    pub abi_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<PayloadInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extractor: Option<ExtractorInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<SchedulerInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryInfo {
    pub name: String,
    pub env_override: Option<String>,
    pub install_hint: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricHintInfo {
    pub name: String,
    pub unit: String,
    /// `higher`, `lower` or `neutral`: which way is better.
    pub better: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayloadInfo {
    pub binary: Option<BinaryInfo>,
    pub default_args: Vec<String>,
    pub extractor: String,
    pub metric_stream: Stream,
    pub format: String,
    pub default_checks: Vec<String>,
    pub metric_hints: Vec<MetricHintInfo>,
    pub extra_files: Vec<String>,
    pub own_process_group: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractorInfo {
    pub formats: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerInfo {
    pub binary: Option<BinaryInfo>,
    pub default_args: Vec<String>,
    pub accepts_any_binary: bool,
    pub sched_ext: bool,
}

fn strings(v: &abi_stable::std_types::RVec<abi_stable::std_types::RString>) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn binary(b: &ROption<api::BinaryLocator>) -> Option<BinaryInfo> {
    b.as_ref().into_option().map(|b| BinaryInfo {
        name: b.name.to_string(),
        env_override: b.env_override.as_ref().into_option().map(|s| s.to_string()),
        install_hint: b.install_hint.to_string(),
    })
}

impl PluginInfo {
    /// Copies a manifest and checks that it is consistent: a sane name and
    /// exactly the section its kind calls for.
    pub fn from_manifest(m: &api::Manifest) -> Result<PluginInfo, String> {
        let kind = Kind::from(m.kind);
        let name = m.name.to_string();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "invalid plugin name `{name}`: use letters, digits, `-`, `_` and `.`"
            ));
        }
        let sections = [m.payload.is_some(), m.extractor.is_some(), m.scheduler.is_some()];
        let expected = [kind == Kind::Payload, kind == Kind::Extractor, kind == Kind::Scheduler];
        if sections != expected {
            return Err(format!("manifest of `{name}` says kind {kind} but does not carry exactly the {kind} section"));
        }
        let payload = m.payload.as_ref().into_option().map(|p| PayloadInfo {
            binary: binary(&p.binary),
            default_args: strings(&p.default_args),
            extractor: p.extractor.to_string(),
            metric_stream: p.metric_stream.into(),
            format: p.format.to_string(),
            default_checks: p.default_checks.iter().map(|c| c.expr.to_string()).collect(),
            metric_hints: p
                .metric_hints
                .iter()
                .map(|h| MetricHintInfo {
                    name: h.name.to_string(),
                    unit: h.unit.to_string(),
                    better: match h.polarity {
                        api::Polarity::HigherIsBetter => "higher",
                        api::Polarity::LowerIsBetter => "lower",
                        api::Polarity::Neutral => "neutral",
                    }
                    .into(),
                })
                .collect(),
            extra_files: strings(&p.extra_files),
            own_process_group: p.own_process_group,
        });
        let extractor = m
            .extractor
            .as_ref()
            .into_option()
            .map(|e| ExtractorInfo { formats: strings(&e.formats) });
        let scheduler = m.scheduler.as_ref().into_option().map(|s| SchedulerInfo {
            binary: binary(&s.binary),
            default_args: strings(&s.default_args),
            accepts_any_binary: s.accepts_any_binary,
            sched_ext: s.sched_ext,
        });
        Ok(PluginInfo {
            name,
            version: m.version.to_string(),
            kind,
            description: m.description.to_string(),
            abi_version: m.abi_version.to_string(),
            payload,
            extractor,
            scheduler,
        })
    }
}
