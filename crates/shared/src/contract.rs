//! What every adapter of a port must do, as scripts that the in-memory adapter's unit tests and
//! the DynamoDB adapter's moto tests both run: one statement of the rules, checked against both
//! backends, so the fake cannot be kinder than AWS.

use crate::finding::{Finding, Status};
use crate::ports::{TrackerStore, WriteOutcome};
use chrono::{DateTime, Utc};

/// One write of the tracker script, and what it must do.
struct Step {
    what: &'static str,
    status: Status,
    /// Item time and event time, in seconds after the script's base time.
    item: i64,
    said: i64,
    expect: WriteOutcome,
}

const fn step(
    what: &'static str,
    status: Status,
    item: i64,
    said: i64,
    expect: WriteOutcome,
) -> Step {
    Step {
        what,
        status,
        item,
        said,
        expect,
    }
}

/// The tracker's ordering rules as a sequence of writes to one finding (docs/operations.md, "Rules worth
/// knowing"): ties, replays, a reconcile sweep's Green and a later event, and the episode markers
/// each write leaves. `Err` names the first step that went wrong.
pub async fn tracker_order_script(
    tracker: &dyn TrackerStore,
    resource: &str,
) -> Result<(), String> {
    use Status::*;
    use WriteOutcome::*;
    let base = DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z")
        .map_err(|e| e.to_string())?
        .with_timezone(&Utc);
    let at = |seconds: i64| base + chrono::Duration::seconds(seconds);
    let finding = |status: Status, item: i64, said: i64| {
        Finding::new(
            "123456789012",
            "Security groups should not allow unrestricted access to ports with high risk",
            resource,
            "eu-west-1",
        )
        .at(status, at(item), at(said))
    };
    let steps = [
        step("first Red", Red, 100, 200, Written),
        step("the same event again", Red, 100, 200, Duplicate),
        step(
            "a Green with the same item and event time (a full tie: Red wins)",
            Green,
            100,
            200,
            Stale,
        ),
        step(
            "a Green with the same item time, said later",
            Green,
            100,
            300,
            Written,
        ),
        step(
            "the first Red replayed, said earlier than the Green",
            Red,
            100,
            250,
            Stale,
        ),
        step(
            "a Red with an older item time, said much later (item time decides first)",
            Red,
            50,
            9_000,
            Stale,
        ),
        step(
            "a Red tied with the Green on both times (Red wins the tie)",
            Red,
            100,
            300,
            Written,
        ),
        step(
            "a Yellow refresh with a later item time",
            Yellow,
            400,
            500,
            Written,
        ),
        step(
            "the same Yellow said again later",
            Yellow,
            400,
            600,
            Refreshed,
        ),
        step(
            "a reconcile Green: the row's item time, said at the sweep's result time",
            Green,
            400,
            700,
            Written,
        ),
        step(
            "a Red emitted after the sweep with an item time before the result's",
            Red,
            650,
            800,
            Written,
        ),
        step("a Red replayed from before the sweep", Red, 450, 550, Stale),
    ];
    let mut flagged_since: Option<String> = None;
    for (index, step) in steps.iter().enumerate() {
        let written = finding(step.status, step.item, step.said);
        let got = tracker
            .put_if_newer(&written)
            .await
            .map_err(|e| format!("step {index} ({}): {e}", step.what))?;
        if got != step.expect {
            return Err(format!(
                "step {index} ({}): expected {:?}, got {got:?}",
                step.what, step.expect
            ));
        }
        if matches!(got, Written | Refreshed) {
            flagged_since = match (step.status.is_flagged(), flagged_since) {
                (false, _) => None,
                (true, Some(since)) => Some(since),
                (true, None) => written.flagged_since.clone(),
            };
        }
        let row = tracker
            .get(&written.hash_key, resource)
            .await
            .map_err(|e| format!("step {index}: {e}"))?
            .ok_or_else(|| format!("step {index} ({}): the row is gone", step.what))?;
        if row.flagged_since != flagged_since {
            return Err(format!(
                "step {index} ({}): flaggedSince {:?}, expected {flagged_since:?}",
                step.what, row.flagged_since
            ));
        }
        if row.resource_status.is_flagged() != row.episode.is_some() {
            return Err(format!(
                "step {index} ({}): a {} row with episode {:?}",
                step.what, row.resource_status, row.episode
            ));
        }
    }
    let last = finding(Red, 650, 800);
    let row = tracker
        .get(&last.hash_key, resource)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the row is gone")?;
    if row.order() != last.order() || row.resource_status != Red {
        return Err(format!("the final row is {row:?}"));
    }
    Ok(())
}

/// The execution poll's reads: only rows still running and last updated before the cutoff, in
/// whatever order the start and the status events were written (a final status that beat the
/// start's write, a status update that moved a row's time). `Err` says what was read instead.
pub async fn running_executions_script(
    store: &dyn crate::ports::ExecutionStore,
) -> Result<(), String> {
    let row = |id: &str, status: &str, updated_at: &str| crate::ports::ExecutionRecord {
        account: None,
        automation_execution_id: id.into(),
        ops_item_id: None,
        finding_key: format!("finding-{id}"),
        region: "eu-west-1".into(),
        document: Some("AWS-DisablePublicAccessForSecurityGroup".into()),
        check_name: None,
        resource: None,
        client_token: None,
        parameters: None,
        resource_lock: None,
        status: status.into(),
        started_at: Some("2026-11-02T09:00:00.000Z".into()),
        updated_at: updated_at.into(),
        expires_at: 1_900_000_000,
    };
    let fail = |e: crate::error::PortError| e.to_string();
    let nine = "2026-11-02T09:00:00.000Z";
    store
        .record_started(&row("running", "Pending", nine))
        .await
        .map_err(fail)?;
    store
        .record_started(&row("done", "Pending", nine))
        .await
        .map_err(fail)?;
    store
        .record_status(&row("done", "Success", "2026-11-02T09:05:00.000Z"))
        .await
        .map_err(fail)?;
    // The final status's event arrived before the start was written.
    store
        .record_status(&row("beaten", "Failed", nine))
        .await
        .map_err(fail)?;
    store
        .record_started(&row("beaten", "Pending", nine))
        .await
        .map_err(fail)?;
    store
        .record_started(&row("moved", "Pending", nine))
        .await
        .map_err(fail)?;
    store
        .record_status(&row("moved", "InProgress", "2026-11-02T12:00:00.000Z"))
        .await
        .map_err(fail)?;
    store
        .record_started(&row("late", "Pending", "2026-11-02T12:00:00.000Z"))
        .await
        .map_err(fail)?;
    for (cutoff, expected) in [
        ("2026-11-02T10:00:00.000Z", vec!["running"]),
        ("2026-11-02T13:00:00.000Z", vec!["late", "moved", "running"]),
    ] {
        let mut ids: Vec<String> = store
            .unfinished(cutoff)
            .await
            .map_err(fail)?
            .into_iter()
            .map(|r| r.automation_execution_id)
            .collect();
        ids.sort();
        if ids != expected {
            return Err(format!(
                "unfinished before {cutoff}: {ids:?}, not {expected:?}"
            ));
        }
    }
    Ok(())
}
