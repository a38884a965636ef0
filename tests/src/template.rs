//! Reads `template.yaml` and reports what would make the stack wrong: a
//! function that cannot be built, reads configuration its environment does not
//! set, or calls AWS without (or with more than) the permissions it needs; a
//! queue that redelivers before its consumer can finish; a bucket open to the
//! public or to plain HTTP.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use ocr_cli::functions::FunctionName;
use ocr_shared::aws::{
    BY_HASH_ATTRIBUTES, BY_SEARCH_ATTRIBUTES, INDEX_BY_HASH, INDEX_BY_OWNER, INDEX_BY_SEARCH,
    by_owner_attributes,
};
use ocr_shared::config::{ConfigError, Env, EnvSource, vars};
use serde_yaml_ng::Value;

pub const TEMPLATE: &str = include_str!("../../template.yaml");

/// Variables a function may read that the template never sets: local runs only.
pub const LOCAL_ONLY: &[&str] = &[vars::AWS_ENDPOINT_URL, vars::UPSTAGE_API_KEY];

/// Variables Lambda itself sets in every function's environment.
pub const SET_BY_LAMBDA: &[&str] = &[vars::AWS_LAMBDA_FUNCTION_NAME];

/// Each Lambda binary: how it loads its configuration, and the IAM actions it
/// calls. An S3 object action names the key prefix it is called on
/// (`s3:GetObject@uploads/*`); `s3:ListBucket` is on the bucket itself, as S3
/// checks it for a missing key; a DynamoDB action on an index names it
/// (`dynamodb:Query@index/by_hash`), one on the table names nothing.
pub struct FunctionSpec {
    pub binary: FunctionName,
    pub load: fn(&Env) -> Result<(), ConfigError>,
    pub actions: &'static [&'static str],
}

pub fn functions() -> Vec<FunctionSpec> {
    vec![
        FunctionSpec {
            binary: FunctionName::UploadApi,
            load: |env| upload_api::Config::from_env(env).map(|_| ()),
            actions: upload_api::IAM_ACTIONS,
        },
        FunctionSpec {
            binary: FunctionName::StatusApi,
            load: |env| status_api::Config::from_env(env).map(|_| ()),
            actions: status_api::IAM_ACTIONS,
        },
        FunctionSpec {
            binary: FunctionName::Ingest,
            load: |env| ingest::Config::from_env(env).map(|_| ()),
            actions: ingest::IAM_ACTIONS,
        },
        FunctionSpec {
            binary: FunctionName::OcrWorker,
            load: |env| ocr_worker::Config::from_env(env).map(|_| ()),
            actions: ocr_worker::IAM_ACTIONS,
        },
        FunctionSpec {
            binary: FunctionName::Sweeper,
            load: |env| sweeper::Config::from_env(env).map(|_| ()),
            actions: sweeper::IAM_ACTIONS,
        },
        FunctionSpec {
            binary: FunctionName::Notifier,
            load: |env| notifier::Config::from_env(env).map(|_| ()),
            actions: notifier::IAM_ACTIONS,
        },
    ]
}

pub fn parse(text: &str) -> Value {
    serde_yaml_ng::from_str(text).expect("template.yaml is YAML")
}

fn get<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |node, key| node.get(*key))
}

fn resources(template: &Value) -> Vec<(String, &Value)> {
    get(template, &["Resources"])
        .and_then(Value::as_mapping)
        .map(|resources| {
            resources
                .iter()
                .filter_map(|(name, body)| Some((name.as_str()?.to_owned(), body)))
                .collect()
        })
        .unwrap_or_default()
}

fn of_type<'a>(template: &'a Value, kind: &str) -> Vec<(String, &'a Value)> {
    resources(template)
        .into_iter()
        .filter(|(_, body)| get(body, &["Type"]).and_then(Value::as_str) == Some(kind))
        .collect()
}

/// `!Ref X`, `!GetAtt X.Arn` or `Fn::GetAtt: [X, Arn]`: the logical id referred to.
fn referent(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) => {
            let inner = tagged.value.as_str()?;
            Some(inner.split('.').next().unwrap_or(inner).to_owned())
        }
        Value::Mapping(map) => map
            .get("Ref")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| map.get("Fn::GetAtt")?.get(0)?.as_str().map(str::to_owned)),
        _ => None,
    }
}

fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn parameter_default(template: &Value, name: &str) -> Option<String> {
    match get(template, &["Parameters", name, "Default"])? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An environment as the template sets it: literal values as they are,
/// parameters at their defaults, other references as placeholders. Records every name asked.
struct TemplateEnv {
    values: HashMap<String, String>,
    asked: RefCell<BTreeSet<String>>,
}

impl EnvSource for TemplateEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.asked.borrow_mut().insert(name.to_owned());
        self.values.get(name).cloned()
    }
}

/// A function's environment as SAM gives it: the Globals' variables, then its own.
fn environment(template: &Value, function: &Value) -> HashMap<String, String> {
    let global = get(
        template,
        &["Globals", "Function", "Environment", "Variables"],
    );
    let own = get(function, &["Properties", "Environment", "Variables"]);
    [global, own]
        .into_iter()
        .flatten()
        .filter_map(Value::as_mapping)
        .flatten()
        .filter_map(|(name, value)| {
            let name = name.as_str()?.to_owned();
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => referent(other)
                    .and_then(|id| parameter_default(template, &id))
                    .unwrap_or_else(|| format!("placeholder-for-{name}")),
            };
            Some((name, value))
        })
        .collect()
}

/// The strings of a `Resource` (or `Action`): plain, listed, or the template
/// of a `!Sub` (short or long form); `!GetAtt X.Arn` as `${X.Arn}`.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Sequence(list)) => list.iter().flat_map(|v| strings(Some(v))).collect(),
        Some(Value::Tagged(tagged)) if tagged.tag == "Sub" => match &tagged.value {
            Value::Sequence(long) => strings(long.first()),
            other => strings(Some(other)),
        },
        Some(Value::Tagged(tagged)) if tagged.tag == "GetAtt" => tagged
            .value
            .as_str()
            .map(|target| vec![format!("${{{target}}}")])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Where in the documents bucket an S3 grant applies: the key prefix of an
/// object ARN, or for the bucket itself the `s3:prefix` values it is limited
/// to (none: the whole bucket).
fn s3_scopes(resource: &str, statement: &Value) -> Vec<Option<String>> {
    if let Some((_, prefix)) = resource.split_once("/") {
        return vec![Some(prefix.to_owned())];
    }
    let prefixes = strings(get(statement, &["Condition", "StringLike", "s3:prefix"]));
    if prefixes.is_empty() {
        vec![None]
    } else {
        prefixes.into_iter().map(Some).collect()
    }
}

fn granted_actions(function: &Value) -> BTreeSet<String> {
    let mut actions = BTreeSet::new();
    let policies = get(function, &["Properties", "Policies"]).and_then(Value::as_sequence);
    for policy in policies.into_iter().flatten() {
        let statements = get(policy, &["Statement"]).and_then(Value::as_sequence);
        for statement in statements.into_iter().flatten() {
            if get(statement, &["Effect"]).and_then(Value::as_str) != Some("Allow") {
                continue;
            }
            let mut resources = strings(get(statement, &["Resource"]));
            if resources.is_empty() {
                // A `!Ref`: the resource as a whole.
                resources.push(String::new());
            }
            for action in strings(get(statement, &["Action"])) {
                for resource in &resources {
                    // An ARN is a `${…}` reference, or ends in its name's `${Suffix}`,
                    // and what follows names the part of it granted.
                    let tail = resource
                        .rsplit_once('}')
                        .map_or(resource.as_str(), |(_, t)| t);
                    if action.starts_with("s3:") {
                        for scope in s3_scopes(tail, statement) {
                            actions.insert(match scope {
                                Some(scope) => format!("{action}@{scope}"),
                                None => action.clone(),
                            });
                        }
                    } else {
                        actions.insert(match tail.strip_prefix('/') {
                            Some(part) if part.starts_with("index/") => format!("{action}@{part}"),
                            _ => action.clone(),
                        });
                    }
                }
            }
        }
    }
    actions
}

fn timeout(template: &Value, function: &Value) -> u64 {
    number(get(function, &["Properties", "Timeout"]))
        .or_else(|| number(get(template, &["Globals", "Function", "Timeout"])))
        .unwrap_or(3)
}

/// Every problem found, one sentence each; empty when the template is sound.
/// An HTTP API must log every request as JSON, with the request id its
/// error bodies carry, to a log group with a retention, and never the query
/// string (it may hold search text).
fn access_log_problems(name: &str, api: &Value, log_groups: &[(String, &Value)]) -> Vec<String> {
    let Some(settings) = get(api, &["Properties", "AccessLogSettings"]) else {
        return vec![format!("{name} keeps no access log")];
    };
    let mut problems = Vec::new();
    let format = get(settings, &["Format"])
        .and_then(Value::as_str)
        .unwrap_or("");
    match serde_json::from_str::<serde_json::Value>(format) {
        Ok(line) if line["request_id"] == "$context.requestId" => {}
        Ok(_) => problems.push(format!(
            "{name}'s access log has no request_id ($context.requestId), which error bodies carry"
        )),
        Err(_) => problems.push(format!("{name}'s access log format is not JSON")),
    }
    if format.contains("queryString") || format.contains("rawQuery") {
        problems.push(format!("{name}'s access log writes the query string"));
    }
    let destination = get(settings, &["DestinationArn"]).and_then(referent);
    let kept = log_groups.iter().any(|(group, body)| {
        destination.as_ref() == Some(group)
            && get(body, &["Properties", "RetentionInDays"]).is_some()
    });
    if !kept {
        problems.push(format!(
            "{name}'s access log has no log group with a retention"
        ));
    }
    problems
}

pub fn problems(template: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let specs = functions();
    let functions = of_type(template, "AWS::Serverless::Function");
    let mut built = BTreeSet::new();

    for (name, function) in &functions {
        if get(function, &["Metadata", "BuildMethod"]).and_then(Value::as_str)
            != Some("rust-cargolambda")
        {
            problems.push(format!("{name} is not built with rust-cargolambda"));
        }
        if get(function, &["Properties", "CodeUri"]).and_then(Value::as_str) != Some(".") {
            problems.push(format!(
                "{name} must build from the workspace root (CodeUri: .)"
            ));
        }
        let Some(binary) =
            get(function, &["Metadata", "BuildProperties", "Binary"]).and_then(Value::as_str)
        else {
            problems.push(format!("{name} has no BuildProperties.Binary"));
            continue;
        };
        let Some(spec) = specs.iter().find(|spec| spec.binary.as_str() == binary) else {
            problems.push(format!(
                "{name} builds {binary}, which is not a function of this workspace"
            ));
            continue;
        };
        built.insert(binary);

        let env = TemplateEnv {
            values: environment(template, function),
            asked: RefCell::new(BTreeSet::new()),
        };
        if let Err(error) = (spec.load)(&Env::new(&env)) {
            problems.push(format!(
                "{name} would not start with its template environment: {error}"
            ));
        }
        for asked in env.asked.borrow().iter() {
            let provided =
                LOCAL_ONLY.contains(&asked.as_str()) || SET_BY_LAMBDA.contains(&asked.as_str());
            if !env.values.contains_key(asked) && !provided {
                problems.push(format!(
                    "{name} reads {asked}, which its environment does not set"
                ));
            }
        }

        let granted = granted_actions(function);
        let needed: BTreeSet<String> = spec.actions.iter().map(|a| (*a).to_owned()).collect();
        for missing in needed.difference(&granted) {
            problems.push(format!("{name} calls {missing} but is not allowed to"));
        }
        for extra in granted.difference(&needed) {
            problems.push(format!("{name} is allowed {extra}, which it never calls"));
        }

        let events = get(function, &["Properties", "Events"]).and_then(Value::as_mapping);
        for (_, event) in events.into_iter().flatten() {
            if get(event, &["Type"]).and_then(Value::as_str) != Some("SQS") {
                continue;
            }
            let Some(queue) = get(event, &["Properties", "Queue"]).and_then(referent) else {
                continue;
            };
            let visibility = number(get(
                template,
                &["Resources", &queue, "Properties", "VisibilityTimeout"],
            ))
            .unwrap_or(30);
            let limit = 6 * timeout(template, function);
            if visibility < limit {
                problems.push(format!(
                    "{queue}'s visibility timeout is {visibility} s, under 6 × {name}'s timeout ({limit} s)"
                ));
            }
            let batching =
                get(event, &["Properties", "FunctionResponseTypes"]).and_then(Value::as_sequence);
            if !batching
                .into_iter()
                .flatten()
                .any(|t| t.as_str() == Some("ReportBatchItemFailures"))
            {
                problems.push(format!(
                    "{name} reads {queue} without ReportBatchItemFailures"
                ));
            }
        }
    }
    for (name, table) in of_type(template, "AWS::DynamoDB::Table") {
        let indexes =
            get(table, &["Properties", "GlobalSecondaryIndexes"]).and_then(Value::as_sequence);
        for index in indexes.into_iter().flatten() {
            let index_name = get(index, &["IndexName"])
                .and_then(Value::as_str)
                .unwrap_or("?");
            let expected = match index_name {
                INDEX_BY_OWNER => by_owner_attributes(),
                INDEX_BY_HASH => BY_HASH_ATTRIBUTES.to_vec(),
                INDEX_BY_SEARCH => BY_SEARCH_ATTRIBUTES.to_vec(),
                _ => continue,
            };
            let projected: BTreeSet<String> =
                strings(get(index, &["Projection", "NonKeyAttributes"]))
                    .into_iter()
                    .collect();
            let expected: BTreeSet<String> = expected
                .iter()
                .map(|field| field.as_str().to_owned())
                .collect();
            if get(index, &["Projection", "ProjectionType"]).and_then(Value::as_str)
                != Some("INCLUDE")
                || projected != expected
            {
                problems.push(format!(
                    "{name}'s index {index_name} must project exactly {expected:?} (INCLUDE), as the store reads it"
                ));
            }
        }
    }

    let log_groups = of_type(template, "AWS::Logs::LogGroup");
    for (name, _) in &functions {
        let kept = log_groups.iter().any(|(_, group)| {
            strings(get(group, &["Properties", "LogGroupName"]))
                .iter()
                .any(|group_name| group_name == &format!("/aws/lambda/${{{name}}}"))
                && get(group, &["Properties", "RetentionInDays"]).is_some()
        });
        if !kept {
            problems.push(format!(
                "{name}'s logs have no log group with a retention: they would be kept forever"
            ));
        }
    }
    let dashboards = of_type(template, "AWS::CloudWatch::Dashboard");
    let bodies: Vec<String> = dashboards
        .iter()
        .flat_map(|(_, dashboard)| strings(get(dashboard, &["Properties", "DashboardBody"])))
        .collect();
    let shown: BTreeSet<String> = bodies
        .iter()
        .filter_map(|body| serde_json::from_str::<serde_json::Value>(body).ok())
        .flat_map(|body| {
            let widgets = body["widgets"].as_array().cloned().unwrap_or_default();
            widgets.into_iter().flat_map(|widget| {
                let metrics = widget["properties"]["metrics"].as_array().cloned();
                metrics.unwrap_or_default()
            })
        })
        .filter(|metric| metric[0] == ocr_shared::metrics::NAMESPACE)
        .filter_map(|metric| metric[1].as_str().map(str::to_owned))
        .collect();
    for metric in ocr_shared::metrics::Metric::ALL {
        if !shown.contains(metric.name()) {
            problems.push(format!(
                "no dashboard shows the metric {} the functions publish",
                metric.name()
            ));
        }
    }
    for (name, client) in of_type(template, "AWS::Cognito::UserPoolClient") {
        let flows = strings(get(client, &["Properties", "ExplicitAuthFlows"]));
        if flows.iter().any(|flow| flow == "ALLOW_USER_PASSWORD_AUTH") {
            problems.push(format!(
                "{name} allows USER_PASSWORD_AUTH: passwords can be tried against it without AWS credentials"
            ));
        }
    }
    for (name, api) in of_type(template, "AWS::Serverless::HttpApi") {
        problems.extend(access_log_problems(&name, api, &log_groups));
    }
    for spec in &specs {
        if !built.contains(spec.binary.as_str()) {
            problems.push(format!("no function builds {}", spec.binary));
        }
    }

    let policies = of_type(template, "AWS::S3::BucketPolicy");
    for (name, bucket) in of_type(template, "AWS::S3::Bucket") {
        for flag in [
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ] {
            let on = get(
                bucket,
                &["Properties", "PublicAccessBlockConfiguration", flag],
            )
            .and_then(Value::as_bool);
            if on != Some(true) {
                problems.push(format!("{name} does not set {flag}"));
            }
        }
        let tls_only = policies.iter().any(|(_, policy)| {
            get(policy, &["Properties", "Bucket"])
                .and_then(referent)
                .as_deref()
                == Some(name.as_str())
                && get(policy, &["Properties", "PolicyDocument", "Statement"])
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                    .any(|statement| {
                        get(statement, &["Effect"]).and_then(Value::as_str) == Some("Deny")
                            && get(statement, &["Condition", "Bool", "aws:SecureTransport"])
                                .is_some_and(|v| {
                                    v.as_str() == Some("false") || v.as_bool() == Some(false)
                                })
                    })
        });
        if !tls_only {
            problems.push(format!("{name} has no TLS-only bucket policy"));
        }
    }

    let attempts =
        parameter_default(template, "OcrMaxAttempts").and_then(|v| v.parse::<u64>().ok());
    let receives =
        parameter_default(template, "JobsMaxReceiveCount").and_then(|v| v.parse::<u64>().ok());
    if let (Some(attempts), Some(receives)) = (attempts, receives)
        && receives <= attempts
    {
        problems.push(format!(
            "JobsMaxReceiveCount ({receives}) must exceed OcrMaxAttempts ({attempts}) so a job is failed before its message is dead-lettered"
        ));
    }
    problems
}
