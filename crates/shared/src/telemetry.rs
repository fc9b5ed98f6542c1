//! What the loop does, counted: CloudWatch metrics in Embedded Metric Format, written by the
//! functions to standard output after each invocation (CloudWatch Logs extracts them).
//!
//! The metrics, their units and meaning are [`METRICS`] (docs/operations.md shows the same
//! list; the template's alarms and dashboard may name only these). Every metric carries one
//! dimension, `Stack`; `StartsHeld` adds `Control` and `RecordsParked` adds `Function`, both with
//! a handful of values, so the bill stays a few dozen custom metrics. A finding's key never
//! becomes a dimension: it is in the logs.
//!
//! Episode metrics come from one place, [`episode_measures`]: the difference between the episode
//! as it was and as it is written, so every path that moves an episode (a record, the sweep, an
//! execution's outcome) counts the same way. Without an installed recorder (tests, the CLI)
//! every call here is a no-op.

use crate::episode::{Episode, Stage};
use crate::finding::parse_time;

/// A metric: its name, its CloudWatch unit, and what it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub meaning: &'static str,
}

pub const FINDINGS_TRACKED: &str = "FindingsTracked";
pub const FINDINGS_STALE: &str = "FindingsStale";
pub const FINDINGS_REJECTED: &str = "FindingsRejected";
pub const EPISODES_OPENED: &str = "EpisodesOpened";
pub const EPISODES_FIXED: &str = "EpisodesFixed";
pub const EPISODES_ESCALATED: &str = "EpisodesEscalated";
pub const EPISODES_GONE: &str = "EpisodesGone";
pub const ACCOUNTS_UNREACHABLE: &str = "AccountsUnreachable";
pub const FINDINGS_MISSED_BY_EVENTS: &str = "FindingsMissedByEvents";
pub const STARTS_HELD: &str = "StartsHeld";
pub const AUTOMATIONS_STARTED: &str = "AutomationsStarted";
pub const EXECUTIONS_SUCCEEDED: &str = "ExecutionsSucceeded";
pub const EXECUTIONS_FAILED: &str = "ExecutionsFailed";
pub const VERIFICATIONS_FAILED: &str = "VerificationsFailed";
pub const RECORDS_PARKED: &str = "RecordsParked";
pub const BREAKER_TRIPPED: &str = "BreakerTripped";
pub const KILL_SWITCH_OFF: &str = "KillSwitchOff";
pub const TIME_TO_FIX: &str = "TimeToFix";
pub const TIME_TO_START: &str = "TimeToStart";

/// Every metric the functions emit.
pub const METRICS: &[Metric] = &[
    Metric {
        name: FINDINGS_TRACKED,
        unit: "Count",
        meaning: "Trusted Advisor events (and sweep results) written to the tracker as a new state.",
    },
    Metric {
        name: FINDINGS_STALE,
        unit: "Count",
        meaning: "Events not newer than the tracker's state of their finding (delivered late or twice): dropped.",
    },
    Metric {
        name: FINDINGS_REJECTED,
        unit: "Count",
        meaning: "Events that cannot become a finding; parked with their reason.",
    },
    Metric {
        name: EPISODES_OPENED,
        unit: "Count",
        meaning: "Findings that became flagged: a new episode.",
    },
    Metric {
        name: EPISODES_FIXED,
        unit: "Count",
        meaning: "Episodes Trusted Advisor reported Green.",
    },
    Metric {
        name: EPISODES_ESCALATED,
        unit: "Count",
        meaning: "Episodes remediation could not fix (attempt cap): a person must.",
    },
    Metric {
        name: EPISODES_GONE,
        unit: "Count",
        meaning: "Episodes ended because their account left the organisation, or was suspended or closed.",
    },
    Metric {
        name: ACCOUNTS_UNREACHABLE,
        unit: "Count",
        meaning: "Governed accounts a findings sweep could not act in (member role missing or refusing the hub), once per account per sweep: their episodes are held.",
    },
    Metric {
        name: FINDINGS_MISSED_BY_EVENTS,
        unit: "Count",
        meaning: "Flagged resources a findings sweep found that Trusted Advisor refreshed while the account was watched and no event brought: the account's event path is broken.",
    },
    Metric {
        name: STARTS_HELD,
        unit: "Count",
        meaning: "Episodes held by a control (dimension Control: approval, dry-run, cool-down, kill-switch, circuit-breaker, in-flight, opt-in, member-account, member…).",
    },
    Metric {
        name: AUTOMATIONS_STARTED,
        unit: "Count",
        meaning: "Runbook starts.",
    },
    Metric {
        name: EXECUTIONS_SUCCEEDED,
        unit: "Count",
        meaning: "Runbooks that ended in Success.",
    },
    Metric {
        name: EXECUTIONS_FAILED,
        unit: "Count",
        meaning: "Runbooks that failed, timed out, were cancelled or refused.",
    },
    Metric {
        name: VERIFICATIONS_FAILED,
        unit: "Count",
        meaning: "Successful runbooks after which Trusted Advisor still flagged the resource.",
    },
    Metric {
        name: RECORDS_PARKED,
        unit: "Count",
        meaning: "Events, records or sweeps parked on a failure queue (dimension Function).",
    },
    Metric {
        name: BREAKER_TRIPPED,
        unit: "Count",
        meaning: "Starts the circuit breaker held (a check over its starts per window).",
    },
    Metric {
        name: KILL_SWITCH_OFF,
        unit: "Count",
        meaning: "Episode sweeps that found the kill switch off (one every 15 minutes while it is).",
    },
    Metric {
        name: TIME_TO_FIX,
        unit: "Seconds",
        meaning: "From the episode's start (first flagged) to Trusted Advisor's Green.",
    },
    Metric {
        name: TIME_TO_START,
        unit: "Seconds",
        meaning: "From the episode's start to its first runbook start.",
    },
];

/// One thing to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    pub name: &'static str,
    /// The one extra dimension, when the metric has one.
    pub label: Option<(&'static str, String)>,
    pub amount: Amount,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    Count(u64),
    Seconds(f64),
}

impl Measure {
    pub fn count(name: &'static str) -> Measure {
        Measure {
            name,
            label: None,
            amount: Amount::Count(1),
        }
    }

    fn seconds(name: &'static str, seconds: f64) -> Measure {
        Measure {
            name,
            label: None,
            amount: Amount::Seconds(seconds),
        }
    }
}

/// Records measures with the installed recorder (none: nothing happens).
pub fn record(measures: impl IntoIterator<Item = Measure>) {
    for measure in measures {
        let labels: Vec<metrics::Label> = measure
            .label
            .map(|(key, value)| metrics::Label::new(key, value))
            .into_iter()
            .collect();
        match measure.amount {
            Amount::Count(n) => metrics::counter!(measure.name, labels).increment(n),
            Amount::Seconds(s) => metrics::histogram!(measure.name, labels).record(s),
        }
    }
}

/// Counts one occurrence of `name`.
pub fn count(name: &'static str) {
    record([Measure::count(name)]);
}

/// Counts one occurrence of `name` with its extra dimension.
pub fn count_by(name: &'static str, key: &'static str, value: &str) {
    record([Measure {
        label: Some((key, value.to_owned())),
        ..Measure::count(name)
    }]);
}

fn seconds_between(from: &str, to: &str) -> Option<f64> {
    let (from, to) = (parse_time(from)?, parse_time(to)?);
    Some(((to - from).num_milliseconds() as f64 / 1000.0).max(0.0))
}

/// What changed between the episode as it was (`previous`, `None` when there was none) and as it
/// is written: episodes opened, fixed or escalated, holds by control, execution outcomes, failed
/// verifications, and the times to start and to fix. Pure: the caller records them.
pub fn episode_measures(previous: Option<&Episode>, next: &Episode) -> Vec<Measure> {
    let same_episode = previous.filter(|p| p.episode == next.episode);
    let mut measures = vec![];
    if same_episode.is_none() && next.stage.is_open() {
        measures.push(Measure::count(EPISODES_OPENED));
    }
    let was = same_episode.map(|p| &p.stage);
    match (&next.stage, was) {
        (Stage::Fixed { .. }, Some(Stage::Fixed { .. })) => {}
        (Stage::Fixed { at }, _) => {
            measures.push(Measure::count(EPISODES_FIXED));
            if let Some(seconds) = seconds_between(&next.flagged_since, at) {
                measures.push(Measure::seconds(TIME_TO_FIX, seconds));
            }
        }
        (Stage::Escalated { .. }, Some(Stage::Escalated { .. })) => {}
        (Stage::Escalated { .. }, _) => measures.push(Measure::count(EPISODES_ESCALATED)),
        (Stage::Gone { .. }, Some(Stage::Gone { .. })) => {}
        (Stage::Gone { .. }, _) => measures.push(Measure::count(EPISODES_GONE)),
        (
            Stage::Held { control, .. },
            Some(Stage::Held {
                control: before, ..
            }),
        ) if before == control => {}
        (Stage::Held { control, .. }, _) => measures.push(Measure {
            label: Some(("Control", control.clone())),
            ..Measure::count(STARTS_HELD)
        }),
        _ => {}
    }
    // A fix that did not hold: from verifying (or unconfirmed) back to work, or to a person (an
    // account gone meanwhile says nothing about the fix).
    if matches!(was, Some(Stage::Verifying { .. } | Stage::Unconfirmed))
        && !matches!(
            next.stage,
            Stage::Verifying { .. } | Stage::Unconfirmed | Stage::Fixed { .. } | Stage::Gone { .. }
        )
    {
        measures.push(Measure::count(VERIFICATIONS_FAILED));
    }
    let before = same_episode.map(|p| p.attempts.as_slice()).unwrap_or(&[]);
    for attempt in &next.attempts {
        let earlier = before
            .iter()
            .find(|a| a.client_token == attempt.client_token);
        if earlier.is_none() && attempt.number == 1 {
            let started = chrono::DateTime::from_timestamp(attempt.started_at, 0)
                .map(crate::finding::format_time);
            if let Some(seconds) = started.and_then(|s| seconds_between(&next.flagged_since, &s)) {
                measures.push(Measure::seconds(TIME_TO_START, seconds));
            }
        }
        if let Some(status) = &attempt.status
            && earlier.is_none_or(|e| e.status.is_none())
        {
            measures.push(Measure::count(
                if crate::automation_event::is_success(status) {
                    EXECUTIONS_SUCCEEDED
                } else {
                    EXECUTIONS_FAILED
                },
            ));
        }
    }
    measures
}

/// Names the episode and its attempt on the current span (declared there as empty fields), so
/// every later log line of this finding's work carries them. The episode is its opening
/// observation's order key; the attempt is the number of starts so far in it (0: none yet).
pub fn mark_episode(episode: &Episode) {
    let span = tracing::Span::current();
    span.record("findingKey", episode.finding_key.as_str());
    span.record("episode", episode.episode.as_str());
    span.record("attempt", episode.attempts.len());
}

/// Records what changed in an episode just written.
pub fn episode_written(previous: Option<&Episode>, next: &Episode) {
    record(episode_measures(previous, next));
}

/// The functions' EMF writer: installed once per process, flushed after each invocation.
#[derive(Clone, Copy)]
pub struct Emf {
    collector: &'static metrics_cloudwatch_embedded::Collector,
}

impl Emf {
    /// Installs the recorder: namespace `METRICS_NAMESPACE` (tarem), dimension `Stack`
    /// (`METRICS_STACK`, else the function's name).
    pub fn install() -> Result<Emf, String> {
        let namespace = std::env::var("METRICS_NAMESPACE")
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "tarem".into());
        let stack = std::env::var("METRICS_STACK")
            .or_else(|_| std::env::var("AWS_LAMBDA_FUNCTION_NAME"))
            .unwrap_or_else(|_| "tarem".into());
        let collector = metrics_cloudwatch_embedded::Builder::new()
            .cloudwatch_namespace(namespace)
            .with_dimension("Stack", stack)
            .init()
            .map_err(|error| format!("cannot install the metrics recorder: {error}"))?;
        describe();
        Ok(Emf { collector })
    }

    /// Writes the invocation's metrics (one EMF line per dimension set) to standard output.
    pub fn flush(&self) {
        if let Err(error) = self.collector.flush(std::io::stdout().lock()) {
            tracing::warn!(%error, "could not write the invocation's metrics");
        }
    }

    /// The same, into `writer` (tests parse it back).
    pub fn flush_to(&self, writer: impl std::io::Write) -> std::io::Result<()> {
        self.collector.flush(writer)
    }
}

/// Gives each metric its unit.
fn describe() {
    for metric in METRICS {
        let unit = match metric.unit {
            "Seconds" => metrics::Unit::Seconds,
            _ => metrics::Unit::Count,
        };
        if unit == metrics::Unit::Seconds {
            metrics::describe_histogram!(metric.name, unit, metric.meaning);
        } else {
            metrics::describe_counter!(metric.name, unit, metric.meaning);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::episode::Attempt;
    use crate::finding::Status;

    fn episode(stage: Stage) -> Episode {
        Episode {
            finding_key: "k".into(),
            version: 1,
            episode: "e1".into(),
            flagged_since: "2026-11-02T09:00:00.000Z".into(),
            check_name: "c".into(),
            account: None,
            resource: "r".into(),
            status: Status::Red,
            stage,
            ops_item_id: None,
            ops_item_owed: false,
            attempts: vec![],
            previous_start: None,
            updated_at: "2026-11-02T09:00:00.000Z".into(),
            expires_at: 0,
            due_at: None,
            recheck_at: None,
            check_ops_item: false,
            approval: None,
        }
    }

    fn attempt(status: Option<&str>) -> Attempt {
        Attempt {
            number: 1,
            client_token: "t1".into(),
            // 2026-11-02T09:10:00Z
            started_at: 1_793_610_600,
            document: "AWS-X".into(),
            region: "eu-west-1".into(),
            max_attempts: 3,
            cool_down_minutes: 30,
            execution_id: None,
            status: status.map(str::to_owned),
            ended_at: None,
            failure: None,
            lock: None,
        }
    }

    fn names(measures: &[Measure]) -> Vec<&str> {
        measures.iter().map(|m| m.name).collect()
    }

    #[test]
    fn a_new_episode_that_starts_counts_its_opening_and_time_to_start() {
        let mut next = episode(Stage::Remediating);
        next.attempts.push(attempt(None));
        let measures = episode_measures(None, &next);
        assert_eq!(names(&measures), [EPISODES_OPENED, TIME_TO_START]);
        assert_eq!(measures[1].amount, Amount::Seconds(600.0));
        // Written again unchanged (a retry): nothing new.
        assert_eq!(episode_measures(Some(&next), &next), vec![]);
    }

    #[test]
    fn holds_count_once_per_control() {
        let held = |control: &str| {
            episode(Stage::Held {
                control: control.into(),
                reason: "r".into(),
                until: None,
            })
        };
        let approval = held("approval");
        let measures = episode_measures(None, &approval);
        assert_eq!(names(&measures), [EPISODES_OPENED, STARTS_HELD]);
        assert_eq!(measures[1].label, Some(("Control", "approval".into())));
        assert_eq!(episode_measures(Some(&approval), &approval), vec![]);
        assert_eq!(
            names(&episode_measures(Some(&approval), &held("cool-down"))),
            [STARTS_HELD]
        );
    }

    #[test]
    fn outcomes_fixes_and_failed_verifications_are_counted_where_they_happen() {
        let mut running = episode(Stage::Remediating);
        running.attempts.push(attempt(None));
        let mut verifying = episode(Stage::Verifying {
            until: "2026-11-03T09:00:00.000Z".into(),
        });
        verifying.attempts.push(attempt(Some("Success")));
        assert_eq!(
            names(&episode_measures(Some(&running), &verifying)),
            [EXECUTIONS_SUCCEEDED]
        );
        let mut again = verifying.clone();
        again.stage = Stage::Held {
            control: "cool-down".into(),
            reason: "r".into(),
            until: None,
        };
        assert_eq!(
            names(&episode_measures(Some(&verifying), &again)),
            [STARTS_HELD, VERIFICATIONS_FAILED]
        );
        let mut fixed = verifying.clone();
        fixed.stage = Stage::Fixed {
            at: "2026-11-02T10:00:00.000Z".into(),
        };
        let measures = episode_measures(Some(&verifying), &fixed);
        assert_eq!(names(&measures), [EPISODES_FIXED, TIME_TO_FIX]);
        assert_eq!(measures[1].amount, Amount::Seconds(3600.0));
        let mut failed = running.clone();
        failed.attempts[0].status = Some("Failed".into());
        failed.stage = Stage::Escalated {
            reason: "cap".into(),
        };
        assert_eq!(
            names(&episode_measures(Some(&running), &failed)),
            [EPISODES_ESCALATED, EXECUTIONS_FAILED]
        );
        let mut gone = verifying.clone();
        gone.stage = Stage::Gone {
            reason: "the account left the organisation".into(),
        };
        assert_eq!(
            names(&episode_measures(Some(&verifying), &gone)),
            [EPISODES_GONE]
        );
        assert!(
            episode_measures(Some(&gone), &gone).is_empty(),
            "counted once"
        );
    }

    #[test]
    fn a_new_episode_after_a_fixed_one_is_a_new_opening() {
        let fixed = episode(Stage::Fixed {
            at: "2026-11-02T10:00:00.000Z".into(),
        });
        let mut reopened = episode(Stage::Flagged {
            reason: "no mapping".into(),
        });
        reopened.episode = "e2".into();
        assert_eq!(
            names(&episode_measures(Some(&fixed), &reopened)),
            [EPISODES_OPENED]
        );
    }
}
