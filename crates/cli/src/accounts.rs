//! `tarem accounts`: the organisation's coverage at a glance, from the stack (which accounts it
//! governs), its episodes (what each account's findings are doing) and its account registry
//! (each account's latest findings sweep and latest event). [`coverage`] and [`with_registry`]
//! are pure; `commands::accounts` reads the stack and the table.

use serde::Serialize;
use std::collections::BTreeMap;
use tarem_shared::episode::{Episode, Stage};
use tarem_shared::ports::{AccountRecord, AccountStanding, AdvisorAccess};

/// One account's line.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountCoverage {
    pub account: String,
    /// `hub` (the stack's own), `member`, or `not governed` (episodes of an account the stack
    /// no longer governs).
    pub role: String,
    /// `ok`, or what keeps the hub from acting there now: its member role refused the hub, its
    /// owner paused tarem or its template is too old, or it left the organisation.
    pub standing: String,
    /// Open episodes: what Trusted Advisor flags there now.
    pub open: usize,
    pub remediating: usize,
    /// Held open episodes, by control.
    pub held: BTreeMap<String, usize>,
    pub escalated: usize,
    pub gone: usize,
    /// The latest episode change there (RFC 3339), if any.
    pub last_change: Option<String>,
    /// The latest Trusted Advisor event heard from it (RFC 3339, to within the hour): its
    /// forwarding works.
    pub last_event: Option<String>,
    /// Its latest findings sweep (RFC 3339).
    pub last_sweep: Option<String>,
    /// How that sweep read its findings: `ta-api` (the Trusted Advisor API), `support` (the
    /// Support API), or `none` (no plan that allows either: covered by its events alone).
    pub trusted_advisor: Option<String>,
    /// `/tarem/member/version` there.
    pub member_version: Option<String>,
    /// Flagged findings its latest sweep found that no event brought.
    pub missed_by_events: u64,
    /// The regions its flagged findings are in, at its latest sweep.
    pub regions: Vec<String>,
}

/// Each governed account (the hub first, then the members in order), then any account whose
/// episodes the table still keeps though the stack no longer governs it. `home` is the stack's
/// own account (`None`: no stack was read, so no account is known to be the hub): episodes that
/// name no account are its.
pub fn coverage(
    home: Option<&str>,
    members: &[String],
    episodes: &[Episode],
    now: i64,
) -> Vec<AccountCoverage> {
    let home_line = home.map(|home| (home, "hub"));
    let home = home.unwrap_or("(none)");
    let mut lines: Vec<AccountCoverage> = home_line
        .into_iter()
        .chain(members.iter().map(|m| (m.as_str(), "member")))
        .map(|(account, role)| AccountCoverage {
            account: account.to_owned(),
            role: role.to_owned(),
            ..Default::default()
        })
        .collect();
    // The latest hold reason of each kind, for the standing.
    let mut reasons: BTreeMap<String, (String, String)> = BTreeMap::new();
    for episode in episodes {
        // An episode past its TTL reads as gone from the table, as `tarem status` counts it.
        if episode.expires_at > 0 && episode.expires_at <= now {
            continue;
        }
        let account = episode.account.clone().unwrap_or_else(|| home.to_owned());
        let index = match lines.iter().position(|l| l.account == account) {
            Some(index) => index,
            None => {
                lines.push(AccountCoverage {
                    account: account.clone(),
                    role: "not governed".into(),
                    ..Default::default()
                });
                lines.len() - 1
            }
        };
        let line = &mut lines[index];
        if line.last_change.as_deref() < Some(episode.updated_at.as_str()) {
            line.last_change = Some(episode.updated_at.clone());
        }
        match &episode.stage {
            Stage::Gone { reason } => {
                line.gone += 1;
                reasons.insert(
                    format!("{account}#gone"),
                    (episode.updated_at.clone(), reason.clone()),
                );
            }
            stage if !stage.is_open() => {}
            stage => {
                line.open += 1;
                match stage {
                    Stage::Remediating => line.remediating += 1,
                    Stage::Escalated { .. } => line.escalated += 1,
                    Stage::Held {
                        control, reason, ..
                    } => {
                        *line.held.entry(control.clone()).or_default() += 1;
                        let key = format!("{account}#{control}");
                        if reasons
                            .get(&key)
                            .is_none_or(|(at, _)| *at < episode.updated_at)
                        {
                            reasons.insert(key, (episode.updated_at.clone(), reason.clone()));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    for line in &mut lines {
        let reason = |kind: &str| {
            reasons
                .get(&format!("{}#{kind}", line.account))
                .map(|(_, r)| r.clone())
        };
        line.standing = if line.role == "not governed" {
            "not governed: its findings are refused".into()
        } else if line.held.contains_key("member-account") {
            format!(
                "unreachable: {}",
                reason("member-account").unwrap_or_default()
            )
        } else if line.held.contains_key("member") {
            format!(
                "starts refused there: {}",
                reason("member").unwrap_or_default()
            )
        } else if line.gone > 0 && line.open == 0 {
            format!("gone: {}", reason("gone").unwrap_or_default())
        } else {
            "ok".into()
        };
    }
    lines
}

fn rfc3339(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| at.to_string())
}

/// What the account registry says of each line's account: its latest event, its latest sweep
/// and what that found. A standing the episodes do not show (an account held or gone with no
/// finding yet, one whose events stopped) comes from here.
pub fn with_registry(lines: &mut [AccountCoverage], records: &[AccountRecord]) {
    for line in lines.iter_mut() {
        let Some(record) = records.iter().find(|r| r.account == line.account) else {
            continue;
        };
        line.last_event = record.last_event_at.map(rfc3339);
        line.last_sweep = record.swept_at.map(rfc3339);
        line.trusted_advisor = record.advisor.map(|advisor| {
            match advisor {
                AdvisorAccess::TrustedAdvisor => "ta-api",
                AdvisorAccess::Support => "support",
                AdvisorAccess::None => "none",
            }
            .to_owned()
        });
        line.member_version = record.member_version.clone();
        line.missed_by_events = record.missed_by_events;
        line.regions = record.regions.clone();
        if line.standing != "ok" {
            continue;
        }
        let reason = record.reason.clone().unwrap_or_default();
        line.standing = match record.standing {
            Some(AccountStanding::Held) => format!("unreachable: {reason}"),
            Some(AccountStanding::Gone) => format!("gone: {reason}"),
            _ if record.paused => "paused by its owner (/tarem/member/paused is on)".into(),
            _ if record.missed_by_events > 0 => format!(
                "events missing: its latest sweep found {} flagged findings no event brought; check its forwarding rule",
                record.missed_by_events
            ),
            _ if record.advisor == Some(AdvisorAccess::None) => {
                format!("covered by its events alone: {reason}")
            }
            _ => "ok".into(),
        };
    }
}

/// The screen: one line per account, then its standing when it is not ok.
pub fn text(lines: &[AccountCoverage]) -> String {
    let mut out = vec![format!(
        "{:<14} {:<12} {:>5} {:>11} {:>5} {:>9} {:>4} {:>7} {:<8} {:<20}  last change",
        "account",
        "role",
        "open",
        "remediating",
        "held",
        "escalated",
        "gone",
        "version",
        "advisor",
        "last event"
    )];
    for line in lines {
        let held: usize = line.held.values().sum();
        out.push(format!(
            "{:<14} {:<12} {:>5} {:>11} {:>5} {:>9} {:>4} {:>7} {:<8} {:<20}  {}",
            line.account,
            line.role,
            line.open,
            line.remediating,
            held,
            line.escalated,
            line.gone,
            line.member_version.as_deref().unwrap_or("-"),
            line.trusted_advisor.as_deref().unwrap_or("-"),
            line.last_event.as_deref().unwrap_or("-"),
            line.last_change.as_deref().unwrap_or("-")
        ));
        if !line.regions.is_empty() {
            out.push(format!("  flagged in {}", line.regions.join(", ")));
        }
        if line.standing != "ok" {
            out.push(format!("  {}", line.standing));
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tarem_shared::finding::{Finding, Status};

    fn episode(account: Option<&str>, resource: &str, stage: Stage, updated: &str) -> Episode {
        let finding = Finding::new(
            account.unwrap_or("111122223333"),
            "Security groups should not allow unrestricted access to ports with high risk",
            resource,
            "ap-southeast-2",
        )
        .at(Status::Red, chrono::Utc::now(), chrono::Utc::now());
        let mut episode = Episode::opened_by(&finding, None, updated);
        episode.account = account.map(str::to_owned);
        episode.stage = stage;
        episode.updated_at = updated.to_owned();
        episode
    }

    #[test]
    fn each_account_says_what_keeps_the_hub_out_and_the_hub_comes_first() {
        let held = |control: &str, reason: &str| Stage::Held {
            control: control.into(),
            reason: reason.into(),
            until: None,
        };
        let members = vec![
            "444455556666".to_owned(),
            "777788889999".to_owned(),
            "222233334444".to_owned(),
        ];
        let episodes = vec![
            episode(None, "sg-1", Stage::Remediating, "2026-12-01T10:00:00Z"),
            episode(
                Some("444455556666"),
                "sg-2",
                held(
                    "member-account",
                    "the hub cannot act in account 444455556666: AccessDenied",
                ),
                "2026-12-01T11:00:00Z",
            ),
            episode(
                Some("444455556666"),
                "sg-3",
                held("approval", "approve with tarem"),
                "2026-12-01T09:00:00Z",
            ),
            episode(
                Some("777788889999"),
                "sg-4",
                held("member", "the account's owner paused tarem here"),
                "2026-12-01T12:00:00Z",
            ),
            episode(
                Some("222233334444"),
                "sg-5",
                Stage::Gone {
                    reason: "the account left the organisation: the episode ends here, unfixed"
                        .into(),
                },
                "2026-12-01T13:00:00Z",
            ),
            episode(
                Some("999988887777"),
                "sg-6",
                Stage::Flagged {
                    reason: "no mapping".into(),
                },
                "2026-12-01T08:00:00Z",
            ),
        ];
        let lines = coverage(Some("111122223333"), &members, &episodes, 0);
        let by = |id: &str| lines.iter().find(|l| l.account == id).unwrap();
        assert_eq!(lines[0].account, "111122223333");
        assert_eq!(lines[0].role, "hub");
        assert_eq!(
            (lines[0].open, lines[0].remediating),
            (1, 1),
            "an episode without an account is the hub's"
        );
        assert_eq!(lines[0].standing, "ok");
        let b = by("444455556666");
        assert_eq!(
            (b.open, b.held["member-account"], b.held["approval"]),
            (2, 1, 1)
        );
        assert!(
            b.standing.starts_with("unreachable: the hub cannot act"),
            "{}",
            b.standing
        );
        assert!(by("777788889999").standing.contains("paused"));
        let gone = by("222233334444");
        assert_eq!((gone.open, gone.gone), (0, 1));
        assert!(gone.standing.starts_with("gone: the account left"));
        assert_eq!(by("999988887777").role, "not governed");
        let screen = text(&lines);
        assert!(
            screen.contains("  unreachable: the hub cannot act in account 444455556666"),
            "{screen}"
        );
    }

    #[test]
    fn an_expired_episode_is_not_counted() {
        let mut old = episode(
            Some("444455556666"),
            "sg-1",
            Stage::Remediating,
            "2026-12-01T10:00:00Z",
        );
        old.expires_at = 100;
        let lines = coverage(
            Some("111122223333"),
            &["444455556666".to_owned()],
            &[old],
            200,
        );
        assert_eq!(lines[1].open, 0);
        assert_eq!(lines[1].last_change, None);
    }

    #[test]
    fn the_registry_says_what_no_episode_shows_and_never_hides_what_one_does() {
        let members: Vec<String> = [
            "444455556666",
            "777788889999",
            "222233334444",
            "555566667777",
        ]
        .map(str::to_owned)
        .to_vec();
        let held_episode = episode(
            Some("555566667777"),
            "sg-1",
            Stage::Held {
                control: "member".into(),
                reason: "the account's member template is version \"0\"".into(),
                until: None,
            },
            "2026-12-01T10:00:00Z",
        );
        let mut lines = coverage(Some("111122223333"), &members, &[held_episode], 0);
        let record = |account: &str| AccountRecord {
            swept_at: Some(1_796_213_700),
            standing: Some(AccountStanding::Ready),
            advisor: Some(AdvisorAccess::Support),
            member_version: Some("1".into()),
            ..AccountRecord::new(account)
        };
        let records = vec![
            AccountRecord {
                last_event_at: Some(1_796_212_800),
                regions: vec!["eu-west-1".into(), "us-east-1".into()],
                ..record("111122223333")
            },
            // No finding there yet, and its role refuses the hub.
            AccountRecord {
                standing: Some(AccountStanding::Held),
                reason: Some("AccessDenied on sts:AssumeRole".into()),
                advisor: None,
                member_version: None,
                ..record("444455556666")
            },
            AccountRecord {
                missed_by_events: 2,
                ..record("777788889999")
            },
            AccountRecord {
                advisor: Some(AdvisorAccess::None),
                reason: Some("SubscriptionRequiredException".into()),
                ..record("222233334444")
            },
            // Held by the episodes' reason, whatever the sweep saw.
            AccountRecord {
                missed_by_events: 5,
                ..record("555566667777")
            },
        ];
        with_registry(&mut lines, &records);
        let by = |id: &str| lines.iter().find(|l| l.account == id).unwrap();
        let hub = by("111122223333");
        assert_eq!(hub.standing, "ok");
        assert_eq!(hub.last_event.as_deref(), Some("2026-12-02T12:00:00Z"));
        assert_eq!(hub.trusted_advisor.as_deref(), Some("support"));
        assert_eq!(
            by("444455556666").standing,
            "unreachable: AccessDenied on sts:AssumeRole"
        );
        assert!(
            by("777788889999")
                .standing
                .starts_with("events missing: its latest sweep found 2")
        );
        assert!(
            by("222233334444")
                .standing
                .starts_with("covered by its events alone")
        );
        assert!(
            by("555566667777")
                .standing
                .starts_with("starts refused there")
        );
        assert_eq!(by("555566667777").missed_by_events, 5);
        let screen = text(&lines);
        assert!(screen.contains("2026-12-02T12:00:00Z"), "{screen}");
        assert!(
            screen.contains("  flagged in eu-west-1, us-east-1"),
            "{screen}"
        );
    }
}
