//! Event parsing from raw bytes: whatever arrives on the EventBridge rule, parsed as JSON (non-JSON
//! is skipped: the Lambda runtime rejects it before our code runs), must turn into a finding or a
//! rejection, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tarem_fuzz::now_from;
use tarem_shared::finding::finding_from_event;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let now = now_from(1_793_700_000_000);
    let _ = finding_from_event(&event, now, &Default::default());
    // The same event wrapped the way a batch or a DLQ message can carry it.
    if let Some(detail) = event.get("detail") {
        let _ = finding_from_event(detail, now, &Default::default());
    }
});
