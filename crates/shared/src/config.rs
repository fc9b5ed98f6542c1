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

/// A positive whole number, or the default when unset.
pub fn positive_or(name: &'static str, default: i64) -> Result<i64, ConfigError> {
    match read(name) {
        None => Ok(default),
        Some(value) => {
            value
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ConfigError::Invalid {
                    name,
                    value,
                    expected: "a positive whole number",
                })
        }
    }
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
