//! `tarem status`: the loop on one screen, from the tables: what is flagged now, episodes by
//! state, the last 24 hours, time to fix, breakers, the kill switch and the OpsItem budget.
//! [`summarize`] is pure; `commands::status` reads the tables and the kill switch.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use tarem_shared::automation_event::is_success;
use tarem_shared::episode::{Episode, Stage};
use tarem_shared::finding::parse_time;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Open episodes per check: what Trusted Advisor flags now.
    pub flagged_by_check: BTreeMap<String, usize>,
    /// Every kept episode by state (closed ones until their TTL).
    pub episodes: BTreeMap<String, usize>,
    pub last_24_hours: Window,
    pub time_to_fix: TimeToFix,
    /// Checks whose circuit breaker counted starts in the current window.
    pub breakers: Vec<Breaker>,
    /// `on`, `off`, or `unknown: <why>`.
    pub kill_switch: String,
    pub ops_items: Budget,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    pub starts: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub escalated: usize,
    pub fixed: usize,
}

/// From the episode's start to Trusted Advisor's Green, over the fixes of the last 30 days.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeToFix {
    pub fixes: usize,
    pub p50_hours: Option<f64>,
    pub p90_hours: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Breaker {
    pub check: String,
    pub starts: u64,
    pub limit: u64,
    pub open: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    pub this_month: u64,
    pub budget: u64,
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn since(time: &str, now: DateTime<Utc>, window: Duration) -> bool {
    parse_time(time).is_some_and(|t| now - t <= window && t <= now)
}

fn epoch_since(seconds: i64, now: DateTime<Utc>, window: Duration) -> bool {
    DateTime::from_timestamp(seconds, 0).is_some_and(|t| now - t <= window && t <= now)
}

/// What the episodes say, as of `now` (the breakers, kill switch and budget are filled by the
/// caller, which reads them).
pub fn summarize(episodes: &[Episode], now: DateTime<Utc>) -> Status {
    let day = Duration::hours(24);
    let mut status = Status::default();
    let mut fix_hours = vec![];
    for episode in episodes {
        // DynamoDB deletes an expired item within days, not at once: an episode past its TTL
        // reads as gone, whether or not the scan still returned it.
        if episode.expires_at > 0 && episode.expires_at <= now.timestamp() {
            continue;
        }
        *status
            .episodes
            .entry(episode.stage.name().to_owned())
            .or_default() += 1;
        if episode.stage.is_open() {
            *status
                .flagged_by_check
                .entry(episode.check_name.clone())
                .or_default() += 1;
        }
        for attempt in &episode.attempts {
            if epoch_since(attempt.started_at, now, day) {
                status.last_24_hours.starts += 1;
            }
            if let (Some(outcome), Some(ended)) = (&attempt.status, attempt.ended_at)
                && epoch_since(ended, now, day)
            {
                if is_success(outcome) {
                    status.last_24_hours.succeeded += 1;
                } else {
                    status.last_24_hours.failed += 1;
                }
            }
        }
        match &episode.stage {
            Stage::Escalated { .. } if since(&episode.updated_at, now, day) => {
                status.last_24_hours.escalated += 1;
            }
            Stage::Fixed { at } => {
                if since(at, now, day) {
                    status.last_24_hours.fixed += 1;
                }
                if since(at, now, Duration::days(30))
                    && let (Some(from), Some(to)) =
                        (parse_time(&episode.flagged_since), parse_time(at))
                {
                    fix_hours.push((to - from).num_seconds().max(0) as f64 / 3600.0);
                }
            }
            _ => {}
        }
    }
    fix_hours.sort_by(f64::total_cmp);
    status.time_to_fix = TimeToFix {
        fixes: fix_hours.len(),
        p50_hours: percentile(&fix_hours, 0.5),
        p90_hours: percentile(&fix_hours, 0.9),
    };
    status
}

/// The screen.
pub fn text(status: &Status) -> String {
    let mut lines = vec![];
    let flagged: usize = status.flagged_by_check.values().sum();
    lines.push(format!(
        "flagged now    {flagged} {}",
        if flagged == 1 { "finding" } else { "findings" }
    ));
    for (check, count) in &status.flagged_by_check {
        lines.push(format!("  {count:>5}  {check}"));
    }
    let states: Vec<String> = status
        .episodes
        .iter()
        .map(|(state, count)| format!("{count} {state}"))
        .collect();
    lines.push(format!(
        "episodes       {}",
        if states.is_empty() {
            "none".into()
        } else {
            states.join(", ")
        }
    ));
    let w = &status.last_24_hours;
    lines.push(format!(
        "last 24 hours  {} started, {} succeeded, {} failed, {} escalated, {} fixed",
        w.starts, w.succeeded, w.failed, w.escalated, w.fixed
    ));
    let hours = |h: Option<f64>| h.map_or("-".into(), |h| format!("{h:.1} h"));
    lines.push(format!(
        "time to fix    p50 {}, p90 {} ({} fixes in 30 days)",
        hours(status.time_to_fix.p50_hours),
        hours(status.time_to_fix.p90_hours),
        status.time_to_fix.fixes
    ));
    let open: Vec<&Breaker> = status.breakers.iter().filter(|b| b.open).collect();
    lines.push(format!(
        "breakers       {}",
        if open.is_empty() {
            "none open".to_owned()
        } else {
            open.iter()
                .map(|b| format!("{} ({} of {})", b.check, b.starts, b.limit))
                .collect::<Vec<_>>()
                .join("; ")
        }
    ));
    lines.push(format!("kill switch    {}", status.kill_switch));
    lines.push(format!(
        "OpsItems       {} of {} this month",
        status.ops_items.this_month, status.ops_items.budget
    ));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tarem_shared::episode::Attempt;
    use tarem_shared::finding::Status as Flag;

    fn episode(check: &str, stage: Stage, flagged_since: &str) -> Episode {
        Episode {
            finding_key: format!("{check}-{flagged_since}"),
            version: 1,
            episode: flagged_since.into(),
            flagged_since: flagged_since.into(),
            check_name: check.into(),
            account: None,
            resource: "r".into(),
            status: Flag::Red,
            stage,
            ops_item_id: None,
            ops_item_owed: false,
            attempts: vec![],
            previous_start: None,
            updated_at: "2026-11-30T10:00:00.000Z".into(),
            expires_at: 0,
            due_at: None,
            recheck_at: None,
            check_ops_item: false,
            approval: None,
        }
    }

    #[test]
    fn the_screen_counts_what_the_episodes_say() {
        let now = parse_time("2026-11-30T12:00:00Z").unwrap();
        let fixed = |hours: i64| {
            let at = now - Duration::hours(1);
            episode(
                "c",
                Stage::Fixed {
                    at: tarem_shared::finding::format_time(at),
                },
                &tarem_shared::finding::format_time(at - Duration::hours(hours)),
            )
        };
        let mut running = episode("a", Stage::Remediating, "2026-11-30T09:00:00.000Z");
        running.attempts.push(Attempt {
            number: 1,
            client_token: "t".into(),
            started_at: (now - Duration::hours(2)).timestamp(),
            document: "D".into(),
            region: "eu-west-1".into(),
            max_attempts: 3,
            cool_down_minutes: 30,
            execution_id: None,
            status: Some("Failed".into()),
            ended_at: Some((now - Duration::hours(1)).timestamp()),
            failure: None,
            lock: None,
        });
        let old = episode(
            "c",
            Stage::Fixed {
                at: "2026-09-01T00:00:00.000Z".into(),
            },
            "2026-08-31T00:00:00.000Z",
        );
        let status = summarize(
            &[
                running,
                episode(
                    "a",
                    Stage::Escalated {
                        reason: "cap".into(),
                    },
                    "2026-11-29T00:00:00.000Z",
                ),
                fixed(1),
                fixed(3),
                fixed(10),
                old,
            ],
            now,
        );
        assert_eq!(
            status.flagged_by_check,
            BTreeMap::from([("a".to_owned(), 2)])
        );
        assert_eq!(status.episodes["fixed"], 4);
        assert_eq!(
            status.last_24_hours,
            Window {
                starts: 1,
                succeeded: 0,
                failed: 1,
                escalated: 1,
                fixed: 3
            }
        );
        assert_eq!(
            status.time_to_fix,
            TimeToFix {
                fixes: 3,
                p50_hours: Some(3.0),
                p90_hours: Some(10.0)
            }
        );
        assert!(
            text(&status).contains("time to fix    p50 3.0 h, p90 10.0 h (3 fixes in 30 days)")
        );
    }

    /// Times ahead of the reader's clock (another machine's skew) are not "in the last 24
    /// hours", and an episode past its TTL counts the same whether DynamoDB deleted it yet or not.
    #[test]
    fn future_times_and_expired_rows_are_not_counted() {
        let now = parse_time("2026-11-30T12:00:00Z").unwrap();
        let ahead = now + Duration::minutes(5);
        let mut early = episode(
            "a",
            Stage::Fixed {
                at: tarem_shared::finding::format_time(ahead),
            },
            "2026-11-30T10:00:00.000Z",
        );
        early.attempts.push(Attempt {
            number: 1,
            client_token: "t".into(),
            started_at: ahead.timestamp(),
            document: "D".into(),
            region: "eu-west-1".into(),
            max_attempts: 3,
            cool_down_minutes: 30,
            execution_id: None,
            status: Some("Success".into()),
            ended_at: Some(ahead.timestamp()),
            failure: None,
            lock: None,
        });
        let fixed_an_hour_ago = |expires_at: i64| {
            let mut e = episode(
                "b",
                Stage::Fixed {
                    at: tarem_shared::finding::format_time(now - Duration::hours(1)),
                },
                "2026-11-30T09:00:00.000Z",
            );
            e.expires_at = expires_at;
            e
        };
        let expired = fixed_an_hour_ago(now.timestamp());
        let kept = fixed_an_hour_ago(now.timestamp() + 1);

        let with_expired_row = summarize(&[early.clone(), expired, kept.clone()], now);
        let after_deletion = summarize(&[early, kept], now);
        assert_eq!(with_expired_row, after_deletion);
        assert_eq!(with_expired_row.episodes["fixed"], 2);
        assert_eq!(
            with_expired_row.last_24_hours,
            Window {
                starts: 0,
                succeeded: 0,
                failed: 0,
                escalated: 0,
                fixed: 1
            }
        );
        assert_eq!(with_expired_row.time_to_fix.fixes, 1);
    }
}
