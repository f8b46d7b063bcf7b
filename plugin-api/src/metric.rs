//! What an extractor returns: metrics, and notes that explain them.

/// One named number extracted from a payload's output.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Metric {
    /// Hierarchical names use `/` as the separator (see the json extractor
    /// for the escaping rule of keys that contain `/` or `~`).
    pub name: String,
    pub value: f64,
    /// `us`, `ns`, `ops/s`, `KiB/s`, `count`… or empty when unitless.
    pub unit: String,
}

impl Metric {
    pub fn new(name: impl Into<String>, value: f64, unit: &str) -> Self {
        Metric { name: name.into(), value, unit: unit.into() }
    }
}

/// The result of one extraction.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Extraction {
    pub metrics: Vec<Metric>,
    /// Lines worth showing a person next to the metrics, e.g. a failing
    /// test's own error message.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Vec::is_empty"))]
    pub notes: Vec<String>,
}

impl From<Vec<Metric>> for Extraction {
    fn from(metrics: Vec<Metric>) -> Self {
        Extraction { metrics, notes: Vec::new() }
    }
}

impl Extraction {
    pub fn with_notes(mut self, notes: Vec<String>) -> Self {
        self.notes = notes;
        self
    }
}
