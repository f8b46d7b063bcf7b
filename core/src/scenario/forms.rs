//! The two-shaped TOML forms: a hold is `"payloads"` or a one-key table, a
//! CPU selection is a cpulist string or a one-key table. Hand-written so the
//! errors say which forms are accepted instead of "no variant matched".

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{CpuSel, Hold};

const HOLD_FORMS: &str = "\"payloads\", { secs = N }, { ms = N } or { fraction = F }";
const CPUS_FORMS: &str = "a cpulist such as \"0-3,6\", { llc = N } or { node = N }";

/// Reads the first key of a table that must have exactly one.
fn only_key<'de, A: MapAccess<'de>>(map: &mut A, forms: &str) -> Result<String, A::Error> {
    match map.next_key::<String>()? {
        Some(k) => Ok(k),
        None => Err(de::Error::custom(format!("empty table; expected {forms}"))),
    }
}

fn no_more_keys<'de, A: MapAccess<'de>>(mut map: A, forms: &str) -> Result<(), A::Error> {
    match map.next_key::<String>()? {
        None => Ok(()),
        Some(k) => Err(de::Error::custom(format!("unexpected second key `{k}`; expected {forms}"))),
    }
}

impl<'de> Deserialize<'de> for Hold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Hold;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "{HOLD_FORMS}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Hold, E> {
                match s {
                    "payloads" => Ok(Hold::Payloads),
                    other => {
                        Err(E::custom(format!("unknown hold \"{other}\"; expected {HOLD_FORMS}")))
                    }
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Hold, A::Error> {
                let key = only_key(&mut map, HOLD_FORMS)?;
                let hold = match key.as_str() {
                    "secs" => Hold::Secs(map.next_value()?),
                    "ms" => Hold::Ms(map.next_value()?),
                    "fraction" => Hold::Fraction(map.next_value()?),
                    other => {
                        return Err(de::Error::custom(format!(
                            "unknown hold key `{other}`; expected {HOLD_FORMS}"
                        )))
                    }
                };
                no_more_keys(map, HOLD_FORMS)?;
                Ok(hold)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Hold {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Hold::Payloads => s.serialize_str("payloads"),
            Hold::Secs(v) => one_entry(s, "secs", &v),
            Hold::Ms(v) => one_entry(s, "ms", &v),
            Hold::Fraction(v) => one_entry(s, "fraction", &v),
        }
    }
}

fn one_entry<S: Serializer, T: Serialize>(s: S, key: &str, value: &T) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(1))?;
    m.serialize_entry(key, value)?;
    m.end()
}

impl<'de> Deserialize<'de> for CpuSel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CpuSel;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "{CPUS_FORMS}")
            }
            // The list is checked by validation, which can name the op.
            fn visit_str<E: de::Error>(self, s: &str) -> Result<CpuSel, E> {
                Ok(CpuSel::List(s.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CpuSel, A::Error> {
                let key = only_key(&mut map, CPUS_FORMS)?;
                let sel = match key.as_str() {
                    "llc" => CpuSel::Llc(map.next_value()?),
                    "node" => CpuSel::Node(map.next_value()?),
                    "cpus" => CpuSel::List(map.next_value()?),
                    other => {
                        return Err(de::Error::custom(format!(
                            "unknown CPU selection key `{other}`; expected {CPUS_FORMS}"
                        )))
                    }
                };
                no_more_keys(map, CPUS_FORMS)?;
                Ok(sel)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for CpuSel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CpuSel::List(l) => s.serialize_str(l),
            CpuSel::Llc(n) => one_entry(s, "llc", n),
            CpuSel::Node(n) => one_entry(s, "node", n),
        }
    }
}
