//! `tarem plan`: what the loop would do with an event's finding, as a new episode, with no side
//! effects: the lifecycle's own decision ([`tarem_shared::lifecycle`]).

use crate::CliError;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use tarem_shared::episode::Stage;
use tarem_shared::finding::{Finding, TrackingRules, finding_from_event};
use tarem_shared::lifecycle::{Facts, Happening, Lifecycle, LifecycleConfig};
use tarem_shared::mapping::{Mapping, Mode, plain_json};
use tarem_shared::ports::DATA_REMEDIATION;
use tarem_shared::safety::SafetyConfig;

/// The stack `plan` and `simulate` play: its allowlists admit the documents and roles the
/// mappings name (a deployed stack's may be narrower: its OpsItems then say so).
pub fn playground_stack(mappings: &[Value]) -> LifecycleConfig {
    let mut documents = std::collections::BTreeSet::new();
    let mut roles = std::collections::BTreeSet::new();
    for item in mappings.iter().map(plain_json) {
        if let Some(document) = item.get("ssmAutomationDocument").and_then(Value::as_str) {
            documents.insert(document.to_owned());
        }
        if let Ok(mapping) = Mapping::from_json(&item) {
            roles.extend(mapping.parameters.literal_values("AutomationAssumeRole"));
        }
    }
    LifecycleConfig {
        safety: SafetyConfig {
            allowed_documents: documents.into_iter().collect(),
            allowed_roles: roles.into_iter().collect(),
            ..SafetyConfig::default()
        },
        ..LifecycleConfig::default()
    }
}

/// The finding an event describes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedFinding {
    pub check_name: String,
    pub resource: String,
    pub region: String,
    pub status: String,
    pub last_updated_time: String,
}

/// The mapping the finding's check has.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedMapping {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The episode the finding would open.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedEpisode {
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    pub why: String,
}

/// The OpsItem it would open.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedOpsItem {
    pub title: String,
    pub severity: Option<String>,
    pub description: String,
}

/// What the loop would do for one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The event file.
    pub event: String,
    /// Whether check-tracker would track it (else `reason` says why not).
    pub tracked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<PlannedFinding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping: Option<PlannedMapping>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BTreeMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub episode: Option<PlannedEpisode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops_item: Option<PlannedOpsItem>,
}

impl Plan {
    fn rejected(event: &str, reason: String) -> Self {
        Plan {
            event: event.to_owned(),
            tracked: false,
            reason: Some(reason),
            finding: None,
            mapping: None,
            resource_id: None,
            parameters: None,
            episode: None,
            would: None,
            ops_item: None,
        }
    }
}

/// What the loop would do with an event's finding as a new episode: the lifecycle's decision
/// in `stack` (its allowlists), with the kill switch on, no resource tags, the breaker closed
/// and the OpsItem budget unused.
pub fn plan(source: &str, event: &Value, mappings: &[Value], stack: &LifecycleConfig) -> Plan {
    let now = chrono::Utc::now();
    match finding_from_event(event, now, &TrackingRules::default()) {
        Ok(finding) => plan_finding(source, &finding, mappings, stack),
        Err(rejection) => Plan::rejected(source, rejection.to_string()),
    }
}

/// What the loop would do with a finding (an event's, or a tracker row) as a new episode.
pub fn plan_finding(
    source: &str,
    finding: &Finding,
    mappings: &[Value],
    stack: &LifecycleConfig,
) -> Plan {
    let now = chrono::Utc::now();
    let finding = finding.clone();
    let mapping = mappings
        .iter()
        .find(|item| {
            plain_json(item).get("checkName").and_then(Value::as_str)
                == Some(finding.check_name.as_str())
        })
        .map(Mapping::from_any_json);
    let resource_id = match &mapping {
        Some(Ok(Mapping {
            regex: Some(regex), ..
        })) => regex.extract(&finding.resource).map(str::to_owned),
        _ => None,
    };
    let config = stack;
    let tags = BTreeMap::new();
    let facts = Facts {
        mapping: Some(mapping.as_ref()),
        tags: Some(&tags),
        starts_allowed: Some(true),
        ops_items_this_month: Some(0),
        breaker_queue: None,
        execution: None,
        resource_busy: None,
        ops_item: None,
        member: Some(&tarem_shared::ports::MemberStanding::Ready),
        member_gate: Some(None),
        units: Some(&[]),
    };
    let lifecycle = Lifecycle { config, now };
    let decision = match lifecycle.decide(None, Happening::Tracked(&finding), &facts) {
        Ok(decision) => decision,
        Err(need) => {
            return Plan::rejected(source, format!("the decision needs {need:?}"));
        }
    };
    let episode = decision.episode.as_ref();
    let parameters = decision
        .start
        .as_ref()
        .map(|s| s.request.parameters.clone())
        .or_else(|| {
            decision
                .open_ops_item
                .as_ref()
                .and_then(|item| item.operational_data.get(DATA_REMEDIATION))
                .and_then(|data| serde_json::from_str::<Value>(&data.value).ok())
                .and_then(|note| serde_json::from_value(note.get("parameters")?.clone()).ok())
        });
    let would = match (&decision.start, episode) {
        (Some(start), Some(episode)) => format!(
            "starting {} in {} (attempt 1 of {}; ClientToken {})",
            start.request.document,
            start.request.region,
            episode.attempts.first().map_or(0, |a| a.max_attempts),
            start.request.client_token
        ),
        (_, None) => "nothing: the finding is Green and no episode is open".into(),
        (None, Some(episode)) => match &episode.stage {
            Stage::Flagged { reason }
            | Stage::Held { reason, .. }
            | Stage::Escalated { reason } => reason.clone(),
            _ => decision.why.clone(),
        },
    };
    Plan {
        event: source.to_owned(),
        tracked: true,
        reason: None,
        finding: Some(PlannedFinding {
            check_name: finding.check_name.clone(),
            resource: finding.resource.clone(),
            region: finding.region.clone(),
            status: finding.resource_status.to_string(),
            last_updated_time: finding.last_updated_time.clone(),
        }),
        mapping: mapping.as_ref().map(|mapping| match mapping {
            Ok(m) => PlannedMapping {
                document: Some(m.document.clone()),
                mode: Some(m.mode),
                error: None,
            },
            Err(error) => PlannedMapping {
                document: None,
                mode: None,
                error: Some(error.to_string()),
            },
        }),
        resource_id,
        parameters,
        episode: episode.map(|e| PlannedEpisode {
            state: e.stage.name().to_owned(),
            control: match &e.stage {
                Stage::Held { control, .. } => Some(control.clone()),
                _ => None,
            },
            why: decision.why.clone(),
        }),
        would: Some(would),
        ops_item: decision.open_ops_item.map(|item| PlannedOpsItem {
            title: item.title,
            severity: item.severity,
            description: item.description,
        }),
    }
}

/// The plan as text, one line per fact.
pub fn plan_text(plan: &Plan) -> String {
    let mut lines = vec![plan.event.clone()];
    if !plan.tracked {
        lines.push(format!(
            "  rejected   {}",
            plan.reason.as_deref().unwrap_or_default()
        ));
        return lines.join("\n");
    }
    if let Some(finding) = &plan.finding {
        lines.push(format!(
            "  finding    {} | {} | {} | {}",
            finding.check_name, finding.resource, finding.region, finding.status
        ));
    }
    if let Some(id) = &plan.resource_id {
        lines.push(format!("  id         {id}"));
    }
    if let Some(parameters) = &plan.parameters {
        lines.push(format!("  parameters {}", serde_json::json!(parameters)));
    }
    if let Some(episode) = &plan.episode {
        match &episode.control {
            Some(control) => lines.push(format!("  episode    {} ({control})", episode.state)),
            None => lines.push(format!("  episode    {}", episode.state)),
        }
    }
    if let Some(would) = &plan.would {
        lines.push(format!("  would      {would}"));
    }
    if let Some(item) = &plan.ops_item {
        lines.push(format!("  opsitem    {}", item.title));
    }
    lines.join("\n")
}

/// Reads an event file: one event, or a list of them (each named `file#n`).
pub fn read_events(path: &std::path::Path) -> Result<Vec<(String, Value)>, CliError> {
    let document: Value = std::fs::read_to_string(path)
        .map_err(|error| CliError::usage(format!("{}: {error}", path.display())))
        .and_then(|text| {
            serde_json::from_str(&text)
                .map_err(|error| CliError::usage(format!("{}: not JSON: {error}", path.display())))
        })?;
    let name = path.display().to_string();
    Ok(match document {
        Value::Array(events) => events
            .into_iter()
            .enumerate()
            .map(|(index, event)| (format!("{name}#{}", index + 1), event))
            .collect(),
        event => vec![(name, event)],
    })
}
