//! Typed settings from environment variables, for the Lambda binaries: a missing or malformed
//! variable is a startup error that names it.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set (the stack's template sets it)")]
    Missing(&'static str),
    #[error("environment variable {name}={value:?} is not {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

fn read(name: &'static str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

pub fn required(name: &'static str) -> Result<String, ConfigError> {
    read(name).ok_or(ConfigError::Missing(name))
}

/// A whole number of at least `min`, or the default when unset.
fn number_or(
    name: &'static str,
    default: i64,
    min: i64,
    expected: &'static str,
) -> Result<i64, ConfigError> {
    match read(name) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= min)
            .ok_or(ConfigError::Invalid {
                name,
                value,
                expected,
            }),
    }
}

/// A positive whole number, or the default when unset.
pub fn positive_or(name: &'static str, default: i64) -> Result<i64, ConfigError> {
    number_or(name, default, 1, "a positive whole number")
}

/// A comma-separated list; unset means empty.
pub fn list(name: &'static str) -> Vec<String> {
    read(name)
        .map(|value| {
            value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

pub fn string_or(name: &'static str, default: &str) -> String {
    read(name).unwrap_or_else(|| default.to_owned())
}

/// A whole number of zero or more, or the default when unset.
pub fn non_negative_or(name: &'static str, default: i64) -> Result<i64, ConfigError> {
    number_or(name, default, 0, "a whole number of zero or more")
}

/// One of `choices` (case-insensitive), or the default when unset.
pub fn choice_or(
    name: &'static str,
    choices: &'static [&'static str],
    default: &'static str,
    expected: &'static str,
) -> Result<&'static str, ConfigError> {
    match read(name) {
        None => Ok(default),
        Some(value) => choices
            .iter()
            .find(|choice| choice.eq_ignore_ascii_case(value.trim()))
            .copied()
            .ok_or(ConfigError::Invalid {
                name,
                value,
                expected,
            }),
    }
}

/// The stack's safety settings from the environment (see the template's parameters).
pub fn safety_from_env() -> Result<crate::safety::SafetyConfig, ConfigError> {
    use crate::safety::{OptIn, SafetyConfig, UnmappedOpsItems};
    use chrono::Duration;
    let defaults = SafetyConfig::default();
    let tag_key = string_or("OPT_IN_TAG_KEY", "automaticRemediation");
    let tag_value = string_or("OPT_IN_TAG_VALUE", "True");
    let opt_in = match choice_or(
        "OPT_IN",
        &["none", "opt-in", "opt-out"],
        "none",
        "none, opt-in or opt-out",
    )? {
        "opt-in" => OptIn::Tagged {
            key: tag_key,
            value: tag_value,
        },
        "opt-out" => OptIn::ExceptTagged {
            key: tag_key,
            value: tag_value,
        },
        _ => OptIn::Everyone,
    };
    let unmapped = match choice_or(
        "UNMAPPED_OPS_ITEMS",
        &["all", "red", "none"],
        "all",
        "all, red or none",
    )? {
        "red" => UnmappedOpsItems::RedOnly,
        "none" => UnmappedOpsItems::None,
        _ => UnmappedOpsItems::All,
    };
    let allowed_documents = list("ALLOWED_AUTOMATION_DOCUMENTS");
    if allowed_documents.is_empty() {
        // Fail closed: an empty allowlist would allow every document.
        return Err(ConfigError::Missing("ALLOWED_AUTOMATION_DOCUMENTS"));
    }
    Ok(SafetyConfig {
        opt_in,
        max_attempts: positive_or("MAX_ATTEMPTS", i64::from(defaults.max_attempts))? as u32,
        cool_down: Duration::minutes(non_negative_or("COOL_DOWN_MINUTES", 30)?),
        in_flight_timeout: Duration::hours(positive_or("IN_FLIGHT_TIMEOUT_HOURS", 6)?),
        breaker_limit: positive_or("BREAKER_LIMIT", defaults.breaker_limit as i64)? as u64,
        breaker_window: Duration::minutes(positive_or("BREAKER_WINDOW_MINUTES", 60)?),
        allowed_documents,
        allowed_roles: list("ALLOWED_AUTOMATION_ROLES"),
        unmapped_ops_items: unmapped,
        monthly_ops_item_budget: positive_or(
            "MONTHLY_OPS_ITEM_BUDGET",
            defaults.monthly_ops_item_budget as i64,
        )? as u64,
        start_interval: Duration::milliseconds(non_negative_or("START_INTERVAL_MS", 1000)?),
    })
}

/// The lifecycle's settings from the environment, around the given safety settings: the
/// verification (`VERIFY_GRACE_MINUTES` 30, `VERIFY_WINDOW_HOURS` 24, `RESOLVE_ON`
/// verified|success), `OPS_ITEM_SOURCE` (TrustedAdvisor) and `EXECUTION_RETENTION_DAYS` (90).
pub fn lifecycle_from_env(
    safety: crate::safety::SafetyConfig,
) -> Result<crate::lifecycle::LifecycleConfig, ConfigError> {
    use crate::lifecycle::{LifecycleConfig, ResolveOn};
    use chrono::Duration;
    Ok(LifecycleConfig {
        safety,
        verify_grace: Duration::minutes(non_negative_or("VERIFY_GRACE_MINUTES", 30)?),
        verify_window: Duration::hours(positive_or("VERIFY_WINDOW_HOURS", 24)?),
        resolve_on: match choice_or(
            "RESOLVE_ON",
            &["verified", "success"],
            "verified",
            "verified or success",
        )? {
            "success" => ResolveOn::Success,
            _ => ResolveOn::Verified,
        },
        ops_item_source: string_or("OPS_ITEM_SOURCE", "TrustedAdvisor"),
        retention: Duration::days(positive_or("EXECUTION_RETENTION_DAYS", 90)?),
    })
}
