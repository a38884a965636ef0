//! template.yaml against the code it deploys.

use ocr_tests::template::{TEMPLATE, parse, problems};
use serde_yaml_ng::Value;

#[test]
fn the_template_deploys_what_the_code_needs_and_nothing_more() {
    let found = problems(&parse(TEMPLATE));
    assert!(found.is_empty(), "template.yaml:\n{}", found.join("\n"));
}

/// The template with one change made to it, and what the checker says.
fn problems_after(change: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut template = parse(TEMPLATE);
    change(&mut template);
    problems(&template)
}

fn resource<'a>(template: &'a mut Value, name: &str) -> &'a mut Value {
    template
        .get_mut("Resources")
        .unwrap()
        .get_mut(name)
        .unwrap()
}

#[test]
fn a_function_without_a_binary_is_caught() {
    let found = problems_after(|t| {
        let properties = resource(t, "IngestFunction")["Metadata"]["BuildProperties"]
            .as_mapping_mut()
            .unwrap();
        properties.remove("Binary");
    });
    assert!(
        found.contains(&"IngestFunction has no BuildProperties.Binary".to_owned()),
        "{found:?}"
    );
    assert!(
        found.contains(&"no function builds ingest".to_owned()),
        "{found:?}"
    );
}

#[test]
fn a_variable_the_code_reads_but_the_template_does_not_set_is_caught() {
    let found = problems_after(|t| {
        let variables = resource(t, "OcrWorkerFunction")["Properties"]["Environment"]["Variables"]
            .as_mapping_mut()
            .unwrap();
        variables.remove("OCR_LEASE_SECONDS");
        variables.remove("JOBS_TABLE");
    });
    assert!(
        found.contains(
            &"OcrWorkerFunction reads OCR_LEASE_SECONDS, which its environment does not set"
                .to_owned()
        ),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("would not start") && p.contains("JOBS_TABLE is not set")),
        "{found:?}"
    );
}

#[test]
fn a_missing_or_extra_permission_is_caught() {
    let found = problems_after(|t| {
        let statements = resource(t, "StatusApiFunction")["Properties"]["Policies"][0]["Statement"]
            .as_sequence_mut()
            .unwrap();
        statements.retain(|s| s["Sid"].as_str() != Some("Results"));
        statements[0]["Action"] =
            serde_yaml_ng::from_str("[dynamodb:GetItem, dynamodb:Scan]").unwrap();
    });
    assert!(
        found.contains(
            &"StatusApiFunction calls s3:GetObject@results/* but is not allowed to".to_owned()
        ),
        "{found:?}"
    );
    assert!(
        found.contains(
            &"StatusApiFunction is allowed dynamodb:Scan, which it never calls".to_owned()
        ),
        "{found:?}"
    );
}

#[test]
fn a_queue_that_redelivers_before_the_worker_can_finish_is_caught() {
    let found = problems_after(|t| {
        resource(t, "JobsQueue")["Properties"]["VisibilityTimeout"] = Value::from(300);
    });
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("JobsQueue's visibility timeout is 300 s")),
        "{found:?}"
    );
}

#[test]
fn an_app_client_open_to_plain_password_sign_in_is_caught() {
    let found = problems_after(|t| {
        resource(t, "UserPoolClient")["Properties"]["ExplicitAuthFlows"] =
            serde_yaml_ng::from_str("[ALLOW_USER_SRP_AUTH, ALLOW_USER_PASSWORD_AUTH]").unwrap();
    });
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("UserPoolClient allows USER_PASSWORD_AUTH")),
        "{found:?}"
    );
}

#[test]
fn a_bucket_without_public_access_block_or_tls_policy_is_caught() {
    let found = problems_after(|t| {
        resource(t, "DocumentsBucket")["Properties"]
            .as_mapping_mut()
            .unwrap()
            .remove("PublicAccessBlockConfiguration");
        t.get_mut("Resources")
            .unwrap()
            .as_mapping_mut()
            .unwrap()
            .remove("DocumentsBucketPolicy");
    });
    assert!(
        found.contains(&"DocumentsBucket does not set BlockPublicAcls".to_owned()),
        "{found:?}"
    );
    assert!(
        found.contains(&"DocumentsBucket has no TLS-only bucket policy".to_owned()),
        "{found:?}"
    );
}

#[test]
fn an_s3_grant_on_the_wrong_prefix_or_the_whole_bucket_is_caught() {
    let found = problems_after(|t| {
        let statements = resource(t, "OcrWorkerFunction")["Properties"]["Policies"][0]["Statement"]
            .as_sequence_mut()
            .unwrap();
        for statement in statements.iter_mut() {
            match statement["Sid"].as_str() {
                Some("Uploads") => {
                    statement["Resource"] =
                        serde_yaml_ng::from_str("!Sub \"${DocumentsBucket.Arn}/*\"").unwrap()
                }
                // S3 checks ListBucket for a missing key with no s3:prefix in
                // the request: a grant limited to prefixes does not give 404s.
                Some("MissingIsNotFound") => {
                    statement.as_mapping_mut().unwrap().insert(
                        "Condition".into(),
                        serde_yaml_ng::from_str("{StringLike: {s3:prefix: [uploads/*]}}").unwrap(),
                    );
                }
                _ => {}
            }
        }
    });
    for expected in [
        "OcrWorkerFunction calls s3:GetObject@uploads/* but is not allowed to",
        "OcrWorkerFunction is allowed s3:GetObject@*, which it never calls",
        "OcrWorkerFunction calls s3:ListBucket but is not allowed to",
        "OcrWorkerFunction is allowed s3:ListBucket@uploads/*, which it never calls",
    ] {
        assert!(
            found.contains(&expected.to_owned()),
            "{expected}\n{found:?}"
        );
    }
}

#[test]
fn a_function_whose_logs_are_kept_forever_is_caught() {
    let found = problems_after(|t| {
        let resources = t.get_mut("Resources").unwrap().as_mapping_mut().unwrap();
        resources.remove("IngestLogGroup");
        resource(t, "NotifierLogGroup")["Properties"]
            .as_mapping_mut()
            .unwrap()
            .remove("RetentionInDays");
    });
    for name in ["IngestFunction", "NotifierFunction"] {
        let expected =
            format!("{name}'s logs have no log group with a retention: they would be kept forever");
        assert!(found.contains(&expected), "{expected}\n{found:?}");
    }
    assert_eq!(found.len(), 2, "{found:?}");
}

#[test]
fn the_stack_outputs_a_ready_link_to_the_page_and_allows_its_origin() {
    let template = parse(TEMPLATE);
    let link = &template["Outputs"]["DemoPageLink"]["Value"];
    let Value::Tagged(link) = link else {
        panic!("DemoPageLink is a !Sub: {link:?}")
    };
    let link = link.value.as_str().unwrap();
    assert!(
        link.starts_with("http://localhost:8000/#api=https://${HttpApi}.execute-api."),
        "{link}"
    );
    let origins = template["Parameters"]["AllowedOrigins"]["Default"]
        .as_str()
        .unwrap();
    assert!(
        origins
            .split(',')
            .any(|origin| origin == "http://localhost:8000"),
        "the page's origin is allowed by default: {origins}"
    );
    assert!(template["Outputs"]["DashboardUrl"].is_mapping());
}

#[test]
fn a_metric_the_functions_publish_but_no_dashboard_shows_is_caught() {
    let found = problems_after(|t| {
        let body = &mut resource(t, "Dashboard")["Properties"]["DashboardBody"];
        let Value::Tagged(tagged) = body else {
            panic!("the body is a !Sub")
        };
        let text = tagged
            .value
            .as_str()
            .unwrap()
            .replace("\"OcrThrottled\"", "\"Other\"");
        tagged.value = text.into();
    });
    assert_eq!(
        found,
        ["no dashboard shows the metric OcrThrottled the functions publish"]
    );
}

#[test]
fn an_api_without_a_json_access_log_with_its_request_id_is_caught() {
    let found = problems_after(|t| {
        resource(t, "HttpApi")["Properties"]
            .as_mapping_mut()
            .unwrap()
            .remove("AccessLogSettings");
    });
    assert_eq!(found, ["HttpApi keeps no access log"]);
    let found = problems_after(|t| {
        let settings = &mut resource(t, "HttpApi")["Properties"]["AccessLogSettings"];
        settings["Format"] = "$context.requestId $context.status".into();
    });
    assert_eq!(found, ["HttpApi's access log format is not JSON"]);
    let found = problems_after(|t| {
        let settings = &mut resource(t, "HttpApi")["Properties"]["AccessLogSettings"];
        settings["Format"] =
            r#"{"id":"$context.extendedRequestId","q":"$context.rawQueryString"}"#.into();
        t.get_mut("Resources")
            .unwrap()
            .as_mapping_mut()
            .unwrap()
            .remove("HttpApiAccessLogGroup");
    });
    assert_eq!(
        found,
        [
            "HttpApi's access log has no request_id ($context.requestId), which error bodies carry",
            "HttpApi's access log writes the query string",
            "HttpApi's access log has no log group with a retention",
        ]
    );
}

/// Evaluates a Rules assertion (`!Or`, `!Not`, `!Equals`, `!Contains`, `!Ref`)
/// with the given parameter values, as CloudFormation does before it deploys.
fn holds(assertion: &Value, parameters: &[(&str, &str)]) -> bool {
    fn value(node: &Value, parameters: &[(&str, &str)]) -> Value {
        match node {
            Value::Tagged(tagged) if tagged.tag == "Ref" => {
                let name = tagged.value.as_str().unwrap();
                let (_, given) = parameters.iter().find(|(p, _)| *p == name).unwrap();
                Value::from(*given)
            }
            Value::Tagged(_) => Value::Bool(holds(node, parameters)),
            other => other.clone(),
        }
    }
    let Value::Tagged(tagged) = assertion else {
        panic!("not a condition function: {assertion:?}")
    };
    let args = tagged.value.as_sequence().unwrap();
    match tagged.tag.to_string().trim_start_matches('!') {
        "Or" => args.iter().any(|arg| holds(arg, parameters)),
        "Not" => !holds(&args[0], parameters),
        "Equals" => value(&args[0], parameters) == value(&args[1], parameters),
        "Contains" => {
            let needle = value(&args[1], parameters);
            args[0].as_sequence().unwrap().contains(&needle)
        }
        other => panic!("unexpected rule function {other}"),
    }
}

#[test]
fn the_templates_rules_refuse_receive_counts_that_do_not_exceed_the_attempts() {
    let template = parse(TEMPLATE);
    let assertions = template["Rules"]["ReceivesExceedAttempts"]["Assertions"]
        .as_sequence()
        .unwrap();
    let deployable = |attempts: &str, receives: &str| {
        let parameters = [
            ("OcrMaxAttempts", attempts),
            ("JobsMaxReceiveCount", receives),
        ];
        assertions
            .iter()
            .all(|assertion| holds(&assertion["Assert"], &parameters))
    };
    assert!(deployable("5", "8"), "the defaults deploy");
    assert!(deployable("1", "2"));
    assert!(deployable("20", "21"));
    assert!(!deployable("5", "5"));
    assert!(!deployable("5", "3"));
    assert!(!deployable("20", "20"));
    assert!(!deployable("3", "1"));
}
