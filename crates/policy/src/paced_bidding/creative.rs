//! How a paced bidder picks its creative, as scenario files write it: a
//! creative's index or a bandit's name.

use serde::{Deserialize, Serialize};

/// How the creative is chosen: written as a creative's index (`creative = 2`)
/// or a bandit's name (`creative = "thompson"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum CreativeRule {
    /// Always this creative.
    Index(u32),
    /// A bandit over creatives.
    Bandit(CreativeBandit),
}

impl<'de> Deserialize<'de> for CreativeRule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Rule;
        const EXPECTED: &str = "a creative index (0, 1, …), \"ucb1\" or \"thompson\"";
        impl serde::de::Visitor<'_> for Rule {
            type Value = CreativeRule;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(EXPECTED)
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<CreativeRule, E> {
                u32::try_from(v)
                    .map(CreativeRule::Index)
                    .map_err(|_| E::custom(format!("creative index {v} is too large")))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<CreativeRule, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("expected {EXPECTED}, found {v}")))
                    .and_then(|v| self.visit_u64(v))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CreativeRule, E> {
                match v {
                    "ucb1" => Ok(CreativeRule::Bandit(CreativeBandit::Ucb1)),
                    "thompson" => Ok(CreativeRule::Bandit(CreativeBandit::Thompson)),
                    _ => Err(E::custom(format!(
                        "unknown creative rule `{v}`, expected {EXPECTED}"
                    ))),
                }
            }
        }
        deserializer.deserialize_any(Rule)
    }
}

impl Default for CreativeRule {
    fn default() -> Self {
        Self::Index(0)
    }
}

/// The bandits that choose a creative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreativeBandit {
    /// UCB1 on the click rate per impression.
    Ucb1,
    /// Beta–Bernoulli Thompson sampling on the click rate.
    Thompson,
}
