//! The service's vocabulary, defined once in `ocr_shared::domain`, against the
//! two places that repeat it for clients: the spec's enums and the demo page's
//! labels. Neither may name a code the service lacks, or lack one it has.

use std::collections::BTreeSet;

use ocr_shared::api::ApiCode;
use ocr_shared::domain::{
    DocumentType, ErrorCode, JobStatus, PiiKind, QualityIssue, WebhookStatus,
};
use serde_yaml_ng::Value;

const SPEC: &str = include_str!("../../openapi.yaml");
const PAGE: &str = include_str!("../../web/app.js");

fn spec() -> Value {
    serde_yaml_ng::from_str(SPEC).expect("openapi.yaml is YAML")
}

fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |node, key| {
        node.get(*key)
            .unwrap_or_else(|| panic!("openapi.yaml has no {}", path.join(".")))
    })
}

fn enum_at(path: &[&str]) -> BTreeSet<String> {
    let spec = spec();
    let values = at(&spec, path)
        .get("enum")
        .and_then(Value::as_sequence)
        .unwrap_or_else(|| panic!("{} is not an enum", path.join(".")));
    values
        .iter()
        .map(|v| v.as_str().expect("enum values are strings").to_owned())
        .collect()
}

fn names(all: impl IntoIterator<Item = &'static str>) -> BTreeSet<String> {
    all.into_iter().map(str::to_owned).collect()
}

/// The keys of `LABELS.<table>` in the page's script.
fn labels(table: &str) -> BTreeSet<String> {
    let start = PAGE.find("const LABELS = {").expect("the page has LABELS");
    let from = &PAGE[start..];
    let open = from
        .find(&format!("\n  {table}: {{"))
        .unwrap_or_else(|| panic!("LABELS has no {table}"));
    let body = &from[open..];
    let body = &body[body.find('{').unwrap() + 1..body.find("\n  },").unwrap()];
    body.lines()
        .filter_map(|line| {
            let line = line.trim();
            let (key, _) = line.split_once(':')?;
            (!key.starts_with("//")).then(|| key.trim().to_owned())
        })
        .collect()
}

#[test]
fn the_spec_lists_exactly_the_job_error_codes() {
    let codes = [
        "components",
        "schemas",
        "Job",
        "properties",
        "error",
        "properties",
        "code",
    ];
    assert_eq!(
        enum_at(&codes),
        names(ErrorCode::ALL.map(ErrorCode::as_str))
    );
}

#[test]
fn the_spec_lists_exactly_the_statuses_document_types_pii_kinds_and_webhook_states() {
    let statuses = names(JobStatus::ALL.map(JobStatus::as_str));
    assert_eq!(
        enum_at(&["components", "schemas", "StoredStatus"]),
        statuses
    );
    assert_eq!(enum_at(&["components", "schemas", "Status"]), statuses);
    assert_eq!(
        enum_at(&["components", "schemas", "DocumentType"]),
        names(DocumentType::ALL.map(DocumentType::as_str))
    );
    assert_eq!(
        enum_at(&["components", "schemas", "PiiKind"]),
        names(PiiKind::ALL.map(PiiKind::as_str))
    );
    let webhook = [
        "components",
        "schemas",
        "Job",
        "properties",
        "webhook",
        "properties",
        "status",
    ];
    assert_eq!(
        enum_at(&webhook),
        names(WebhookStatus::ALL.map(WebhookStatus::as_str))
    );
}

#[test]
fn the_page_labels_every_status_and_document_type_and_nothing_else() {
    assert_eq!(
        labels("status"),
        names(JobStatus::ALL.map(JobStatus::as_str))
    );
    assert_eq!(
        labels("documentType"),
        names(DocumentType::ALL.map(DocumentType::as_str))
    );
}

#[test]
fn the_page_labels_every_job_error_code_and_only_codes_the_service_sends() {
    let labelled = labels("error");
    let job_codes = names(ErrorCode::ALL.map(ErrorCode::as_str));
    let missing: Vec<_> = job_codes.difference(&labelled).collect();
    assert!(missing.is_empty(), "the page has no label for {missing:?}");
    let api_codes = names(ApiCode::ALL.map(ApiCode::as_str));
    let unknown: Vec<_> = labelled
        .iter()
        .filter(|code| !job_codes.contains(*code) && !api_codes.contains(*code))
        .collect();
    assert!(
        unknown.is_empty(),
        "the page labels codes nothing sends: {unknown:?}"
    );
}

#[test]
fn the_spec_names_every_bad_request_code() {
    let spec = spec();
    let description = at(
        &spec,
        &["components", "responses", "BadRequest", "description"],
    )
    .as_str()
    .unwrap();
    for code in ApiCode::ALL {
        if code.status().as_u16() == 400 && !matches!(code, ApiCode::Upload(_)) {
            assert!(
                description.contains(code.as_str()),
                "BadRequest does not name {}",
                code.as_str()
            );
        }
    }
}

#[test]
fn the_spec_and_the_page_name_exactly_the_quality_issues_as_the_service_does() {
    let spec = spec();
    let items = at(
        &spec,
        &[
            "components",
            "schemas",
            "Job",
            "properties",
            "quality_issues",
            "items",
        ],
    );
    let listed: BTreeSet<String> = items["enum"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let codes = names(QualityIssue::ALL.map(QualityIssue::as_str));
    assert_eq!(listed, codes);
    assert_eq!(labels("quality"), codes);
    for issue in QualityIssue::ALL {
        // The code as stored and sent, and the words the page shows.
        assert_eq!(serde_json::json!(issue), issue.as_str());
        assert!(
            PAGE.contains(&format!("{}: \"{}\"", issue.as_str(), issue.label())),
            "{issue:?}"
        );
    }
}
