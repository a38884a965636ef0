//! The only legal moves of a job: each transition's guard (what must hold for
//! it to apply) and the fields it changes, which the stores apply atomically.

use serde_json::{Map, Value, json};

use super::{
    Completion, DedupKey, DocumentType, ErrorCode, FileType, HashKey, Job, JobError, JobField,
    JobId, JobStatus, Timestamp, search,
};

/// A move of a job from one status to another, with what it writes. Stores
/// apply it atomically: the guard and the changes in one conditional write.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    /// The upload checked out: awaiting_upload → queued.
    Enqueue {
        size: u64,
        digest: DedupKey,
        /// The type the upload's bytes show: the job's `content_type` from now on.
        detected: FileType,
        /// The type the client declared, kept beside it when the two differ.
        declared: FileType,
        /// The version of the upload that was checked: the worker reads exactly it.
        etag: Option<String>,
        /// A PDF's or TIFF's page count.
        pages: Option<u32>,
    },
    /// The upload broke a rule: awaiting_upload → rejected.
    Reject {
        error: JobError,
        size: u64,
        /// The media type the bytes show, when they show one (accepted or not).
        detected_mime: Option<String>,
    },
    /// The same owner already had these bytes read: awaiting_upload → completed, no OCR.
    CompleteAsDuplicate {
        of: JobId,
        digest: DedupKey,
        size: u64,
        completion: Completion,
        /// The earlier job's pages and type.
        pages: u32,
        document_type: Option<DocumentType>,
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
        /// The result's pages, and the document's type (the client's, or told from the text).
        pages: u32,
        document_type: Option<DocumentType>,
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
    Set(JobField, Value),
    Remove(JobField),
    /// Adds to a number field (absent counts as 0).
    Increment(JobField, i64),
    /// Sets the first field to the value the second holds.
    Copy(JobField, JobField),
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
        let mut changes = vec![
            set(JobField::Status, self.target()),
            set(JobField::UpdatedAt, now),
        ];
        changes.extend(self.own_changes(now));
        if self.target().is_final() {
            // Out of the sweeper's index: nothing is left to repair.
            changes.push(FieldChange::Remove(JobField::Pending));
        }
        changes
    }

    /// What this move writes besides the status, the time and the sweeper's index.
    fn own_changes(&self, now: Timestamp) -> Vec<FieldChange> {
        match self {
            Transition::Enqueue {
                size,
                digest,
                detected,
                declared,
                etag,
                pages,
            } => {
                let mut changes = enqueue_changes(*size, digest, etag.as_deref(), *pages, now);
                changes.extend(type_changes(*detected, *declared));
                changes
            }
            Transition::Reject {
                error,
                size,
                detected_mime,
            } => reject_changes(error, *size, detected_mime.as_deref(), now),
            Transition::CompleteAsDuplicate {
                of,
                digest,
                size,
                completion,
                pages,
                document_type,
            } => {
                let mut changes = duplicate_changes(of, digest, *size, now);
                changes.extend(completion_changes(completion, *pages, *document_type));
                changes
            }
            Transition::StartProcessing { lease_until } => start_changes(*lease_until, now),
            Transition::Progress {
                pages_done,
                lease_until,
                ..
            } => vec![
                set(JobField::PagesDone, pages_done),
                set(JobField::LeaseUntil, lease_until),
            ],
            Transition::Complete {
                completion,
                pages,
                document_type,
                ..
            } => complete_changes(completion, *pages, *document_type, now),
            Transition::Fail { error, .. } => fail_changes(error, Some(now)),
            Transition::Release { error, .. } => fail_changes(error, None),
            Transition::Expire => expire_changes(now),
            Transition::Yield { .. } => hand_back_changes(None, None),
            Transition::Postpone { error, .. } => {
                hand_back_changes(Some(error), Some(JobField::AuthFailures))
            }
            Transition::Throttle { error, .. } => {
                hand_back_changes(Some(error), Some(JobField::Throttles))
            }
        }
    }
}

fn set(field: JobField, value: impl serde::Serialize) -> FieldChange {
    FieldChange::Set(field, json!(value))
}

/// The verified hash, and the dedup index's key made of it.
fn hash_changes(digest: &DedupKey) -> Vec<FieldChange> {
    let hash = HashKey::from(digest);
    vec![
        set(JobField::Sha256, hash.sha256),
        set(JobField::OwnerSha256, hash.owner_sha256),
    ]
}

fn enqueue_changes(
    size: u64,
    digest: &DedupKey,
    etag: Option<&str>,
    pages: Option<u32>,
    now: Timestamp,
) -> Vec<FieldChange> {
    let mut changes = vec![set(JobField::Size, size), set(JobField::QueuedAt, now)];
    changes.extend(hash_changes(digest));
    if let Some(etag) = etag {
        changes.push(set(JobField::UploadEtag, etag));
    }
    if let Some(pages) = pages {
        changes.push(set(JobField::Pages, pages));
    }
    changes
}

/// The type the bytes show, which the job is read as from now on; the
/// declared one is kept beside it when it differs (a PNG named `.jpg`).
fn type_changes(detected: FileType, declared: FileType) -> Vec<FieldChange> {
    let mut changes = vec![set(JobField::DetectedMime, detected.mime())];
    if detected != declared {
        changes.push(set(JobField::ContentType, detected));
        changes.push(set(JobField::DeclaredType, declared));
    }
    changes
}

/// The error a job ends with (`completed_at`: when it fails for good) or
/// is handed back with; the lease is let go either way.
fn fail_changes(error: &JobError, failed_at: Option<Timestamp>) -> Vec<FieldChange> {
    let mut changes = vec![
        set(JobField::Error, error),
        FieldChange::Remove(JobField::LeaseUntil),
    ];
    if let Some(at) = failed_at {
        changes.push(set(JobField::CompletedAt, at));
    }
    changes
}

/// A worker takes the lease: one more attempt.
fn start_changes(lease_until: Timestamp, now: Timestamp) -> Vec<FieldChange> {
    vec![
        set(JobField::LeaseUntil, lease_until),
        set(JobField::StartedAt, now),
        FieldChange::Increment(JobField::Attempts, 1),
    ]
}

/// Completed from an earlier job's result: which one, and this upload's hash and size.
fn duplicate_changes(of: &JobId, digest: &DedupKey, size: u64, now: Timestamp) -> Vec<FieldChange> {
    let mut changes = vec![
        set(JobField::DeduplicatedFrom, of),
        set(JobField::Size, size),
        set(JobField::CompletedAt, now),
    ];
    changes.extend(hash_changes(digest));
    changes
}

fn reject_changes(
    error: &JobError,
    size: u64,
    detected_mime: Option<&str>,
    now: Timestamp,
) -> Vec<FieldChange> {
    let mut changes = vec![
        set(JobField::Error, error),
        set(JobField::CompletedAt, now),
        set(JobField::Size, size),
    ];
    if let Some(mime) = detected_mime {
        changes.push(set(JobField::DetectedMime, mime));
    }
    changes
}

/// The lease holder's read is recorded: what earlier attempts left is cleared.
fn complete_changes(
    completion: &Completion,
    pages: u32,
    document_type: Option<DocumentType>,
    now: Timestamp,
) -> Vec<FieldChange> {
    let mut changes = vec![set(JobField::CompletedAt, now)];
    changes.extend(
        [
            JobField::LeaseUntil,
            JobField::Error,
            JobField::AuthFailures,
            JobField::Throttles,
            JobField::PagesDone,
        ]
        .map(FieldChange::Remove),
    );
    changes.extend(completion_changes(completion, pages, document_type));
    changes
}

fn expire_changes(now: Timestamp) -> Vec<FieldChange> {
    let error = JobError::new(
        ErrorCode::UploadExpired,
        "no file was uploaded before the upload URL expired; open a new job",
    );
    vec![set(JobField::Error, error), set(JobField::CompletedAt, now)]
}

/// The lease released and the attempt handed back to a fresh message,
/// counted in `wake`; with the error and its backoff count, when there is one.
fn hand_back_changes(error: Option<&JobError>, count: Option<JobField>) -> Vec<FieldChange> {
    let mut changes: Vec<FieldChange> = error
        .map(|error| set(JobField::Error, error))
        .into_iter()
        .collect();
    changes.extend([
        FieldChange::Remove(JobField::LeaseUntil),
        FieldChange::Increment(JobField::Attempts, -1),
    ]);
    changes.extend(count.map(|count| FieldChange::Increment(count, 1)));
    changes.push(FieldChange::Increment(JobField::Wake, 1));
    changes
}

/// The completion's fields (as it serialises), the document's pages and
/// type, and the normal form of its text for search: a job with text enters
/// the sparse search index (`search_at`, a copy of `created_at`, is its sort key).
fn completion_changes(
    completion: &Completion,
    pages: u32,
    document_type: Option<DocumentType>,
) -> Vec<FieldChange> {
    let mut changes: Vec<FieldChange> = completion
        .fields()
        .into_iter()
        .map(|(field, value)| FieldChange::Set(field, value))
        .collect();
    changes.push(set(JobField::Pages, pages));
    if let Some(document_type) = document_type {
        changes.push(set(JobField::DocumentType, document_type));
    }
    if let Some(normal) = completion.text.as_deref().and_then(search::search_text) {
        changes.push(set(JobField::SearchText, normal));
        changes.push(FieldChange::Copy(JobField::SearchAt, JobField::CreatedAt));
    }
    changes
}

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
            FieldChange::Set(field, value) => {
                fields.insert(field.as_str().to_owned(), value.clone());
            }
            FieldChange::Remove(field) => {
                fields.remove(field.as_str());
            }
            FieldChange::Increment(field, by) => {
                let current = fields
                    .get(field.as_str())
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                fields.insert(field.as_str().to_owned(), json!(current + by));
            }
            FieldChange::Copy(field, from) => {
                if let Some(value) = fields.get(from.as_str()).cloned() {
                    fields.insert(field.as_str().to_owned(), value);
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
            text: Some("합계 12,000원".into()),
            text_truncated: false,
            confidence: 0.97,
            engine: "upstage".into(),
            model_version: "ocr-2.2.1".into(),
            result_key: "results/x.json".into(),
            needs_review: false,
            review_pages: Vec::new(),
            quality_issues: Vec::new(),
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
                    detected: FileType::Png,
                    declared: FileType::Png,
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
                    pages: 1,
                    document_type: Some(crate::domain::DocumentType::Receipt),
                },
                later,
            )
            .unwrap();
        assert_eq!(job.status, JobStatus::Completed);
        assert_eq!(job.lease_until, None);
        assert_eq!(job.text(), Some("합계 12,000원"));
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
                    detected: FileType::Png,
                    declared: FileType::Png,
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
                pages: 1,
                document_type: None,
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
        Progress { attempt: u32, lease_secs: u8 },
        Complete { attempt: u32 },
        Fail { attempt: u32 },
        Release { attempt: u32 },
        Postpone { attempt: u32 },
        Throttle { attempt: u32 },
        Yield { attempt: u32 },
        Expire,
    }

    impl Move {
        /// Whether the move hands its attempt back (the next take counts it again).
        fn hands_back(&self) -> bool {
            matches!(
                self,
                Move::Postpone { .. } | Move::Throttle { .. } | Move::Yield { .. }
            )
        }
    }

    fn any_move() -> impl Strategy<Value = Move> {
        prop_oneof![
            Just(Move::Enqueue),
            Just(Move::Reject),
            Just(Move::Duplicate),
            (1u8..120).prop_map(|lease_secs| Move::Start { lease_secs }),
            (0u32..4, 1u8..120).prop_map(|(attempt, lease_secs)| Move::Progress {
                attempt,
                lease_secs
            }),
            (0u32..4).prop_map(|attempt| Move::Complete { attempt }),
            (0u32..4).prop_map(|attempt| Move::Fail { attempt }),
            (0u32..4).prop_map(|attempt| Move::Release { attempt }),
            (0u32..4).prop_map(|attempt| Move::Postpone { attempt }),
            (0u32..4).prop_map(|attempt| Move::Throttle { attempt }),
            (0u32..4).prop_map(|attempt| Move::Yield { attempt }),
            Just(Move::Expire),
        ]
    }

    fn transition_for(step: &Move, now: Timestamp) -> Transition {
        let error = JobError::new(ErrorCode::OcrUnavailable, "the OCR service did not answer");
        let lease = |secs: u8| now.plus(Duration::from_secs(u64::from(secs)));
        match *step {
            Move::Enqueue => Transition::Enqueue {
                size: 10,
                digest: digest(),
                detected: FileType::Png,
                declared: FileType::Png,
                etag: None,
                pages: None,
            },
            Move::Reject => Transition::Reject {
                error,
                size: 10,
                detected_mime: None,
            },
            Move::Duplicate => Transition::CompleteAsDuplicate {
                of: JobId::new(),
                digest: digest(),
                size: 10,
                completion: completion(),
                pages: 1,
                document_type: None,
            },
            Move::Start { lease_secs } => Transition::StartProcessing {
                lease_until: lease(lease_secs),
            },
            Move::Progress {
                attempt,
                lease_secs,
            } => Transition::Progress {
                attempt,
                pages_done: 100,
                lease_until: lease(lease_secs),
            },
            Move::Complete { attempt } => Transition::Complete {
                attempt,
                completion: completion(),
                pages: 1,
                document_type: None,
            },
            Move::Fail { attempt } => Transition::Fail { attempt, error },
            Move::Release { attempt } => Transition::Release { attempt, error },
            Move::Postpone { attempt } => Transition::Postpone { attempt, error },
            Move::Throttle { attempt } => Transition::Throttle { attempt, error },
            Move::Yield { attempt } => Transition::Yield { attempt },
            Move::Expire => Transition::Expire,
        }
    }

    /// Whether `step` may run on `job` at `now`, decided from the state machine's rules alone.
    fn oracle_allows(job: &Job, step: &Move, now: Timestamp) -> bool {
        use JobStatus::*;
        let lease_expired = job.lease_until.is_none_or(|t| t < now);
        match (job.status, step) {
            (AwaitingUpload, Move::Enqueue | Move::Reject | Move::Duplicate) => true,
            (AwaitingUpload, Move::Expire) => now > job.upload_expires_at,
            (Queued, Move::Start { .. }) => true,
            (Processing, Move::Start { .. }) => lease_expired,
            (
                Processing,
                Move::Progress { attempt, .. }
                | Move::Complete { attempt }
                | Move::Fail { attempt }
                | Move::Release { attempt }
                | Move::Postpone { attempt }
                | Move::Throttle { attempt }
                | Move::Yield { attempt },
            ) => *attempt == job.attempts,
            _ => false,
        }
    }

    /// The attempt count after an allowed `step`: a take counts one, a
    /// hand-back returns it, the rest keep it.
    fn oracle_attempts(job: &Job, step: &Move) -> u32 {
        match step {
            Move::Start { .. } => job.attempts + 1,
            _ if step.hands_back() => job.attempts - 1,
            _ => job.attempts,
        }
    }

    /// The counters after an allowed `step`: (auth failures, throttles, wake).
    fn oracle_counters(job: &Job, step: &Move) -> (u32, u32, u32) {
        let (auth, throttles, wake) = (job.auth_failures, job.throttles, job.wake);
        match step {
            Move::Postpone { .. } => (auth + 1, throttles, wake + 1),
            Move::Throttle { .. } => (auth, throttles + 1, wake + 1),
            Move::Yield { .. } => (auth, throttles, wake + 1),
            Move::Complete { .. } => (0, 0, wake),
            _ => (auth, throttles, wake),
        }
    }

    /// What must hold of `next`, the job after an allowed `step` on `job`.
    fn check_allowed(
        job: &Job,
        next: &Job,
        step: &Move,
        now: Timestamp,
    ) -> Result<(), TestCaseError> {
        let target = transition_for(step, now).target();
        prop_assert!(!job.status.is_final());
        prop_assert_eq!(next.status, target);
        prop_assert_eq!(next.updated_at, now);
        prop_assert_eq!(next.attempts, oracle_attempts(job, step));
        prop_assert_eq!(
            (next.auth_failures, next.throttles, next.wake),
            oracle_counters(job, step)
        );
        // The lease is held exactly while processing.
        prop_assert_eq!(next.lease_until.is_some(), target == JobStatus::Processing);
        // Unfinished jobs, and only they, stay in the sweeper's index.
        prop_assert_eq!(next.unfinished, !target.is_final());
        prop_assert_eq!(next.completion.is_some(), target == JobStatus::Completed);
        prop_assert_eq!(
            next.pages_done,
            match step {
                Move::Progress { .. } => 100,
                Move::Complete { .. } => 0,
                _ => job.pages_done,
            }
        );
        Ok(())
    }

    proptest! {
        #[test]
        fn random_move_sequences_only_ever_follow_legal_edges(
            steps in prop::collection::vec((any_move(), 0u8..90), 1..40)
        ) {
            let mut job = new_job();
            let mut now = T0;
            for (step, pause) in &steps {
                // Pauses up to 20 minutes: upload slots (15 minutes) and leases run out.
                now = now.plus(Duration::from_secs(u64::from(*pause) * 15));
                let allowed = oracle_allows(&job, step, now);
                let transition = transition_for(step, now);
                match job.apply(&transition, now) {
                    Ok(next) => {
                        prop_assert!(allowed, "{:?} from {} was allowed", step, job.status);
                        check_allowed(&job, &next, step, now)?;
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

        #[test]
        fn every_kind_of_move_is_drawn_and_some_hand_an_attempt_back(
            steps in prop::collection::vec(any_move(), 400)
        ) {
            // The strategy reaches every transition, not the easy seven alone.
            let kinds: std::collections::HashSet<_> = steps
                .iter()
                .map(std::mem::discriminant)
                .collect();
            prop_assert_eq!(kinds.len(), 12);
            prop_assert!(steps.iter().any(Move::hands_back));
        }
    }
}
