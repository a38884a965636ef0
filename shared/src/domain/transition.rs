//! The only legal moves of a job: each transition's guard (what must hold for
//! it to apply) and the fields it changes, which the stores apply atomically.

use serde_json::{Map, Value, json};

use super::{Completion, DedupKey, ErrorCode, Job, JobError, JobId, JobStatus, Timestamp, search};

/// A move of a job from one status to another, with what it writes. Stores
/// apply it atomically: the guard and the changes in one conditional write.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    /// The upload checked out: awaiting_upload → queued.
    Enqueue {
        size: u64,
        digest: DedupKey,
        detected_mime: String,
        /// The version of the upload that was checked: the worker reads exactly it.
        etag: Option<String>,
        /// A PDF's page count.
        pages: Option<u32>,
    },
    /// The upload broke a rule: awaiting_upload → rejected.
    Reject {
        error: JobError,
        size: Option<u64>,
        detected_mime: Option<String>,
    },
    /// The same owner already had these bytes read: awaiting_upload → completed, no OCR.
    CompleteAsDuplicate {
        of: JobId,
        digest: DedupKey,
        size: u64,
        completion: Completion,
    },
    /// A worker takes the job: queued → processing, or takes over a
    /// processing job whose lease ran out. Counts one more attempt.
    StartProcessing { lease_until: Timestamp },
    /// The lease holder finished a chunk of a long document: processing →
    /// processing, with the pages read so far and the lease renewed.
    Progress {
        attempt: u32,
        pages_done: u32,
        lease_until: Timestamp,
    },
    /// The lease holder (`attempt`) finished the OCR: processing → completed.
    Complete {
        attempt: u32,
        completion: Completion,
    },
    /// The lease holder gives up for good: processing → failed.
    Fail { attempt: u32, error: JobError },
    /// The lease holder hit a retryable error: processing → queued, lease released.
    Release { attempt: u32, error: JobError },
    /// The OCR engine refused our credentials: processing → queued, lease
    /// released, and the attempt handed back (a rotated key is not the
    /// document's fault); counts one more credential failure for the backoff.
    Postpone { attempt: u32, error: JobError },
    /// The OCR engine's rate limit refused the call: processing → queued,
    /// lease released, and the attempt handed back (the document is not at
    /// fault); counts one more throttle for the backoff.
    Throttle { attempt: u32, error: JobError },
    /// The lease holder ran out of invocation time with chunks of a long
    /// document still to read: processing → queued, lease released and the
    /// attempt handed back (it made progress, and the next one resumes).
    Yield { attempt: u32 },
    /// No file arrived before the upload URL ran out: awaiting_upload → expired.
    Expire,
}

/// One condition under which a transition may run; a transition runs when any of its guards holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// The job is in exactly this status.
    Status(JobStatus),
    /// The job is processing and its lease ran out before `now`.
    LeaseExpired { now: Timestamp },
    /// The job is processing under the lease taken by attempt number `attempt`.
    LeaseHeld { attempt: u32 },
    /// The job still awaits its upload, whose URL ran out before `now`.
    UploadExpired { now: Timestamp },
}

impl Guard {
    pub fn admits(self, job: &Job) -> bool {
        match self {
            Guard::Status(status) => job.status == status,
            Guard::LeaseExpired { now } => {
                job.status == JobStatus::Processing && job.lease_until.is_none_or(|t| t < now)
            }
            Guard::LeaseHeld { attempt } => {
                job.status == JobStatus::Processing && job.attempts == attempt
            }
            Guard::UploadExpired { now } => {
                job.status == JobStatus::AwaitingUpload && job.upload_expires_at < now
            }
        }
    }
}

/// One field a transition writes.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldChange {
    Set(&'static str, Value),
    Remove(&'static str),
    /// Adds to a number field (absent counts as 0).
    Increment(&'static str, i64),
    /// Sets the first field to the value the second holds.
    Copy(&'static str, &'static str),
}

/// The store refused a transition: the job is not where the move starts.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("job {job_id} is {current}; {attempted} is not allowed from there")]
pub struct TransitionRefused {
    pub job_id: JobId,
    pub current: JobStatus,
    pub attempted: JobStatus,
    /// The job as it stands, when the store could read it.
    pub job: Option<Box<Job>>,
}

impl Transition {
    /// The status the job has after the move.
    pub const fn target(&self) -> JobStatus {
        match self {
            Transition::Enqueue { .. } => JobStatus::Queued,
            Transition::Reject { .. } => JobStatus::Rejected,
            Transition::CompleteAsDuplicate { .. } | Transition::Complete { .. } => {
                JobStatus::Completed
            }
            Transition::StartProcessing { .. } | Transition::Progress { .. } => {
                JobStatus::Processing
            }
            Transition::Fail { .. } => JobStatus::Failed,
            Transition::Release { .. }
            | Transition::Postpone { .. }
            | Transition::Throttle { .. }
            | Transition::Yield { .. } => JobStatus::Queued,
            Transition::Expire => JobStatus::Expired,
        }
    }

    /// Where the move may start from (any one guard suffices).
    pub fn guards(&self, now: Timestamp) -> Vec<Guard> {
        match self {
            Transition::Enqueue { .. }
            | Transition::Reject { .. }
            | Transition::CompleteAsDuplicate { .. } => {
                vec![Guard::Status(JobStatus::AwaitingUpload)]
            }
            Transition::Expire => vec![Guard::UploadExpired { now }],
            Transition::StartProcessing { .. } => vec![
                Guard::Status(JobStatus::Queued),
                Guard::LeaseExpired { now },
            ],
            Transition::Complete { attempt, .. }
            | Transition::Progress { attempt, .. }
            | Transition::Fail { attempt, .. }
            | Transition::Release { attempt, .. }
            | Transition::Postpone { attempt, .. }
            | Transition::Throttle { attempt, .. }
            | Transition::Yield { attempt } => {
                vec![Guard::LeaseHeld { attempt: *attempt }]
            }
        }
    }

    /// Every field the move writes, `status` and `updated_at` included.
    pub fn changes(&self, now: Timestamp) -> Vec<FieldChange> {
        use FieldChange::{Increment, Remove, Set};
        let mut changes = vec![
            Set("status", json!(self.target())),
            Set("updated_at", json!(now)),
        ];
        match self {
            Transition::Enqueue {
                size,
                digest,
                detected_mime,
                etag,
                pages,
            } => {
                changes.extend([
                    Set("size", json!(size)),
                    Set("sha256", json!(digest.sha256)),
                    Set("owner_sha256", json!(digest.index_value())),
                    Set("detected_mime", json!(detected_mime)),
                    Set("queued_at", json!(now)),
                ]);
                if let Some(etag) = etag {
                    changes.push(Set("upload_etag", json!(etag)));
                }
                if let Some(pages) = pages {
                    changes.push(Set("pages", json!(pages)));
                }
            }
            Transition::Reject {
                error,
                size,
                detected_mime,
            } => {
                changes.extend([Set("error", json!(error)), Set("completed_at", json!(now))]);
                if let Some(size) = size {
                    changes.push(Set("size", json!(size)));
                }
                if let Some(mime) = detected_mime {
                    changes.push(Set("detected_mime", json!(mime)));
                }
            }
            Transition::CompleteAsDuplicate {
                of,
                digest,
                size,
                completion,
            } => {
                changes.extend([
                    Set("deduplicated_from", json!(of)),
                    Set("sha256", json!(digest.sha256)),
                    Set("owner_sha256", json!(digest.index_value())),
                    Set("size", json!(size)),
                    Set("completed_at", json!(now)),
                ]);
                changes.extend(completion_changes(completion));
            }
            Transition::StartProcessing { lease_until } => changes.extend([
                Set("lease_until", json!(lease_until)),
                Set("started_at", json!(now)),
                Increment("attempts", 1),
            ]),
            Transition::Progress {
                pages_done,
                lease_until,
                ..
            } => changes.extend([
                Set("pages_done", json!(pages_done)),
                Set("lease_until", json!(lease_until)),
            ]),
            Transition::Complete { completion, .. } => {
                changes.extend([
                    Set("completed_at", json!(now)),
                    Remove("lease_until"),
                    Remove("error"),
                    Remove("auth_failures"),
                    Remove("throttles"),
                    Remove("pages_done"),
                ]);
                changes.extend(completion_changes(completion));
            }
            Transition::Fail { error, .. } => changes.extend([
                Set("error", json!(error)),
                Set("completed_at", json!(now)),
                Remove("lease_until"),
            ]),
            Transition::Release { error, .. } => {
                changes.extend([Set("error", json!(error)), Remove("lease_until")])
            }
            Transition::Expire => changes.extend([
                Set(
                    "error",
                    json!(JobError::new(
                        ErrorCode::UploadExpired,
                        "no file was uploaded before the upload URL expired; open a new job"
                    )),
                ),
                Set("completed_at", json!(now)),
            ]),
            // Each hands the job to a fresh message, counted in `wake`.
            Transition::Yield { .. } => changes.extend([
                Remove("lease_until"),
                Increment("attempts", -1),
                Increment("wake", 1),
            ]),
            Transition::Postpone { error, .. } => changes.extend([
                Set("error", json!(error)),
                Remove("lease_until"),
                Increment("attempts", -1),
                Increment("auth_failures", 1),
                Increment("wake", 1),
            ]),
            Transition::Throttle { error, .. } => changes.extend([
                Set("error", json!(error)),
                Remove("lease_until"),
                Increment("attempts", -1),
                Increment("throttles", 1),
                Increment("wake", 1),
            ]),
        }
        if self.target().is_final() {
            // Out of the sweeper's index: nothing is left to repair.
            changes.push(Remove("pending"));
        }
        changes
    }
}

/// The completion's fields, and the normal form of its text for search: a
/// job with text enters the sparse search index (`search_at`, a copy of
/// `created_at`, is its sort key).
fn completion_changes(completion: &Completion) -> Vec<FieldChange> {
    let Value::Object(fields) = json!(completion) else {
        unreachable!("a Completion serialises to an object")
    };
    let mut changes: Vec<FieldChange> = COMPLETION_FIELDS
        .iter()
        .filter_map(|name| {
            fields
                .get(*name)
                .map(|value| FieldChange::Set(name, value.clone()))
        })
        .collect();
    if let Some(normal) = search::search_text(&completion.text) {
        changes.push(FieldChange::Set("search_text", json!(normal)));
        changes.push(FieldChange::Copy("search_at", "created_at"));
    }
    changes
}

const COMPLETION_FIELDS: [&str; 11] = [
    "text",
    "text_truncated",
    "confidence",
    "pages",
    "engine",
    "model_version",
    "result_key",
    "document_type",
    "redacted",
    "needs_review",
    "review_pages",
];

impl Job {
    /// The job after `transition` at `now`, or why the move is refused. The
    /// in-memory store runs this; the DynamoDB store runs the same guards and
    /// changes as one conditional update.
    pub fn apply(&self, transition: &Transition, now: Timestamp) -> Result<Job, TransitionRefused> {
        let admitted = self.status.can_move_to(transition.target())
            && transition
                .guards(now)
                .iter()
                .any(|guard| guard.admits(self));
        if !admitted {
            return Err(TransitionRefused {
                job_id: self.job_id.clone(),
                current: self.status,
                attempted: transition.target(),
                job: Some(Box::new(self.clone())),
            });
        }
        let Value::Object(mut fields) = json!(self) else {
            unreachable!("a Job serialises to an object")
        };
        apply_changes(&mut fields, &transition.changes(now));
        Ok(serde_json::from_value(Value::Object(fields))
            .expect("every transition writes fields of the Job's own types"))
    }
}

fn apply_changes(fields: &mut Map<String, Value>, changes: &[FieldChange]) {
    for change in changes {
        match change {
            FieldChange::Set(name, value) => {
                fields.insert((*name).to_owned(), value.clone());
            }
            FieldChange::Remove(name) => {
                fields.remove(*name);
            }
            FieldChange::Increment(name, by) => {
                let current = fields.get(*name).and_then(Value::as_i64).unwrap_or(0);
                fields.insert((*name).to_owned(), json!(current + by));
            }
            FieldChange::Copy(name, from) => {
                if let Some(value) = fields.get(*from).cloned() {
                    fields.insert((*name).to_owned(), value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::domain::{FileType, Owner, Sha256Hex};

    const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn new_job() -> Job {
        crate::testing::open(
            crate::testing::request("alice", "영수증.png", FileType::Png, 1234),
            T0,
        )
    }

    fn digest() -> DedupKey {
        DedupKey {
            owner: Owner::parse("alice").unwrap(),
            sha256: Sha256Hex::parse(&"ab".repeat(32)).unwrap(),
        }
    }

    fn completion() -> Completion {
        Completion {
            redacted: None,
            text: "합계 12,000원".into(),
            text_truncated: false,
            confidence: 0.97,
            pages: 1,
            engine: "upstage".into(),
            model_version: "ocr-2.2.1".into(),
            result_key: "results/x.json".into(),
            document_type: Some(crate::domain::DocumentType::Receipt),
            needs_review: false,
            review_pages: Vec::new(),
        }
    }

    /// The design's table, written out independently of `JobStatus::can_move_to`.
    fn legal_edges() -> Vec<(JobStatus, JobStatus)> {
        use JobStatus::*;
        vec![
            (AwaitingUpload, Queued),
            (AwaitingUpload, Rejected),
            (AwaitingUpload, Completed),
            (AwaitingUpload, Expired),
            (Queued, Processing),
            (Processing, Completed),
            (Processing, Failed),
            (Processing, Queued),
            (Processing, Processing),
        ]
    }

    #[test]
    fn the_state_machine_has_exactly_the_designed_edges() {
        let legal = legal_edges();
        for from in JobStatus::ALL {
            for to in JobStatus::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    legal.contains(&(from, to)),
                    "{from} → {to}"
                );
            }
        }
    }

    #[test]
    fn a_job_travels_the_happy_path_and_counts_its_attempt() {
        let job = new_job()
            .apply(
                &Transition::Enqueue {
                    size: 1234,
                    digest: digest(),
                    detected_mime: "image/png".into(),
                    etag: None,
                    pages: None,
                },
                T0,
            )
            .unwrap();
        assert_eq!(job.status, JobStatus::Queued);
        assert_eq!(job.queued_at, Some(T0));

        let lease_until = T0.plus(Duration::from_secs(60));
        let job = job
            .apply(&Transition::StartProcessing { lease_until }, T0)
            .unwrap();
        assert_eq!((job.status, job.attempts), (JobStatus::Processing, 1));
        assert_eq!(job.lease_until, Some(lease_until));

        let later = T0.plus(Duration::from_secs(5));
        let job = job
            .apply(
                &Transition::Complete {
                    attempt: 1,
                    completion: completion(),
                },
                later,
            )
            .unwrap();
        assert_eq!(job.status, JobStatus::Completed);
        assert_eq!(job.lease_until, None);
        assert_eq!(job.text.as_deref(), Some("합계 12,000원"));
        assert_eq!(
            job.document_type,
            Some(crate::domain::DocumentType::Receipt)
        );
        assert_eq!((job.updated_at, job.completed_at), (later, Some(later)));
    }

    #[test]
    fn a_live_lease_cannot_be_taken_but_an_expired_one_can() {
        let queued = new_job()
            .apply(
                &Transition::Enqueue {
                    size: 1,
                    digest: digest(),
                    detected_mime: "image/png".into(),
                    etag: None,
                    pages: None,
                },
                T0,
            )
            .unwrap();
        let lease_until = T0.plus(Duration::from_secs(60));
        let taken = queued
            .apply(&Transition::StartProcessing { lease_until }, T0)
            .unwrap();

        let during = T0.plus(Duration::from_secs(30));
        let refused = taken
            .apply(
                &Transition::StartProcessing {
                    lease_until: during,
                },
                during,
            )
            .unwrap_err();
        assert_eq!(refused.current, JobStatus::Processing);

        let after = T0.plus(Duration::from_secs(61));
        let retaken = taken
            .apply(
                &Transition::StartProcessing {
                    lease_until: after.plus(Duration::from_secs(60)),
                },
                after,
            )
            .unwrap();
        assert_eq!(retaken.attempts, 2);

        // The first worker's lease is gone: it may no longer finish the job.
        let stale = retaken.apply(
            &Transition::Complete {
                attempt: 1,
                completion: completion(),
            },
            after,
        );
        assert!(stale.is_err());
    }

    #[derive(Clone, Debug)]
    enum Move {
        Enqueue,
        Reject,
        Duplicate,
        Start { lease_secs: u8 },
        Complete { attempt: u32 },
        Fail { attempt: u32 },
        Release { attempt: u32 },
    }

    fn any_move() -> impl Strategy<Value = Move> {
        prop_oneof![
            Just(Move::Enqueue),
            Just(Move::Reject),
            Just(Move::Duplicate),
            (1u8..120).prop_map(|lease_secs| Move::Start { lease_secs }),
            (0u32..4).prop_map(|attempt| Move::Complete { attempt }),
            (0u32..4).prop_map(|attempt| Move::Fail { attempt }),
            (0u32..4).prop_map(|attempt| Move::Release { attempt }),
        ]
    }

    fn transition_for(step: &Move, now: Timestamp) -> Transition {
        let error = JobError::new(ErrorCode::OcrUnavailable, "the OCR service did not answer");
        match *step {
            Move::Enqueue => Transition::Enqueue {
                size: 10,
                digest: digest(),
                detected_mime: "image/png".into(),
                etag: None,
                pages: None,
            },
            Move::Reject => Transition::Reject {
                error,
                size: Some(10),
                detected_mime: None,
            },
            Move::Duplicate => Transition::CompleteAsDuplicate {
                of: JobId::new(),
                digest: digest(),
                size: 10,
                completion: completion(),
            },
            Move::Start { lease_secs } => Transition::StartProcessing {
                lease_until: now.plus(Duration::from_secs(u64::from(lease_secs))),
            },
            Move::Complete { attempt } => Transition::Complete {
                attempt,
                completion: completion(),
            },
            Move::Fail { attempt } => Transition::Fail { attempt, error },
            Move::Release { attempt } => Transition::Release { attempt, error },
        }
    }

    /// Whether `step` may run on `job` at `now`, decided from the state machine's rules alone.
    fn oracle_allows(job: &Job, step: &Move, now: Timestamp) -> bool {
        use JobStatus::*;
        let lease_expired = job.lease_until.is_none_or(|t| t < now);
        match (job.status, step) {
            (AwaitingUpload, Move::Enqueue | Move::Reject | Move::Duplicate) => true,
            (Queued, Move::Start { .. }) => true,
            (Processing, Move::Start { .. }) => lease_expired,
            (
                Processing,
                Move::Complete { attempt } | Move::Fail { attempt } | Move::Release { attempt },
            ) => *attempt == job.attempts,
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn random_move_sequences_only_ever_follow_legal_edges(
            steps in prop::collection::vec((any_move(), 0u8..90), 1..40)
        ) {
            let mut job = new_job();
            let mut now = T0;
            for (step, pause) in &steps {
                now = now.plus(Duration::from_secs(u64::from(*pause)));
                let allowed = oracle_allows(&job, step, now);
                let transition = transition_for(step, now);
                match job.apply(&transition, now) {
                    Ok(next) => {
                        prop_assert!(allowed, "{:?} from {} was allowed", step, job.status);
                        prop_assert!(!job.status.is_final());
                        prop_assert_eq!(next.status, transition.target());
                        prop_assert_eq!(next.updated_at, now);
                        let counted = u32::from(matches!(step, Move::Start { .. }));
                        prop_assert_eq!(next.attempts, job.attempts + counted);
                        job = next;
                    }
                    Err(refused) => {
                        prop_assert!(!allowed, "{:?} from {} was refused", step, job.status);
                        prop_assert_eq!(refused.current, job.status);
                        prop_assert_eq!(refused.attempted, transition.target());
                    }
                }
            }
        }
    }
}
