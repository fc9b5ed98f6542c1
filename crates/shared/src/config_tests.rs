//! `config`'s tests.

use super::*;

/// Everything the three functions read, from one set of settings.
#[derive(Debug, PartialEq)]
struct Everything {
    lifecycle: LifecycleConfig,
    rules: TrackingRules,
    all_checks: bool,
    cache: Duration,
    sweep_after: Duration,
}

fn everything(pairs: &[(&str, &str)]) -> Result<Everything, ConfigError> {
    let mut all = vec![
        ("ALLOWED_AUTOMATION_DOCUMENTS", "AWS-X"),
        ("GOVERNED_ACCOUNTS", "111122223333"),
    ];
    all.extend_from_slice(pairs);
    let settings = Settings::from_pairs(all.iter().map(|(n, v)| (*n, *v)))?;
    Ok(Everything {
        lifecycle: settings.lifecycle(settings.safety()?)?,
        rules: settings.tracking_rules()?,
        all_checks: settings.reconcile_all_checks()?,
        cache: settings.mapping_cache()?,
        sweep_after: settings.execution_sweep_after()?,
    })
}

#[test]
fn each_documented_default_is_the_functions_own() {
    let defaults = everything(&[]).unwrap();
    for tuned in TUNING {
        let tuning = format!("{}={}", tuned.name, tuned.default);
        assert_eq!(
            everything(&[("TUNING", &tuning)]).unwrap(),
            defaults,
            "{}: its documented default {} is not what the functions use",
            tuned.name,
            tuned.default
        );
    }
}

#[test]
fn each_tuning_setting_changes_what_the_functions_do() {
    let defaults = everything(&[]).unwrap();
    let other = |default: &str| -> String {
        match default {
            "all" => "red".into(),
            "verified" => "success".into(),
            "mapped" => "all".into(),
            number => number
                .parse::<i64>()
                .map(|n| (n + 1).to_string())
                .unwrap_or_default(),
        }
    };
    for tuned in TUNING {
        let tuning = format!("{}={}", tuned.name, other(tuned.default));
        assert_ne!(
            everything(&[("TUNING", &tuning)]).unwrap(),
            defaults,
            "{} is read by nothing",
            tuned.name
        );
    }
}

#[test]
fn tuning_is_read_and_its_mistakes_are_named() {
    let tuned = everything(&[("TUNING", " MaxAttempts = 2 , coolDownMinutes=60 ")]).unwrap();
    assert_eq!(tuned.lifecycle.safety.max_attempts, 2);
    assert_eq!(tuned.lifecycle.safety.cool_down, Duration::minutes(60));
    // The variable of its own name wins (a binary run locally).
    let local = everything(&[("TUNING", "MaxAttempts=2"), ("MAX_ATTEMPTS", "5")]).unwrap();
    assert_eq!(local.lifecycle.safety.max_attempts, 5);

    let typo = everything(&[("TUNING", "MaxAttemps=2")]).unwrap_err();
    assert!(
        typo.to_string()
            .contains("\"MaxAttemps\" is not a setting; did you mean MaxAttempts?"),
        "{typo}"
    );
    let twice = everything(&[("TUNING", "MaxAttempts=2,maxattempts=3")]).unwrap_err();
    assert!(
        twice.to_string().contains("MaxAttempts is given twice"),
        "{twice}"
    );
    let shapeless = everything(&[("TUNING", "MaxAttempts")]).unwrap_err();
    assert!(
        shapeless.to_string().contains("is not NAME=VALUE"),
        "{shapeless}"
    );
    let bad = everything(&[("TUNING", "MaxAttempts=zero")]).unwrap_err();
    assert_eq!(
        bad.to_string(),
        "MAX_ATTEMPTS=\"zero\" is not a positive whole number"
    );
}

#[test]
fn an_empty_document_allowlist_fails_closed() {
    let settings = Settings::from_pairs([("ALLOWED_AUTOMATION_DOCUMENTS", " , ")]).unwrap();
    assert_eq!(
        settings.safety().unwrap_err(),
        ConfigError::Missing("ALLOWED_AUTOMATION_DOCUMENTS")
    );
}

/// `all` is the default's name; `none`, its first name, means the same on a stack deployed
/// with it; anything else is refused rather than read as everyone.
#[test]
fn opt_in_all_and_its_old_name_none_mean_every_resource() {
    for value in ["all", "none", "ALL"] {
        let config = everything(&[("OPT_IN", value)]).unwrap();
        assert_eq!(config.lifecycle.safety.opt_in, OptIn::Everyone, "{value}");
    }
    let tagged = everything(&[("OPT_IN", "opt-in")]).unwrap();
    assert!(matches!(
        tagged.lifecycle.safety.opt_in,
        OptIn::Tagged { .. }
    ));
    let wrong = everything(&[("OPT_IN", "nobody")]).unwrap_err();
    assert!(
        wrong.to_string().contains("all, opt-in or opt-out"),
        "{wrong}"
    );
}
