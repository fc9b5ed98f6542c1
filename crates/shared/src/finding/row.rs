//! A finding as a DynamoDB item: the tracker row, and its size as DynamoDB counts it.

use super::Finding;
use serde_dynamo::{AttributeValue, Item};

/// The tracker row for a finding. Serialising a plain struct of strings, numbers and a string map
/// cannot fail; the error arm exists only because serde's signature has one.
pub fn to_item(finding: &Finding) -> Item {
    serde_dynamo::to_item(finding).unwrap_or_else(|error| {
        tracing::error!(%error, "finding did not serialise to an item");
        Item::from(std::collections::HashMap::<String, AttributeValue>::new())
    })
}

/// DynamoDB's accounting of an item's size: attribute names plus values, numbers at most 21
/// bytes, maps and lists 3 bytes plus one per element.
pub fn item_size(finding: &Finding) -> usize {
    to_item(finding)
        .iter()
        .map(|(name, value)| name.len() + attribute_size(value))
        .sum()
}

fn attribute_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => (n.len() / 2 + 1).min(21),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::B(b) => b.len(),
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| (n.len() / 2 + 1).min(21)).sum(),
        AttributeValue::Bs(set) => set.iter().map(Vec::len).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + attribute_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + attribute_size(v))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{TrackingRules, finding_from_event, parse_time};

    fn reference(name: &str) -> serde_json::Value {
        let path = format!(
            "{}/../../tests/fixtures/reference/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn item_size_counts_names_and_values() {
        let event = reference("ta-config-sourced-security-group.json");
        let now = parse_time("2026-11-28T00:00:00Z").unwrap();
        let mut finding = finding_from_event(&event, now, &TrackingRules::default()).unwrap();
        let before = item_size(&finding);
        finding
            .check_item_detail
            .insert("Notes".into(), "x".repeat(1000));
        // name (5) + value (1000) + map element overhead (1).
        assert_eq!(item_size(&finding), before + 1006);
    }
}
