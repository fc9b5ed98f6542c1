//! The template's failure paths are wired, not just present (issue: "Nothing lost").
//!
//! Reads `template.yaml`, turns CloudFormation's short-form tags (`!Ref`, `!GetAtt`, `!Sub`, ...)
//! into their long form, and checks that everything that can fail ends in a queue someone is
//! alarmed about:
//! - every EventBridge rule target has a retry policy and a dead-letter queue that exists and whose
//!   queue policy lets EventBridge write to it for that very rule;
//! - every Lambda rule target has the permission EventBridge needs to invoke it for that rule;
//! - every asynchronously invoked function retries at most twice, then goes to an existing queue;
//! - the results handler's stream mapping reports partial batch failures, bisects, retries a
//!   finite number of times, gives up on old records, sends failures to an existing queue and
//!   filters on `resourceStatus`;
//! - every queue is encrypted and has a depth alarm on its own `QueueName`;
//! - every alarm notifies the alarm topic and watches a metric something emits; the dashboard
//!   draws only emitted metrics; the README says what to do for each alarm and lists each metric.
//!
//! `wiring_problems` returns what is missing, one sentence each; the tests check that it finds
//! nothing in the real template and that it names the break in mutated copies.
//!
//! Long on purpose: a template checker (YAML short forms to long form, then each failure path
//! wired end to end) with the broken templates that prove each check can fail.

use serde_json::{Map, Value, json};
use tarem_e2e::template::*;

// ------------------------------------------------------------------ the template

const QUEUE: &str = "AWS::SQS::Queue";
const SAM_FUNCTION: &str = "AWS::Serverless::Function";
const LAMBDA_FUNCTION: &str = "AWS::Lambda::Function";
/// The function that consumes the tracker table's stream.
const RESULTS_HANDLER: &str = "ResultsHandlerFunction";
/// SAM event source types through which Lambda invokes the function asynchronously.
const ASYNC_EVENT_TYPES: &[&str] = &[
    "EventBridgeRule",
    "CloudWatchEvent",
    "Schedule",
    "ScheduleV2",
    "SNS",
    "S3",
    "CloudWatchLogs",
    "IoTRule",
];
/// SAM event source types that create an EventBridge rule targeting the function.
const SAM_RULE_EVENT_TYPES: &[&str] = &["EventBridgeRule", "CloudWatchEvent", "Schedule"];

struct Template<'a> {
    root: &'a Value,
    resources: &'a Map<String, Value>,
}

impl<'a> Template<'a> {
    fn type_of(&self, name: &str) -> Option<&'a str> {
        self.resources.get(name)?.get("Type")?.as_str()
    }

    fn of_type(&self, ty: &str) -> Vec<(&'a str, &'a Value)> {
        self.resources
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
            .map(|(name, r)| (name.as_str(), props(r)))
            .collect()
    }

    fn is_function(&self, name: &str) -> bool {
        matches!(self.type_of(name), Some(SAM_FUNCTION | LAMBDA_FUNCTION))
    }

    /// The queue an ARN value points at: `!GetAtt Queue.Arn` of a queue in this template.
    fn queue_of_arn(&self, arn: &Value) -> Result<&'a str, String> {
        let Some((name, attribute)) = get_att(arn) else {
            return Err(format!(
                "is {}, not !GetAtt <Queue>.Arn of a queue in this template",
                short(arn)
            ));
        };
        if attribute != "Arn" {
            return Err(format!(
                "is !GetAtt {name}.{attribute}, not the queue's Arn"
            ));
        }
        match self.resources.get_key_value(name) {
            Some((key, r)) if r.get("Type").and_then(Value::as_str) == Some(QUEUE) => {
                Ok(key.as_str())
            }
            Some(_) => Err(format!("points at {name}, which is not an {QUEUE}")),
            None => Err(format!(
                "points at {name}, which is not an {QUEUE} in the template (no such resource)"
            )),
        }
    }

    fn parameter(&self, name: &str) -> Option<&'a Value> {
        self.root.get("Parameters")?.get(name)
    }
}

fn props(resource: &Value) -> &Value {
    resource.get("Properties").unwrap_or(&Value::Null)
}

/// What is missing from the template's failure paths; empty when everything is wired.
fn wiring_problems(template: &Value) -> Vec<String> {
    let Some(resources) = template.get("Resources").and_then(Value::as_object) else {
        return vec!["the template has no Resources section".to_owned()];
    };
    let t = Template {
        root: template,
        resources,
    };
    let mut problems = Vec::new();
    let async_functions = check_rules(&t, &mut problems);
    check_async_functions(&t, &async_functions, &mut problems);
    check_stream_mappings(&t, &mut problems);
    check_queues(&t, &mut problems);
    problems
}

/// Rule targets: retry policy, dead-letter queue and its policy, Lambda permission. Returns the
/// functions EventBridge invokes (asynchronously) with the reason, for the async checks.
fn check_rules(t: &Template, problems: &mut Vec<String>) -> Vec<(String, String)> {
    let mut async_functions = Vec::new();
    let rules = t.of_type("AWS::Events::Rule");
    if rules.is_empty() {
        problems
            .push("no AWS::Events::Rule in the template: the EventBridge paths are gone".into());
    }
    for (rule, properties) in rules {
        let targets = properties
            .get("Targets")
            .and_then(Value::as_array)
            .filter(|targets| !targets.is_empty());
        let Some(targets) = targets else {
            problems.push(format!("{rule}: no Targets"));
            continue;
        };
        for (index, target) in targets.iter().enumerate() {
            let id = target
                .get("Id")
                .and_then(Value::as_str)
                .map_or_else(|| format!("#{index}"), str::to_owned);
            let who = format!("{rule} target {id}");
            check_retry_policy(&who, target.get("RetryPolicy"), problems);
            match target.pointer("/DeadLetterConfig/Arn") {
                None => problems.push(format!(
                    "{who}: no DeadLetterConfig.Arn; an event that exhausts its retries or cannot \
                     be delivered is dropped"
                )),
                Some(arn) => match t.queue_of_arn(arn) {
                    Err(e) => problems.push(format!("{who}: DeadLetterConfig.Arn {e}")),
                    Ok(queue) => {
                        check_dead_letter_queue_policy(t, &who, queue, rule, problems);
                        check_queue_key_usable_by_eventbridge(t, &who, queue, problems);
                    }
                },
            }
            let function = target
                .get("Arn")
                .and_then(get_att)
                .filter(|(name, attribute)| *attribute == "Arn" && t.is_function(name))
                .map(|(name, _)| name);
            if let Some(function) = function {
                check_lambda_permission(t, &who, function, rule, problems);
                async_functions.push((function.to_owned(), who.clone()));
            }
        }
    }
    // Rules SAM creates from a function's event sources carry their own policies.
    for (function, properties) in t.of_type(SAM_FUNCTION) {
        for (event, definition) in sam_events(properties) {
            let ty = definition.get("Type").and_then(Value::as_str).unwrap_or("");
            if !SAM_RULE_EVENT_TYPES.contains(&ty) {
                continue;
            }
            let who = format!("{function} event {event} ({ty})");
            let event_properties = props(definition);
            check_retry_policy(&who, event_properties.get("RetryPolicy"), problems);
            match event_properties.get("DeadLetterConfig") {
                None => problems.push(format!("{who}: no DeadLetterConfig")),
                Some(config) => match config.get("Arn") {
                    Some(arn) => {
                        if let Err(e) = t.queue_of_arn(arn) {
                            problems.push(format!("{who}: DeadLetterConfig.Arn {e}"));
                        }
                    }
                    None => problems.push(format!(
                        "{who}: DeadLetterConfig without Arn makes SAM create a queue this \
                         template does not alarm on; point it at a queue of the template"
                    )),
                },
            }
        }
    }
    async_functions
}

fn check_retry_policy(who: &str, policy: Option<&Value>, problems: &mut Vec<String>) {
    let Some(policy) = policy.filter(|p| p.is_object()) else {
        problems.push(format!(
            "{who}: no RetryPolicy (set MaximumRetryAttempts / MaximumEventAgeInSeconds)"
        ));
        return;
    };
    let attempts = policy.get("MaximumRetryAttempts");
    let age = policy.get("MaximumEventAgeInSeconds");
    if attempts.is_none() && age.is_none() {
        problems.push(format!(
            "{who}: RetryPolicy sets neither MaximumRetryAttempts nor MaximumEventAgeInSeconds"
        ));
    }
    if let Some(attempts) = attempts
        && !as_int(attempts).is_some_and(|n| (0..=185).contains(&n))
    {
        problems.push(format!(
            "{who}: RetryPolicy.MaximumRetryAttempts is {}, not 0..=185",
            short(attempts)
        ));
    }
    if let Some(age) = age
        && !as_int(age).is_some_and(|n| (60..=86_400).contains(&n))
    {
        problems.push(format!(
            "{who}: RetryPolicy.MaximumEventAgeInSeconds is {}, not 60..=86400",
            short(age)
        ));
    }
}

/// EventBridge writes dead letters with its service principal: the queue policy must allow
/// `events.amazonaws.com` to `sqs:SendMessage` to the queue, for this rule's ARN.
fn check_dead_letter_queue_policy(
    t: &Template,
    who: &str,
    queue: &str,
    rule: &str,
    problems: &mut Vec<String>,
) {
    let queue_ref = json!({ "Ref": queue });
    let policies: Vec<(&str, &Value)> = t
        .of_type("AWS::SQS::QueuePolicy")
        .into_iter()
        .filter(|(_, p)| {
            p.get("Queues")
                .is_some_and(|q| one_or_many(q).contains(&&queue_ref))
        })
        .collect();
    if policies.is_empty() {
        problems.push(format!(
            "{who}: dead-letter queue {queue} has no AWS::SQS::QueuePolicy (Queues: [!Ref \
             {queue}]), so EventBridge cannot write {rule}'s dead letters to it"
        ));
        return;
    }
    let allows = policies.iter().any(|(_, policy)| {
        policy
            .pointer("/PolicyDocument/Statement")
            .map(one_or_many)
            .unwrap_or_default()
            .into_iter()
            .any(|statement| statement_lets_rule_send(statement, queue, rule))
    });
    if !allows {
        let names: Vec<&str> = policies.iter().map(|(name, _)| *name).collect();
        problems.push(format!(
            "{who}: no statement of {} allows events.amazonaws.com sqs:SendMessage on \
             {queue} (Resource !GetAtt {queue}.Arn) with aws:SourceArn = !GetAtt {rule}.Arn; \
             EventBridge could not park {rule}'s failed events",
            names.join(", ")
        ));
    }
}

fn statement_lets_rule_send(statement: &Value, queue: &str, rule: &str) -> bool {
    let allow = statement.get("Effect").and_then(Value::as_str) == Some("Allow");
    let principal = statement
        .pointer("/Principal/Service")
        .map(one_or_many)
        .unwrap_or_default()
        .iter()
        .any(|s| s.as_str() == Some("events.amazonaws.com"));
    let action = statement
        .get("Action")
        .map(one_or_many)
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a.as_str())
        .any(|a| a.eq_ignore_ascii_case("sqs:SendMessage") || a == "sqs:*");
    let resource = statement
        .get("Resource")
        .map(one_or_many)
        .unwrap_or_default()
        .iter()
        .any(|r| is_get_att(r, queue, "Arn"));
    let conditioned = statement
        .get("Condition")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(operator, _)| {
            matches!(
                operator.as_str(),
                "ArnEquals" | "ArnLike" | "StringEquals" | "StringLike"
            )
        })
        .filter_map(|(_, keys)| keys.as_object())
        .flatten()
        .filter(|(key, _)| key.eq_ignore_ascii_case("aws:SourceArn"))
        .any(|(_, value)| {
            one_or_many(value)
                .iter()
                .flat_map(|v| branches(v))
                .any(|v| is_get_att(v, rule, "Arn"))
        });
    allow && principal && action && resource && conditioned
}

/// EventBridge cannot write to a queue encrypted with the AWS managed key `alias/aws/sqs`.
fn check_queue_key_usable_by_eventbridge(
    t: &Template,
    who: &str,
    queue: &str,
    problems: &mut Vec<String>,
) {
    let key = t
        .resources
        .get(queue)
        .map(props)
        .and_then(|p| p.get("KmsMasterKeyId"))
        .and_then(Value::as_str);
    if key == Some("alias/aws/sqs") {
        problems.push(format!(
            "{who}: dead-letter queue {queue} uses KmsMasterKeyId alias/aws/sqs, which \
             EventBridge cannot encrypt with; use SqsManagedSseEnabled or a customer managed key"
        ));
    }
}

fn check_lambda_permission(
    t: &Template,
    who: &str,
    function: &str,
    rule: &str,
    problems: &mut Vec<String>,
) {
    let permitted = t
        .of_type("AWS::Lambda::Permission")
        .into_iter()
        .any(|(_, p)| {
            let action = p.get("Action").and_then(Value::as_str) == Some("lambda:InvokeFunction");
            let principal =
                p.get("Principal").and_then(Value::as_str) == Some("events.amazonaws.com");
            let target = p.get("FunctionName").is_some_and(|name| {
                is_get_att(name, function, "Arn") || ref_to(name) == Some(function)
            });
            let source = p
                .get("SourceArn")
                .is_some_and(|arn| is_get_att(arn, rule, "Arn"));
            action && principal && target && source
        });
    if !permitted {
        problems.push(format!(
            "{who}: no AWS::Lambda::Permission lets events.amazonaws.com lambda:InvokeFunction \
             {function} with SourceArn !GetAtt {rule}.Arn; every delivery would fail"
        ));
    }
}

fn sam_events(function_properties: &Value) -> Vec<(&str, &Value)> {
    function_properties
        .get("Events")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, event)| (name.as_str(), event))
        .collect()
}

/// Functions invoked asynchronously: at most 2 retries, then an on-failure queue.
fn check_async_functions(
    t: &Template,
    rule_targets: &[(String, String)],
    problems: &mut Vec<String>,
) {
    let mut functions: Vec<(String, String)> = rule_targets.to_vec();
    for (function, properties) in t.of_type(SAM_FUNCTION) {
        for (event, definition) in sam_events(properties) {
            let ty = definition.get("Type").and_then(Value::as_str).unwrap_or("");
            if ASYNC_EVENT_TYPES.contains(&ty) {
                functions.push((function.to_owned(), format!("its {ty} event {event}")));
            }
        }
    }
    functions.sort();
    functions.dedup_by(|a, b| a.0 == b.0);
    for (function, reason) in functions {
        let who = format!("{function} (invoked asynchronously by {reason})");
        let (config, sam) = match t.type_of(&function) {
            Some(SAM_FUNCTION) => {
                let own = t
                    .resources
                    .get(&function)
                    .map(props)
                    .and_then(|p| p.get("EventInvokeConfig"));
                let global = t.root.pointer("/Globals/Function/EventInvokeConfig");
                (own.or(global), true)
            }
            _ => {
                let config = t
                    .of_type("AWS::Lambda::EventInvokeConfig")
                    .into_iter()
                    .find(|(_, p)| {
                        p.get("FunctionName").and_then(ref_to) == Some(function.as_str())
                    })
                    .map(|(_, p)| p);
                (config, false)
            }
        };
        let Some(config) = config else {
            problems.push(format!(
                "{who}: no EventInvokeConfig; Lambda would retry twice and then drop the event"
            ));
            continue;
        };
        match config.get("MaximumRetryAttempts") {
            None => problems.push(format!(
                "{who}: EventInvokeConfig.MaximumRetryAttempts is not set (set it, 0..=2)"
            )),
            Some(n) if !as_int(n).is_some_and(|n| (0..=2).contains(&n)) => problems.push(format!(
                "{who}: EventInvokeConfig.MaximumRetryAttempts is {}, not 0..=2",
                short(n)
            )),
            Some(_) => {}
        }
        let Some(on_failure) = config.pointer("/DestinationConfig/OnFailure") else {
            problems.push(format!(
                "{who}: no EventInvokeConfig.DestinationConfig.OnFailure; an event that fails \
                 every attempt is dropped"
            ));
            continue;
        };
        if sam {
            let ty = on_failure.get("Type");
            if ty.and_then(Value::as_str) != Some("SQS") {
                problems.push(format!(
                    "{who}: EventInvokeConfig.DestinationConfig.OnFailure.Type is {}, not SQS \
                     (SAM grants sqs:SendMessage on the destination only for Type SQS)",
                    ty.map_or_else(|| "missing".to_owned(), short)
                ));
            }
        }
        match on_failure.get("Destination") {
            None => problems.push(format!(
                "{who}: EventInvokeConfig.DestinationConfig.OnFailure has no Destination"
            )),
            Some(destination) => {
                if let Err(e) = t.queue_of_arn(destination) {
                    problems.push(format!(
                        "{who}: EventInvokeConfig.DestinationConfig.OnFailure.Destination {e}"
                    ));
                }
            }
        }
    }
}

/// Stream event sources: partial batch failures, bisect, finite retries, a record age limit and
/// an on-failure queue; the results handler's also filters on `resourceStatus`.
fn check_stream_mappings(t: &Template, problems: &mut Vec<String>) {
    // (label, function, properties, defined through SAM)
    let mut mappings: Vec<(String, String, &Value, bool)> = Vec::new();
    for (function, properties) in t.of_type(SAM_FUNCTION) {
        for (event, definition) in sam_events(properties) {
            let ty = definition.get("Type").and_then(Value::as_str).unwrap_or("");
            if matches!(ty, "DynamoDB" | "Kinesis") {
                let label = format!("{function} event {event} ({ty} stream)");
                mappings.push((label, function.to_owned(), props(definition), true));
            }
        }
    }
    for (name, properties) in t.of_type("AWS::Lambda::EventSourceMapping") {
        let stream = properties
            .get("EventSourceArn")
            .and_then(get_att)
            .is_some_and(|(_, attribute)| attribute == "StreamArn" || attribute == "Arn")
            && properties.get("StartingPosition").is_some();
        if stream {
            let function = properties
                .get("FunctionName")
                .and_then(|f| ref_to(f).or_else(|| get_att(f).map(|(name, _)| name)))
                .unwrap_or("?");
            mappings.push((name.to_owned(), function.to_owned(), properties, false));
        }
    }

    if !mappings
        .iter()
        .any(|(_, function, _, _)| function == RESULTS_HANDLER)
    {
        problems.push(format!(
            "{RESULTS_HANDLER}: no DynamoDB stream event source; the tracker table's stream is \
             not consumed"
        ));
    }

    for (who, function, p, sam) in mappings {
        let response_types = p
            .get("FunctionResponseTypes")
            .map(one_or_many)
            .unwrap_or_default();
        if !response_types
            .iter()
            .any(|v| v.as_str() == Some("ReportBatchItemFailures"))
        {
            problems.push(format!(
                "{who}: FunctionResponseTypes lacks ReportBatchItemFailures; one bad record \
                 fails and retries its whole batch"
            ));
        }
        if p.get("BisectBatchOnFunctionError").and_then(as_bool) != Some(true) {
            problems.push(format!(
                "{who}: BisectBatchOnFunctionError is not true; a failing batch is not split to \
                 isolate the bad record"
            ));
        }
        match p.get("MaximumRetryAttempts") {
            None => problems.push(format!(
                "{who}: MaximumRetryAttempts is not set; the default (-1) retries forever and \
                 blocks the shard"
            )),
            Some(n) if !as_int(n).is_some_and(|n| (0..=10_000).contains(&n)) => {
                problems.push(format!(
                    "{who}: MaximumRetryAttempts is {}; it must be finite, 0..=10000 (-1 \
                     retries forever and blocks the shard)",
                    short(n)
                ))
            }
            Some(_) => {}
        }
        match p.get("MaximumRecordAgeInSeconds") {
            None => problems.push(format!(
                "{who}: MaximumRecordAgeInSeconds is not set (the default -1 never gives up on \
                 an old record)"
            )),
            Some(n) if !as_int(n).is_some_and(|n| (60..=604_800).contains(&n)) => {
                problems.push(format!(
                    "{who}: MaximumRecordAgeInSeconds is {}, not 60..=604800",
                    short(n)
                ))
            }
            Some(_) => {}
        }
        match p.pointer("/DestinationConfig/OnFailure") {
            None => problems.push(format!(
                "{who}: no DestinationConfig.OnFailure; records given up on are lost"
            )),
            Some(on_failure) => {
                if sam && on_failure.get("Type").and_then(Value::as_str) != Some("SQS") {
                    problems.push(format!(
                        "{who}: DestinationConfig.OnFailure.Type is not SQS (SAM grants \
                         sqs:SendMessage on the destination only for Type SQS)"
                    ));
                }
                match on_failure.get("Destination") {
                    None => problems.push(format!(
                        "{who}: DestinationConfig.OnFailure has no Destination"
                    )),
                    Some(destination) => {
                        if let Err(e) = t.queue_of_arn(destination) {
                            problems.push(format!(
                                "{who}: DestinationConfig.OnFailure.Destination {e}"
                            ));
                        }
                    }
                }
            }
        }
        if function == RESULTS_HANDLER {
            check_results_handler_stream(t, &who, p, sam, problems);
        }
    }
}

fn check_results_handler_stream(
    t: &Template,
    who: &str,
    p: &Value,
    sam: bool,
    problems: &mut Vec<String>,
) {
    let source = if sam {
        p.get("Stream")
    } else {
        p.get("EventSourceArn")
    };
    let table = source
        .and_then(get_att)
        .filter(|(_, attribute)| *attribute == "StreamArn")
        .map(|(table, _)| table)
        .filter(|table| t.type_of(table) == Some("AWS::DynamoDB::Table"));
    match table {
        None => problems.push(format!(
            "{who}: the stream is {}, not !GetAtt <Table>.StreamArn of a DynamoDB table in the \
             template",
            source.map_or_else(|| "missing".to_owned(), short)
        )),
        Some(table) => {
            let has_stream = t
                .resources
                .get(table)
                .map(props)
                .and_then(|p| p.pointer("/StreamSpecification/StreamViewType"))
                .is_some();
            if !has_stream {
                problems.push(format!(
                    "{who}: reads the stream of {table}, which has no StreamSpecification"
                ));
            }
        }
    }

    let filters = p
        .pointer("/FilterCriteria/Filters")
        .and_then(Value::as_array);
    let Some(filters) = filters.filter(|f| !f.is_empty()) else {
        problems.push(format!(
            "{who}: no FilterCriteria.Filters; every tracker change (including removals) \
             invokes the handler instead of only rows with a resourceStatus"
        ));
        return;
    };
    for (index, filter) in filters.iter().enumerate() {
        let Some(pattern) = filter.get("Pattern").and_then(Value::as_str) else {
            problems.push(format!(
                "{who}: FilterCriteria.Filters[{index}].Pattern is not a JSON string"
            ));
            continue;
        };
        match serde_json::from_str::<Value>(pattern) {
            Err(e) => problems.push(format!(
                "{who}: FilterCriteria.Filters[{index}].Pattern is not valid JSON ({e}): {pattern}"
            )),
            Ok(parsed) => {
                if parsed
                    .pointer("/dynamodb/NewImage/resourceStatus")
                    .is_none()
                {
                    problems.push(format!(
                        "{who}: FilterCriteria.Filters[{index}].Pattern does not filter on \
                         dynamodb.NewImage.resourceStatus (filters are ORed, so it lets any \
                         record through): {pattern}"
                    ));
                }
            }
        }
    }
}

/// Every queue: encrypted, and a depth alarm on its own QueueName that fires on one message.
fn check_queues(t: &Template, problems: &mut Vec<String>) {
    let queues = t.of_type(QUEUE);
    if queues.is_empty() {
        problems.push(format!(
            "no {QUEUE} in the template: the failure queues are gone"
        ));
    }
    let alarms = t.of_type("AWS::CloudWatch::Alarm");
    let topic_parameter = t.parameter("AlarmTopicArn").is_some();
    for (queue, properties) in queues {
        let sse = properties.get("SqsManagedSseEnabled").and_then(as_bool) == Some(true);
        let kms = properties
            .get("KmsMasterKeyId")
            .is_some_and(|k| !k.is_null());
        if !sse && !kms {
            problems.push(format!(
                "{queue}: not encrypted at rest (set SqsManagedSseEnabled: true or KmsMasterKeyId)"
            ));
        }

        let queue_name = json!({ "Fn::GetAtt": [queue, "QueueName"] });
        let on_queue: Vec<(&str, &Value)> = alarms
            .iter()
            .copied()
            .filter(|(_, a)| {
                a.get("Namespace").and_then(Value::as_str) == Some("AWS/SQS")
                    && a.get("MetricName").and_then(Value::as_str)
                        == Some("ApproximateNumberOfMessagesVisible")
                    && a.get("Dimensions")
                        .map(one_or_many)
                        .unwrap_or_default()
                        .iter()
                        .any(|d| {
                            d.get("Name").and_then(Value::as_str) == Some("QueueName")
                                && d.get("Value") == Some(&queue_name)
                        })
            })
            .collect();
        if on_queue.is_empty() {
            problems.push(format!(
                "{queue}: no AWS::CloudWatch::Alarm on AWS/SQS ApproximateNumberOfMessagesVisible \
                 with dimension QueueName = !GetAtt {queue}.QueueName; messages parked there go \
                 unnoticed"
            ));
        }
        for (alarm, a) in on_queue {
            let who = format!("{alarm} (depth alarm of {queue})");
            let dimensions = a.get("Dimensions").map(one_or_many).unwrap_or_default();
            if dimensions.len() != 1 {
                problems.push(format!(
                    "{who}: {} dimensions; SQS metrics have QueueName only, so it matches no \
                     data",
                    dimensions.len()
                ));
            }
            let operator = a.get("ComparisonOperator").and_then(Value::as_str);
            let threshold = a.get("Threshold").and_then(as_float);
            let fires_on_one = match (operator, threshold) {
                (Some("GreaterThanThreshold"), Some(x)) => x < 1.0,
                (Some("GreaterThanOrEqualToThreshold"), Some(x)) => x <= 1.0,
                _ => false,
            };
            if !fires_on_one {
                problems.push(format!(
                    "{who}: ComparisonOperator {} with Threshold {} does not fire on a single \
                     visible message (want GreaterThanThreshold 0)",
                    operator.unwrap_or("missing"),
                    a.get("Threshold")
                        .map_or_else(|| "missing".to_owned(), short)
                ));
            }
            let periods = a.get("EvaluationPeriods").and_then(as_int);
            if periods.is_none_or(|n| n < 1) {
                problems.push(format!(
                    "{who}: EvaluationPeriods is not a positive integer"
                ));
            }
            if topic_parameter
                && !a
                    .get("AlarmActions")
                    .is_some_and(|actions| mentions(actions, &json!({ "Ref": "AlarmTopicArn" })))
            {
                problems.push(format!(
                    "{who}: AlarmActions does not notify !Ref AlarmTopicArn"
                ));
            }
        }
    }
}

// ------------------------------------------------------------------ tests

fn assert_no_problems(template: &Value) {
    let problems = wiring_problems(template);
    assert!(
        problems.is_empty(),
        "template.yaml failure paths are not wired:\n- {}",
        problems.join("\n- ")
    );
}

#[test]
fn the_template_wires_every_failure_path() {
    let template = load_template();
    assert_no_problems(&template);

    // The checks above really looked at something: the three failure queues, each alarmed.
    let t = Template {
        root: &template,
        resources: template["Resources"].as_object().expect("Resources"),
    };
    let mut queues: Vec<&str> = t.of_type(QUEUE).into_iter().map(|(name, _)| name).collect();
    queues.sort_unstable();
    assert_eq!(
        queues,
        [
            "CheckTrackerDeadLetterQueue",
            "ExecutionEventsDeadLetterQueue",
            "RawEventLogDeadLetterQueue",
            "TrackerStreamFailureQueue"
        ],
        "the template's queues changed; update this test and the alarms"
    );
    // The queue alarms' names are outputs (an operator goes from the alarm to its queue and
    // `tarem dlq replay`); the others arrive on the alarm topic and the dashboard.
    for (alarm, _) in t
        .of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|(_, p)| p["MetricName"] == "ApproximateNumberOfMessagesVisible")
    {
        let output = template["Outputs"]
            .as_object()
            .expect("Outputs")
            .values()
            .any(|o| ref_to(&o["Value"]) == Some(alarm));
        assert!(
            output,
            "{alarm}: no output gives its name (Value: !Ref {alarm})"
        );
    }
}

#[test]
fn short_form_tags_become_long_form() {
    let text = r#"
A: !Ref X
B: !GetAtt Q.Arn
C: !GetAtt [Q, QueueName]
D: !If [Cond, [!Ref T], !Ref AWS::NoValue]
E: !Sub "arn:${AWS::Partition}:sqs:${AWS::Region}"
F: !Join [",", !Split [";", !Ref L]]
G: !Not [!Equals [!Ref P, ""]]
H: !Condition C
I: !GetAtt Stack.Outputs.Name
J: { "Fn::GetAtt": [Q, Arn] }
K: [1, "2", true, 1.5]
"#;
    let parsed = parse_template(text).expect("parses");
    assert_eq!(
        parsed,
        json!({
            "A": { "Ref": "X" },
            "B": { "Fn::GetAtt": ["Q", "Arn"] },
            "C": { "Fn::GetAtt": ["Q", "QueueName"] },
            "D": { "Fn::If": ["Cond", [{ "Ref": "T" }], { "Ref": "AWS::NoValue" }] },
            "E": { "Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}" },
            "F": { "Fn::Join": [",", { "Fn::Split": [";", { "Ref": "L" }] }] },
            "G": { "Fn::Not": [{ "Fn::Equals": [{ "Ref": "P" }, ""] }] },
            "H": { "Condition": "C" },
            "I": { "Fn::GetAtt": ["Stack", "Outputs.Name"] },
            "J": { "Fn::GetAtt": ["Q", "Arn"] },
            "K": [1, "2", true, 1.5],
        })
    );
    assert!(get_att(&parsed["B"]) == Some(("Q", "Arn")));
    assert!(get_att(&json!({ "Fn::GetAtt": "Q.Arn" })) == Some(("Q", "Arn")));

    let unknown = parse_template("A: !Reff X").expect_err("unknown tag");
    assert!(unknown.contains("!Reff"), "{unknown}");
    let bad_get_att = parse_template("A: !GetAtt NoDot").expect_err("GetAtt without a dot");
    assert!(bad_get_att.contains("NoDot"), "{bad_get_att}");
}

/// The JSON value at `pointer`, which must exist (so a renamed resource fails loudly here).
fn at<'a>(template: &'a mut Value, pointer: &str) -> &'a mut Value {
    template
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("the template has no {pointer}; update this test"))
}

/// Removes the key at `pointer` from its parent object (which must have it).
fn remove(template: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer with a parent");
    let removed = at(template, parent)
        .as_object_mut()
        .unwrap_or_else(|| panic!("{parent} is not an object"))
        .remove(key);
    assert!(
        removed.is_some(),
        "the template has no {pointer}; update this test"
    );
}

const TA_RULE_TARGET: &str = "/Resources/TrustedAdvisorEventRule/Properties/Targets/0";
const STATUS_RULE_TARGET: &str = "/Resources/AutomationStatusEventRule/Properties/Targets/0";
const STREAM: &str = "/Resources/ResultsHandlerFunctionTrackerStream/Properties";

struct Break {
    what: &'static str,
    apply: fn(&mut Value),
    /// Every one of these must appear in one reported problem.
    expect: &'static [&'static str],
}

const BREAKS: &[Break] = &[
    Break {
        what: "rule target without a DLQ",
        apply: |t| remove(t, &format!("{TA_RULE_TARGET}/DeadLetterConfig")),
        expect: &[
            "TrustedAdvisorEventRule target CheckTracker",
            "no DeadLetterConfig.Arn",
        ],
    },
    Break {
        what: "rule target without a retry policy",
        apply: |t| remove(t, &format!("{STATUS_RULE_TARGET}/RetryPolicy")),
        expect: &[
            "AutomationStatusEventRule target AutomationExecutionHandler",
            "no RetryPolicy",
        ],
    },
    Break {
        what: "the DLQ a rule target points at is deleted",
        apply: |t| {
            remove(t, "/Resources/CheckTrackerDeadLetterQueue");
        },
        expect: &[
            "TrustedAdvisorEventRule target CheckTracker",
            "DeadLetterConfig.Arn points at CheckTrackerDeadLetterQueue, which is not an AWS::SQS::Queue",
        ],
    },
    Break {
        what: "a rule target's DLQ is a hard-coded ARN",
        apply: |t| {
            *at(t, &format!("{STATUS_RULE_TARGET}/DeadLetterConfig/Arn")) =
                json!("arn:aws:sqs:us-east-1:123456789012:elsewhere");
        },
        expect: &[
            "AutomationStatusEventRule target AutomationExecutionHandler",
            "not !GetAtt <Queue>.Arn",
        ],
    },
    Break {
        what: "the DLQ's policy allows another rule",
        apply: |t| {
            *at(
                t,
                "/Resources/CheckTrackerDeadLetterQueuePolicy/Properties/PolicyDocument/Statement/0/Condition/ArnEquals/aws:SourceArn",
            ) = json!({ "Fn::GetAtt": ["AutomationStatusEventRule", "Arn"] });
        },
        expect: &[
            "CheckTrackerDeadLetterQueue",
            "aws:SourceArn = !GetAtt TrustedAdvisorEventRule.Arn",
        ],
    },
    Break {
        what: "the DLQ's queue policy is deleted",
        apply: |t| remove(t, "/Resources/ExecutionEventsDeadLetterQueuePolicy"),
        expect: &["ExecutionEventsDeadLetterQueue has no AWS::SQS::QueuePolicy"],
    },
    Break {
        what: "the Lambda permission of a rule is deleted",
        apply: |t| remove(t, "/Resources/TrustedAdvisorEventRulePermission"),
        expect: &[
            "TrustedAdvisorEventRule target CheckTracker",
            "AWS::Lambda::Permission",
            "CheckTrackerFunction",
        ],
    },
    Break {
        what: "the Lambda permission names the wrong rule",
        apply: |t| {
            *at(
                t,
                "/Resources/AutomationStatusEventRulePermission/Properties/SourceArn",
            ) = json!({ "Fn::GetAtt": ["TrustedAdvisorEventRule", "Arn"] });
        },
        expect: &[
            "AutomationExecutionHandlerFunction",
            "SourceArn !GetAtt AutomationStatusEventRule.Arn",
        ],
    },
    Break {
        what: "async retries above 2",
        apply: |t| {
            *at(
                t,
                "/Resources/CheckTrackerFunction/Properties/EventInvokeConfig/MaximumRetryAttempts",
            ) = json!(3);
        },
        expect: &[
            "CheckTrackerFunction (invoked asynchronously",
            "MaximumRetryAttempts is 3",
        ],
    },
    Break {
        what: "no async on-failure destination",
        apply: |t| {
            remove(
                t,
                "/Resources/AutomationExecutionHandlerFunction/Properties/EventInvokeConfig/DestinationConfig",
            )
        },
        expect: &[
            "AutomationExecutionHandlerFunction",
            "no EventInvokeConfig.DestinationConfig.OnFailure",
        ],
    },
    Break {
        what: "no EventInvokeConfig at all",
        apply: |t| {
            remove(
                t,
                "/Resources/CheckTrackerFunction/Properties/EventInvokeConfig",
            )
        },
        expect: &["CheckTrackerFunction", "no EventInvokeConfig"],
    },
    Break {
        what: "async on-failure destination of type SNS",
        apply: |t| {
            *at(
                t,
                "/Resources/CheckTrackerFunction/Properties/EventInvokeConfig/DestinationConfig/OnFailure/Type",
            ) = json!("SNS");
        },
        expect: &["CheckTrackerFunction", "OnFailure.Type is \"SNS\", not SQS"],
    },
    Break {
        what: "stream retries forever",
        apply: |t| *at(t, &format!("{STREAM}/MaximumRetryAttempts")) = json!(-1),
        expect: &[
            "ResultsHandlerFunctionTrackerStream",
            "MaximumRetryAttempts is -1",
        ],
    },
    Break {
        what: "stream retries left at the default",
        apply: |t| remove(t, &format!("{STREAM}/MaximumRetryAttempts")),
        expect: &[
            "ResultsHandlerFunctionTrackerStream",
            "MaximumRetryAttempts is not set",
        ],
    },
    Break {
        what: "no partial batch responses",
        apply: |t| *at(t, &format!("{STREAM}/FunctionResponseTypes")) = json!([]),
        expect: &[
            "ResultsHandlerFunctionTrackerStream",
            "ReportBatchItemFailures",
        ],
    },
    Break {
        what: "no bisect",
        apply: |t| *at(t, &format!("{STREAM}/BisectBatchOnFunctionError")) = json!(false),
        expect: &[
            "ResultsHandlerFunctionTrackerStream",
            "BisectBatchOnFunctionError is not true",
        ],
    },
    Break {
        what: "no record age limit",
        apply: |t| remove(t, &format!("{STREAM}/MaximumRecordAgeInSeconds")),
        expect: &[
            "ResultsHandlerFunctionTrackerStream",
            "MaximumRecordAgeInSeconds is not set",
        ],
    },
    Break {
        what: "no stream on-failure queue",
        apply: |t| remove(t, &format!("{STREAM}/DestinationConfig")),
        expect: &[
            "ResultsHandlerFunctionTrackerStream",
            "no DestinationConfig.OnFailure",
        ],
    },
    Break {
        what: "stream on-failure destination is not a queue",
        apply: |t| {
            *at(
                t,
                &format!("{STREAM}/DestinationConfig/OnFailure/Destination"),
            ) = json!({ "Fn::GetAtt": ["TrackerTable", "Arn"] });
        },
        expect: &[
            "TrackerStream",
            "points at TrackerTable, which is not an AWS::SQS::Queue",
        ],
    },
    Break {
        what: "filter pattern not JSON",
        apply: |t| {
            *at(t, &format!("{STREAM}/FilterCriteria/Filters/0/Pattern")) = json!("{not json")
        },
        expect: &["TrackerStream", "Filters[0].Pattern is not valid JSON"],
    },
    Break {
        what: "filter on another attribute",
        apply: |t| {
            *at(t, &format!("{STREAM}/FilterCriteria/Filters/0/Pattern")) =
                json!(r#"{"dynamodb":{"NewImage":{"checkName":{"S":["x"]}}}}"#);
        },
        expect: &[
            "TrackerStream",
            "does not filter on dynamodb.NewImage.resourceStatus",
        ],
    },
    Break {
        what: "no filter",
        apply: |t| remove(t, &format!("{STREAM}/FilterCriteria")),
        expect: &["TrackerStream", "no FilterCriteria.Filters"],
    },
    Break {
        what: "the stream mapping is gone",
        apply: |t| remove(t, "/Resources/ResultsHandlerFunctionTrackerStream"),
        expect: &["ResultsHandlerFunction: no DynamoDB stream event source"],
    },
    Break {
        what: "a queue's alarm is dropped",
        apply: |t| remove(t, "/Resources/TrackerStreamFailureQueueDepthAlarm"),
        expect: &[
            "TrackerStreamFailureQueue: no AWS::CloudWatch::Alarm",
            "ApproximateNumberOfMessagesVisible",
        ],
    },
    Break {
        what: "an alarm watches another queue",
        apply: |t| {
            *at(
                t,
                "/Resources/ExecutionEventsDeadLetterQueueDepthAlarm/Properties/Dimensions/0/Value",
            ) = json!({ "Fn::GetAtt": ["CheckTrackerDeadLetterQueue", "QueueName"] });
        },
        expect: &["ExecutionEventsDeadLetterQueue: no AWS::CloudWatch::Alarm"],
    },
    Break {
        what: "an alarm watches another metric",
        apply: |t| {
            *at(
                t,
                "/Resources/CheckTrackerDeadLetterQueueDepthAlarm/Properties/MetricName",
            ) = json!("NumberOfMessagesSent");
        },
        expect: &["CheckTrackerDeadLetterQueue: no AWS::CloudWatch::Alarm"],
    },
    Break {
        what: "an alarm that needs five messages",
        apply: |t| {
            *at(
                t,
                "/Resources/CheckTrackerDeadLetterQueueDepthAlarm/Properties/Threshold",
            ) = json!(5);
        },
        expect: &[
            "CheckTrackerDeadLetterQueueDepthAlarm",
            "does not fire on a single visible message",
        ],
    },
    Break {
        what: "an alarm that notifies nobody",
        apply: |t| {
            remove(
                t,
                "/Resources/TrackerStreamFailureQueueDepthAlarm/Properties/AlarmActions",
            )
        },
        expect: &[
            "TrackerStreamFailureQueueDepthAlarm",
            "does not notify !Ref AlarmTopicArn",
        ],
    },
    Break {
        what: "an unencrypted queue",
        apply: |t| {
            *at(
                t,
                "/Resources/ExecutionEventsDeadLetterQueue/Properties/SqsManagedSseEnabled",
            ) = json!(false);
        },
        expect: &["ExecutionEventsDeadLetterQueue: not encrypted at rest"],
    },
    Break {
        what: "an EventBridge DLQ on the AWS managed key",
        apply: |t| {
            let queue = at(t, "/Resources/CheckTrackerDeadLetterQueue/Properties");
            queue["KmsMasterKeyId"] = json!("alias/aws/sqs");
            queue
                .as_object_mut()
                .expect("object")
                .remove("SqsManagedSseEnabled");
        },
        expect: &["CheckTrackerDeadLetterQueue uses KmsMasterKeyId alias/aws/sqs"],
    },
];

#[test]
fn each_broken_wire_is_reported_precisely() {
    let template = load_template();
    let mut failures = Vec::new();
    for case in BREAKS {
        let mut broken = template.clone();
        (case.apply)(&mut broken);
        let problems = wiring_problems(&broken);
        let named = problems
            .iter()
            .any(|problem| case.expect.iter().all(|part| problem.contains(part)));
        if !named {
            failures.push(format!(
                "{}: expected a problem containing {:?}, got:\n    - {}",
                case.what,
                case.expect,
                if problems.is_empty() {
                    "(none)".to_owned()
                } else {
                    problems.join("\n    - ")
                }
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_template_without_failure_paths_is_reported() {
    let problems = wiring_problems(&json!({ "Resources": {} }));
    for expected in [
        "no AWS::Events::Rule",
        "no AWS::SQS::Queue",
        "ResultsHandlerFunction: no DynamoDB stream event source",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "expected a problem containing {expected:?}, got {problems:#?}"
        );
    }
    assert_eq!(
        wiring_problems(&json!({})),
        ["the template has no Resources section"]
    );
}

// ------------------------------------------------------------------ alarms

/// Every alarm notifies the alarm topic (the stack's, or the one named), and every metric it
/// watches is one something emits: the functions' own (`tarem_shared::telemetry::METRICS`, in the
/// stack's namespace, dimension Stack) or an AWS metric of a resource of this template.
fn alarm_problems(template: &Value) -> Vec<String> {
    use tarem_shared::telemetry::METRICS;
    let topic =
        json!([{"Fn::If": ["HasAlarmTopic", {"Ref": "AlarmTopicArn"}, {"Ref": "AlarmTopic"}]}]);
    let resources = template["Resources"].as_object().unwrap();
    let aws_metrics: &[(&str, &[&str])] = &[
        (
            "AWS/SQS",
            &[
                "ApproximateNumberOfMessagesVisible",
                "ApproximateAgeOfOldestMessage",
            ],
        ),
        ("AWS/Lambda", &["Errors", "Throttles", "IteratorAge"]),
        ("AWS/Events", &["FailedInvocations", "InvocationsSentToDLQ"]),
    ];
    let mut problems = vec![];
    for (name, alarm) in resources {
        if alarm["Type"] != "AWS::CloudWatch::Alarm" {
            continue;
        }
        let p = &alarm["Properties"];
        if p["AlarmActions"] != topic {
            problems.push(format!("{name} does not notify the alarm topic"));
        }
        // The metrics it watches: one, or a metric-math alarm's MetricStats.
        let watched: Vec<(Value, Value, Vec<Value>)> =
            match p.get("Metrics").and_then(Value::as_array) {
                Some(math) => math
                    .iter()
                    .filter_map(|m| m.pointer("/MetricStat/Metric"))
                    .map(|m| {
                        (
                            m["Namespace"].clone(),
                            m["MetricName"].clone(),
                            one_or_many(&m["Dimensions"]).into_iter().cloned().collect(),
                        )
                    })
                    .collect(),
                None => vec![(
                    p["Namespace"].clone(),
                    p["MetricName"].clone(),
                    one_or_many(&p["Dimensions"]).into_iter().cloned().collect(),
                )],
            };
        if watched.is_empty() {
            problems.push(format!("{name} watches no metric"));
        }
        for (namespace, metric, dimensions) in watched {
            let metric = metric.as_str().unwrap_or_default();
            if ref_to(&namespace) == Some("MetricsNamespace") {
                if !METRICS.iter().any(|m| m.name == metric) {
                    problems.push(format!("{name} watches {metric}, which no function emits"));
                }
                let stack = dimensions.iter().any(|d| {
                    d["Name"] == "Stack" && d["Value"] == json!({"Ref": "AWS::StackName"})
                });
                if !stack {
                    problems.push(format!("{name} does not watch this stack's {metric}"));
                }
                continue;
            }
            let known = aws_metrics
                .iter()
                .any(|(ns, names)| namespace == *ns && names.contains(&metric));
            let of_this_stack = dimensions.iter().any(|d| {
                let value = &d["Value"];
                ref_to(value).is_some_and(|r| resources.contains_key(r))
                    || get_att(value).is_some_and(|(r, _)| resources.contains_key(r))
            });
            if !known || !of_this_stack {
                problems.push(format!(
                    "{name} watches {namespace} {metric}, not a metric of this stack"
                ));
            }
        }
    }
    problems
}

#[test]
fn every_alarm_watches_an_emitted_metric_and_reaches_someone() {
    let template = load_template();
    assert_eq!(alarm_problems(&template), Vec::<String>::new());
    let alarms = template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
        .count();
    assert!(alarms >= 15, "{alarms} alarms");
    for wanted in [
        "EscalatedEpisodesAlarm",
        "BreakerTrippedAlarm",
        "KillSwitchLeftOffAlarm",
        "ResultsHandlerIteratorAgeAlarm",
    ] {
        assert!(template["Resources"][wanted].is_object(), "no {wanted}");
    }
    // The stack's own topic is encrypted with a key CloudWatch may use.
    assert_eq!(
        template["Resources"]["AlarmTopic"]["Properties"]["KmsMasterKeyId"],
        json!({"Ref": "AlarmTopicKey"})
    );

    let mut broken = template.clone();
    broken["Resources"]["EscalatedEpisodesAlarm"]["Properties"]["MetricName"] =
        json!("EpisodesEscalate");
    broken["Resources"]["BreakerTrippedAlarm"]["Properties"]
        .as_object_mut()
        .unwrap()
        .remove("AlarmActions");
    assert_eq!(
        alarm_problems(&broken),
        [
            "EscalatedEpisodesAlarm watches EpisodesEscalate, which no function emits",
            "BreakerTrippedAlarm does not notify the alarm topic",
        ]
    );
}

fn readme() -> String {
    std::fs::read_to_string(template_path().with_file_name("README.md")).unwrap()
}

/// The functions' metrics a dashboard body names: `"${MetricsNamespace}", "<metric>"` in a
/// metric line, `MetricName=\"<metric>\"` in a SEARCH expression.
fn dashboard_metrics(body: &str) -> Vec<String> {
    let lines = body
        .split("\"${MetricsNamespace}\",")
        .skip(1)
        .filter_map(|rest| rest.split('"').nth(1));
    let searches = body
        .split("MetricName=\\\"")
        .skip(1)
        .filter_map(|rest| rest.split('\\').next());
    lines.chain(searches).map(str::to_owned).collect()
}

#[test]
fn the_dashboard_draws_emitted_metrics_and_the_readme_names_each_alarm_and_metric() {
    use tarem_shared::telemetry::METRICS;
    let template = load_template();
    let body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
        .as_str()
        .expect("the dashboard body is one !Sub string");
    let drawn = dashboard_metrics(body);
    let emitted: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
    for metric in &drawn {
        assert!(
            emitted.contains(&metric.as_str()),
            "the dashboard draws {metric}, which no function emits"
        );
    }
    for wanted in [
        "FindingsTracked",
        "EpisodesFixed",
        "AutomationsStarted",
        "TimeToFix",
        "StartsHeld",
    ] {
        assert!(
            drawn.iter().any(|m| m == wanted),
            "the dashboard lacks {wanted}"
        );
    }
    // Every `${…}` names a parameter, a resource (or its attribute) or a pseudo parameter;
    // substituted, the body is JSON.
    let mut substituted = String::new();
    let mut rest = body;
    while let Some(open) = rest.find("${") {
        let close = open + rest[open..].find('}').expect("a closed placeholder");
        let name = &rest[open + 2..close];
        let base = name.split('.').next().unwrap();
        assert!(
            name.starts_with("AWS::")
                || template["Parameters"].get(base).is_some()
                || template["Resources"].get(base).is_some(),
            "the dashboard names ${{{name}}}, which the template does not define"
        );
        substituted.push_str(&rest[..open]);
        substituted.push('x');
        rest = &rest[close + 1..];
    }
    substituted.push_str(rest);
    serde_json::from_str::<Value>(&substituted).expect("the dashboard body is JSON");

    let readme = readme();
    let documented: Vec<(String, String)> = table_after(&readme, "**The metrics**");
    let expected: Vec<(String, String)> = METRICS
        .iter()
        .map(|m| (m.name.to_owned(), m.unit.to_owned()))
        .collect();
    assert_eq!(documented, expected, "README, The metrics");

    let alarm_cells: Vec<String> = table_after(&readme, "**The alarms, and what to do**")
        .into_iter()
        .map(|(names, _)| names)
        .collect();
    let named: Vec<&str> = alarm_cells
        .iter()
        .flat_map(|cell| cell.split(',').map(|n| n.trim().trim_matches('`')))
        .collect();
    for (name, resource) in template["Resources"].as_object().unwrap() {
        if resource["Type"] == "AWS::CloudWatch::Alarm" {
            assert!(
                named.contains(&name.as_str()),
                "README does not say what to do for {name}"
            );
        }
    }
    for name in named {
        assert_eq!(
            template["Resources"][name]["Type"], "AWS::CloudWatch::Alarm",
            "README names {name}, which is not an alarm of the template"
        );
    }
}
