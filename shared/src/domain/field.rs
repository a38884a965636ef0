//! The names of the job record's stored attributes: one enum, so that no
//! store, index or transition writes a name the record does not have.

use std::fmt;

macro_rules! job_fields {
    ($($(#[$doc:meta])* $variant:ident => $name:literal),+ $(,)?) => {
        /// One attribute of the `Jobs` table's item: a serde key of `Job`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum JobField {
            $($(#[$doc])* $variant),+
        }

        impl JobField {
            /// Every attribute, in the record's order.
            pub const ALL: &[JobField] = &[$(JobField::$variant),+];

            /// The attribute's name in the item (and the serde key of `Job`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(JobField::$variant => $name),+
                }
            }
        }
    };
}

job_fields! {
    JobId => "job_id",
    Owner => "owner",
    Status => "status",
    Filename => "filename",
    ContentType => "content_type",
    DeclaredSize => "declared_size",
    DeclaredType => "declared_type",
    Size => "size",
    Sha256 => "sha256",
    /// `owner#sha256`: the `by_hash` index's partition key.
    OwnerSha256 => "owner_sha256",
    DetectedMime => "detected_mime",
    UploadEtag => "upload_etag",
    DocumentType => "document_type",
    Redact => "redact",
    Redacted => "redacted",
    WebhookUrl => "webhook_url",
    Webhook => "webhook",
    Attempts => "attempts",
    AuthFailures => "auth_failures",
    Throttles => "throttles",
    Wake => "wake",
    LeaseUntil => "lease_until",
    Error => "error",
    Text => "text",
    TextTruncated => "text_truncated",
    Confidence => "confidence",
    NeedsReview => "needs_review",
    ReviewPages => "review_pages",
    QualityIssues => "quality_issues",
    Pages => "pages",
    PagesDone => "pages_done",
    Engine => "engine",
    ModelVersion => "model_version",
    ResultKey => "result_key",
    DeduplicatedFrom => "deduplicated_from",
    /// The text's normal form: the `by_search` index's filter.
    SearchText => "search_text",
    /// `created_at` again, on jobs with text: the `by_search` index's sort key.
    SearchAt => "search_at",
    CreatedAt => "created_at",
    UpdatedAt => "updated_at",
    UploadExpiresAt => "upload_expires_at",
    QueuedAt => "queued_at",
    StartedAt => "started_at",
    CompletedAt => "completed_at",
    /// DynamoDB's TTL attribute.
    ExpiresAt => "expires_at",
    /// On unfinished jobs only: the `by_pending` index's partition key.
    Pending => "pending",
    Announced => "announced",
}

impl JobField {
    /// The attribute named `name`, if the record has one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|field| field.as_str() == name)
    }

    /// Whether a listing shows it, so that the `by_owner` index projects it:
    /// everything but the text and what only the job's own reads need.
    pub const fn listed(self) -> bool {
        use JobField::*;
        !matches!(
            self,
            // The index's keys are projected anyway.
            JobId
                | Owner
                | CreatedAt
                | OwnerSha256
                | DetectedMime
                | DeclaredType
                | QualityIssues
                | UploadEtag
                | Redact
                | Redacted
                | AuthFailures
                | Throttles
                | Wake
                | LeaseUntil
                | Text
                | TextTruncated
                | ResultKey
                | SearchText
                | SearchAt
                | Pending
                | Announced
        )
    }
}

impl fmt::Display for JobField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::{
        CheckedUpload, Completion, DocumentType, FileType, HashKey, Job, JobError, JobStatus,
        PiiKind, QualityIssue, SearchEntry, Sha256Hex, Timestamp, Webhook, WebhookState,
        WebhookStatus, WebhookUrl,
    };

    /// A job with every attribute present: each optional one set.
    fn every_field_set() -> Job {
        let at = Timestamp::from_millis(1_800_000_000_000);
        let mut job = crate::testing::open(
            crate::testing::request("alice", "r.png", FileType::Png, 3),
            at,
        );
        let sha256 = Sha256Hex::parse(&"ab".repeat(32)).unwrap();
        job = Job {
            hash: Some(HashKey {
                owner_sha256: Some(format!("alice#{sha256}")),
                sha256,
            }),
            upload: Some(CheckedUpload {
                size: 3,
                detected_mime: Some("image/png".into()),
                declared_type: Some(FileType::Jpeg),
                upload_etag: Some("\"etag\"".into()),
            }),
            document_type: Some(DocumentType::Receipt),
            redact: Some(vec![PiiKind::Phone]),
            webhook: Some(Webhook {
                url: WebhookUrl::checked(&"https://example.com/hook".parse().unwrap()),
                state: WebhookState {
                    status: WebhookStatus::Pending,
                    attempts: 1,
                    last_error: None,
                    delivered_at: None,
                },
            }),
            attempts: 1,
            auth_failures: 1,
            throttles: 1,
            wake: 1,
            lease_until: Some(at),
            error: Some(JobError::new(crate::domain::ErrorCode::OcrUnavailable, "x")),
            completion: Some(Completion {
                text: Some("합계".into()),
                text_truncated: false,
                confidence: 0.9,
                engine: "upstage".into(),
                model_version: "ocr".into(),
                result_key: "results/x.json".into(),
                redacted: Some(Default::default()),
                needs_review: true,
                review_pages: vec![1],
                quality_issues: vec![QualityIssue::Blurry],
            }),
            pages: Some(1),
            pages_done: 1,
            deduplicated_from: Some(crate::domain::JobId::new()),
            search: Some(SearchEntry {
                search_text: "합계".into(),
                search_at: at,
            }),
            queued_at: Some(at),
            started_at: Some(at),
            completed_at: Some(at),
            unfinished: true,
            announced: true,
            status: JobStatus::Completed,
            ..job
        };
        job
    }

    fn keys_of(job: &Job) -> BTreeSet<String> {
        let serde_json::Value::Object(fields) = serde_json::json!(job) else {
            unreachable!("a Job serialises to an object")
        };
        fields.keys().cloned().collect()
    }

    #[test]
    fn every_field_is_a_key_of_the_stored_job_and_every_key_a_field() {
        let keys = keys_of(&every_field_set());
        let names: BTreeSet<String> = JobField::ALL
            .iter()
            .map(|field| field.as_str().to_owned())
            .collect();
        assert_eq!(keys, names);
        for key in &keys {
            assert_eq!(
                JobField::parse(key).map(JobField::as_str),
                Some(key.as_str())
            );
        }
    }

    #[test]
    fn a_job_with_every_field_reads_back_whole_and_each_group_whole_or_absent() {
        let job = every_field_set();
        let back: Job = serde_json::from_value(serde_json::json!(job)).unwrap();
        assert_eq!(back, job);
        #[cfg(feature = "dynamodb")]
        {
            type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;
            let item: Item = serde_dynamo::to_item(&job).unwrap();
            let back: Job = serde_dynamo::from_item(item).unwrap();
            assert_eq!(back, job);
        }
        // A new job has none of the groups, and leaves the sweeper's key set.
        let fresh = crate::testing::open(
            crate::testing::request("alice", "r.png", FileType::Png, 3),
            Timestamp::from_millis(0),
        );
        let keys = keys_of(&fresh);
        assert!(keys.contains(JobField::Pending.as_str()));
        for absent in [
            JobField::Size,
            JobField::Text,
            JobField::WebhookUrl,
            JobField::SearchText,
        ] {
            assert!(!keys.contains(absent.as_str()), "{absent}");
        }
        let back: Job = serde_json::from_value(serde_json::json!(fresh)).unwrap();
        assert_eq!(back, fresh);
    }
}
