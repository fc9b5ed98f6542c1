//! Mapping validation: every check `tarem mapping add`/`import`/`validate` runs before writing.
//!
//! Offline: the item reads as a mapping (regex compiles with at most one group, the template is
//! JSON whose values are lists of strings, every variable is known, `automationStatus` is a
//! boolean…) and role ARNs are well formed. Online: the document exists in the region and takes
//! exactly the parameters given, with its required ones present (SSM `DescribeDocument`), and
//! the check name is a real Trusted Advisor check (closest names suggested otherwise).

use crate::error::PortError;
use crate::mapping::{Mapping, plain_json};
use crate::ports::{DocumentCatalog, TrustedAdvisor};
use serde::Serialize;
use serde_json::Value;
use std::sync::LazyLock;

/// One problem, naming the check and the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub check: String,
    pub field: String,
    pub message: String,
}

static ROLE_ARN: LazyLock<regex::Regex> = LazyLock::new(|| {
    // A literal pattern: compiling it cannot fail.
    regex::Regex::new(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+$")
        .expect("static role pattern")
});

fn check_of(item: &Value) -> String {
    item.get("checkName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The checks that need no AWS call, every problem of the item at once. Returns the mapping
/// when it reads.
pub fn offline(item: &Value) -> (Option<Mapping>, Vec<Problem>) {
    let item = plain_json(item);
    let (mapping, mut problems) = match Mapping::read(&item) {
        Ok(mapping) => (Some(mapping), vec![]),
        Err(errors) => (
            None,
            errors
                .into_iter()
                .map(|error| Problem {
                    check: error.check,
                    field: error.field,
                    message: error.problem,
                })
                .collect(),
        ),
    };
    // Roles appear as literal values; one with a variable is checked when it is filled.
    let parameters = item
        .get("automationParameters")
        .map(|p| match p {
            Value::String(text) => serde_json::from_str(text).unwrap_or(Value::Null),
            other => other.clone(),
        })
        .unwrap_or(Value::Null);
    if let Some(roles) = parameters
        .get("AutomationAssumeRole")
        .and_then(Value::as_array)
    {
        for role in roles
            .iter()
            .filter_map(Value::as_str)
            .filter(|r| !r.contains('$'))
        {
            if !ROLE_ARN.is_match(role) {
                problems.push(Problem {
                    check: check_of(&item),
                    field: "automationParameters".into(),
                    message: format!("AutomationAssumeRole {role:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"),
                });
            }
        }
    }
    (mapping, problems)
}

/// The closest real check names to `name`, best first.
pub fn suggestions(name: &str, known: &[String]) -> Vec<String> {
    let mut scored: Vec<(f64, &String)> = known
        .iter()
        .map(|candidate| {
            (
                strsim::normalized_levenshtein(&name.to_lowercase(), &candidate.to_lowercase()),
                candidate,
            )
        })
        .filter(|(score, _)| *score > 0.4)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored
        .into_iter()
        .take(3)
        .map(|(_, name)| name.clone())
        .collect()
}

/// The checks that ask AWS: the document's parameters in `region`, and the check's name.
pub async fn online(
    mapping: &Mapping,
    region: &str,
    documents: &dyn DocumentCatalog,
    advisor: &dyn TrustedAdvisor,
) -> Result<Vec<Problem>, PortError> {
    let mut problems = vec![];
    let problem = |field: &str, message: String| Problem {
        check: mapping.check_name.clone(),
        field: field.to_owned(),
        message,
    };
    match documents.parameters(region, &mapping.document).await? {
        None => problems.push(problem(
            "ssmAutomationDocument",
            format!(
                "the document {} does not exist in {region} (or is not shared with this account)",
                mapping.document
            ),
        )),
        Some(accepted) => {
            let given = mapping.parameters.names();
            for name in &given {
                if !accepted.iter().any(|p| &p.name == name) {
                    let names: Vec<&str> = accepted.iter().map(|p| p.name.as_str()).collect();
                    problems.push(problem(
                        "automationParameters",
                        format!(
                            "{} takes no parameter {name:?} (it takes: {})",
                            mapping.document,
                            names.join(", ")
                        ),
                    ));
                }
            }
            for required in accepted.iter().filter(|p| p.required) {
                if !given.contains(&required.name) {
                    problems.push(problem(
                        "automationParameters",
                        format!(
                            "{} requires the parameter {:?}",
                            mapping.document, required.name
                        ),
                    ));
                }
            }
        }
    }
    let checks: Vec<String> = advisor
        .checks()
        .await?
        .into_iter()
        .map(|c| c.name)
        .collect();
    if !checks.contains(&mapping.check_name) {
        let closest = suggestions(&mapping.check_name, &checks);
        problems.push(problem(
            "checkName",
            if closest.is_empty() {
                format!("{:?} is not a Trusted Advisor check", mapping.check_name)
            } else {
                format!(
                    "{:?} is not a Trusted Advisor check; did you mean {}?",
                    mapping.check_name,
                    closest
                        .iter()
                        .map(|c| format!("{c:?}"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                )
            },
        ));
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn offline_checks_name_the_field() {
        let (_, problems) = offline(
            &json!({"checkName": "c", "ssmAutomationDocument": "D", "regexPattern": "(a)(b)"}),
        );
        assert_eq!(problems[0].field, "regexPattern");
        let (mapping, problems) = offline(&json!({
            "checkName": "c", "ssmAutomationDocument": "D",
            "automationParameters": "{\"AutomationAssumeRole\": [\"arn:aws:iam::12:role/x\"]}"
        }));
        assert!(mapping.is_some());
        assert!(
            problems[0].message.contains("is not an IAM role ARN"),
            "{problems:?}"
        );
        let (_, problems) = offline(&json!({
            "checkName": "c", "ssmAutomationDocument": "D",
            "automationParameters": {"AutomationAssumeRole": ["arn:aws:iam::123456789012:role/Tarem"]}
        }));
        assert!(problems.is_empty());
    }

    #[test]
    fn suggestions_are_the_closest_real_names() {
        let known = vec![
            "Security Groups - Specific Ports Unrestricted".to_owned(),
            "Security Groups - Unrestricted Access".to_owned(),
            "Amazon S3 Bucket Versioning".to_owned(),
        ];
        assert_eq!(
            suggestions("Security Group - Specific Port Unrestricted", &known)[0],
            known[0]
        );
        assert!(suggestions("zzzz", &known).is_empty());
    }
}
