//! `tarem simulate --from-logs`: the backtest's input, the stack's raw-event audit log
//! (`/aws/events/tarem-trusted-advisor-<stack>`, where the Trusted Advisor rule writes each
//! event whole) as exported. Accepted: JSON Lines whose lines are the events themselves, or log
//! records with the event in `message` (`aws logs filter-log-events` items, Logs Insights
//! exports), or one `filter-log-events` answer (`{"events": [...]}`). Events come back in their
//! own time order, as check-tracker would have seen them.

use crate::CliError;
use serde_json::Value;
use std::path::Path;

/// The events of an audit-log export, in time order; a line that holds no event is a
/// rejection with its line number.
pub fn read(path: &Path) -> Result<Vec<Result<Value, String>>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| CliError::usage(format!("{}: {error}", path.display())))?;
    let whole: Option<Value> = serde_json::from_str(&text).ok();
    let records: Vec<(usize, Result<Value, String>)> = match whole {
        Some(Value::Object(answer)) if answer.get("events").is_some_and(Value::is_array) => answer
            ["events"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, record)| (i + 1, Ok(record.clone())))
            .collect(),
        _ => text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                (
                    i + 1,
                    serde_json::from_str(line).map_err(|e| format!("not JSON: {e}")),
                )
            })
            .collect(),
    };
    let mut events: Vec<(Option<String>, Result<Value, String>)> = records
        .into_iter()
        .map(|(line, record)| {
            let event = record
                .and_then(event_of)
                .map_err(|reason| format!("{} line {line}: {reason}", path.display()));
            let time = event
                .as_ref()
                .ok()
                .and_then(|e| e.get("time"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            (time, event)
        })
        .collect();
    // A stable sort: events of the same second keep the log's order.
    events.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(events.into_iter().map(|(_, event)| event).collect())
}

/// The event a record holds: itself, or the JSON text in its `message`.
fn event_of(record: Value) -> Result<Value, String> {
    if record.get("detail-type").is_some() {
        return Ok(record);
    }
    match record.get("message") {
        Some(Value::String(message)) => {
            serde_json::from_str(message).map_err(|e| format!("its message is not JSON: {e}"))
        }
        Some(message @ Value::Object(_)) => Ok(message.clone()),
        _ => Err("neither an event nor a log record with the event in `message`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, time: &str) -> Value {
        serde_json::json!({"id": id, "time": time, "detail-type": "Trusted Advisor Check Item Refresh Notification"})
    }

    #[test]
    fn every_export_shape_gives_the_events_in_time_order() {
        let dir = std::env::temp_dir().join(format!("tarem-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let late = event("late", "2026-11-02T10:00:00Z");
        let early = event("early", "2026-11-02T09:00:00Z");
        let shapes = [
            format!("{late}\n{early}\n"),
            format!(
                "{}\n\n{}\n",
                serde_json::json!({"timestamp": 2, "message": late.to_string()}),
                serde_json::json!({"timestamp": 1, "message": early.to_string()})
            ),
            serde_json::json!({"events": [
                {"timestamp": 2, "message": late.to_string()},
                {"timestamp": 1, "message": early.to_string()}
            ]})
            .to_string(),
        ];
        for (i, shape) in shapes.iter().enumerate() {
            let path = dir.join(format!("{i}.jsonl"));
            std::fs::write(&path, shape).unwrap();
            let ids: Vec<String> = read(&path)
                .unwrap()
                .into_iter()
                .map(|e| e.unwrap()["id"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(ids, ["early", "late"], "shape {i}");
        }
        let path = dir.join("bad.jsonl");
        std::fs::write(&path, format!("{early}\nnot json\n{{\"message\": 3}}\n")).unwrap();
        let read = read(&path).unwrap();
        // What holds no event has no time: it comes first, and the event after it.
        assert_eq!(
            read[2].as_ref().map(|e| e["id"].clone()),
            Ok("early".into())
        );
        let reasons: Vec<String> = read.into_iter().filter_map(Result::err).collect();
        assert_eq!(reasons.len(), 2);
        assert!(reasons[0].contains("line 2: not JSON"), "{reasons:?}");
        assert!(
            reasons[1].contains("line 3: neither an event"),
            "{reasons:?}"
        );
    }
}
