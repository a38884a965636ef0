//! The sweeper, run on a schedule: it owns the rule that no job is left stuck.
//! Unfinished jobs unchanged for longer than any retry or lease are found on
//! the sparse `by_pending` index, oldest first, a page at a time; queued ones
//! and ones under a lapsed lease are sent to the OCR queue again, and uploads
//! that never came are expired and announced. Jobs it leaves alone (an upload
//! waiting for ingest's replay) are paged past, so that however many of them
//! sit at the front, the jobs behind them are still reached; a run looks at
//! `max_jobs` at most, and counts the ones pending for over an hour.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Diagnostic, LambdaEvent};
use ocr_shared::domain::{Job, JobId, JobStatus, Timestamp, Transition};
use ocr_shared::metrics::{self, Metric};
use ocr_shared::ports::{
    BlobError, BlobStore, EventPublisher, JobMessage, JobQueue, JobStore, PublishError, QueueError,
    StoreError, announce, transition_unless_moved,
};
use serde::Serialize;
use serde_json::Value;
use tracing::{error, info, instrument, warn};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepSettings {
    /// How long a job may sit unchanged before the sweeper looks at it: longer
    /// than any retry delay and lease, so that it only meets jobs nobody moves.
    pub stale_after: Duration,
    /// Jobs looked at in one run at most, over as many pages as that takes:
    /// a run's cost is bounded.
    pub max_jobs: u32,
}

/// Jobs read from the index in one page.
pub const PAGE: u32 = 100;

/// A job unchanged for this long is counted as pending too long
/// (`JobsPendingOverAnHour`, alarmed): a job the sweeper cannot move.
pub const PENDING_TOO_LONG: Duration = Duration::from_secs(3600);

pub struct Sweeper {
    pub jobs: Arc<dyn JobStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub events: Arc<dyn EventPublisher>,
    pub settings: SweepSettings,
}

/// What one run did (also the invocation's result, for `ocr invoke`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Sweep {
    /// Queued, or processing under a lapsed lease: sent to the OCR queue again.
    pub requeued: Vec<JobId>,
    /// Still awaiting an upload whose URL ran out: now `expired`, and announced.
    pub expired: Vec<JobId>,
    /// Looked at and left alone (a live lease, an upload awaiting ingest, moved meanwhile).
    pub left: u32,
    /// Could not be handled this run; the next run tries again.
    pub failed: u32,
    /// Of those looked at, unchanged for over `PENDING_TOO_LONG`.
    pub pending_over_an_hour: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("the job's event could not be published: {0}")]
    Publish(#[from] PublishError),
    /// Reported as an invocation error, so the function's error alarm sees it.
    #[error("{failed} job(s) could not be swept; the next run tries again")]
    Incomplete { failed: u32 },
}

impl SweepError {
    /// Lambda's `errorType` for this failure: what logs and metrics group by.
    pub fn kind(&self) -> &'static str {
        match self {
            SweepError::Store(_) => "JobStoreUnavailable",
            SweepError::Blob(_) => "BucketUnavailable",
            SweepError::Queue(_) => "QueueUnavailable",
            SweepError::Publish(_) => "PublishFailed",
            SweepError::Incomplete { .. } => "SweepIncomplete",
        }
    }
}

impl From<SweepError> for Diagnostic {
    fn from(error: SweepError) -> Self {
        Diagnostic {
            error_type: error.kind().to_owned(),
            error_message: error.to_string(),
        }
    }
}

enum Action {
    Requeued,
    Expired,
    Left,
}

/// Entry point (an EventBridge schedule; the event itself carries nothing we need).
pub async fn handle(_event: LambdaEvent<Value>, sweeper: &Sweeper) -> Result<Sweep, SweepError> {
    let sweep = sweeper.sweep(Timestamp::now()).await?;
    if sweep.failed > 0 {
        return Err(SweepError::Incomplete {
            failed: sweep.failed,
        });
    }
    Ok(sweep)
}

impl Sweeper {
    /// One run at `now`: every unfinished job unchanged for `stale_after`, oldest first.
    #[instrument(skip(self, now))]
    pub async fn sweep(&self, now: Timestamp) -> Result<Sweep, SweepError> {
        let ago = |age: Duration| {
            Timestamp::from_millis(now.as_millis().saturating_sub(age.as_millis() as i64))
        };
        let (cutoff, too_long) = (ago(self.settings.stale_after), ago(PENDING_TOO_LONG));
        let mut sweep = Sweep::default();
        let (mut looked, mut after) = (0, None);
        while looked < self.settings.max_jobs {
            let limit = PAGE.min(self.settings.max_jobs - looked);
            let page = self
                .jobs
                .unfinished_before(cutoff, after.as_ref(), limit)
                .await?;
            looked += limit;
            for job in page.jobs {
                if job.updated_at < too_long {
                    sweep.pending_over_an_hour += 1;
                }
                self.look_at(job, now, &mut sweep).await;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        metrics::record(
            Metric::JobsPendingOverAnHour,
            f64::from(sweep.pending_over_an_hour),
        );
        info!(
            requeued = sweep.requeued.len(),
            expired = sweep.expired.len(),
            left = sweep.left,
            failed = sweep.failed,
            pending_over_an_hour = sweep.pending_over_an_hour,
            "sweep done"
        );
        Ok(sweep)
    }

    /// Handles one job, noting in `sweep` what became of it.
    async fn look_at(&self, job: Job, now: Timestamp, sweep: &mut Sweep) {
        let id = job.job_id.clone();
        match self.job(job, now).await {
            Ok(Action::Requeued) => sweep.requeued.push(id),
            Ok(Action::Expired) => sweep.expired.push(id),
            Ok(Action::Left) => sweep.left += 1,
            Err(error) => {
                error!(job_id = %id, %error, "job not swept");
                sweep.failed += 1;
            }
        }
    }

    async fn job(&self, job: Job, now: Timestamp) -> Result<Action, SweepError> {
        match job.status {
            JobStatus::AwaitingUpload if now > job.upload_expires_at => self.expire(job, now).await,
            JobStatus::Queued => self.requeue(&job, "queued with no message moving it").await,
            JobStatus::Processing if !job.lease_is_live(now) => {
                self.requeue(&job, "its worker's lease lapsed").await
            }
            _ => Ok(Action::Left),
        }
    }

    /// Sends the job to the OCR queue again, as its live message (the same
    /// `wake`). A message still in flight makes this one a duplicate, which the
    /// worker's conditional lease makes harmless.
    async fn requeue(&self, job: &Job, why: &'static str) -> Result<Action, SweepError> {
        self.queue.send(&JobMessage::of(job)).await?;
        warn!(job_id = %job.job_id, status = %job.status, why, "stuck job sent to the OCR queue again");
        Ok(Action::Requeued)
    }

    async fn expire(&self, job: Job, now: Timestamp) -> Result<Action, SweepError> {
        // An upload that arrived but was never ingested waits for ingest's
        // replay (its failure queue is alarmed): expiring it would lose it.
        if self.blobs.head(&job.job_id.upload_key()).await?.is_some() {
            warn!(job_id = %job.job_id, "an upload awaits ingest; not expired");
            return Ok(Action::Left);
        }
        let Some(expired) =
            transition_unless_moved(self.jobs.as_ref(), &job.job_id, &Transition::Expire, now)
                .await?
        else {
            return Ok(Action::Left);
        };
        announce(self.events.as_ref(), self.jobs.as_ref(), &expired, now).await?;
        info!(job_id = %job.job_id, "upload slot ran out unused; job expired");
        Ok(Action::Expired)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ocr_shared::domain::{DedupKey, FileType, Owner, Sha256Hex};
    use ocr_shared::memory::{
        MemoryBlobStore, MemoryEventPublisher, MemoryJobQueue, MemoryJobStore,
    };
    use ocr_shared::ports::JobEventType;
    use ocr_shared::testing;

    use super::*;

    const HOUR: i64 = 3_600_000;

    struct Given {
        jobs: Arc<MemoryJobStore>,
        blobs: Arc<MemoryBlobStore>,
        queue: Arc<MemoryJobQueue>,
        events: Arc<MemoryEventPublisher>,
        sweeper: Sweeper,
    }

    fn given(max_jobs: u32) -> Given {
        let jobs = Arc::new(MemoryJobStore::default());
        let blobs = Arc::new(MemoryBlobStore::default());
        let queue = Arc::new(MemoryJobQueue::default());
        let events = Arc::new(MemoryEventPublisher::default());
        let sweeper = Sweeper {
            jobs: jobs.clone(),
            blobs: blobs.clone(),
            queue: queue.clone(),
            events: events.clone(),
            settings: SweepSettings {
                stale_after: Duration::from_secs(900),
                max_jobs,
            },
        };
        Given {
            jobs,
            blobs,
            queue,
            events,
            sweeper,
        }
    }

    fn ago(now: Timestamp, millis: i64) -> Timestamp {
        Timestamp::from_millis(now.as_millis() - millis)
    }

    /// A job opened at `at` (its upload URL lasting 15 minutes), moved by `steps` at `at`.
    async fn job_at(given: &Given, at: Timestamp, steps: &[Transition]) -> Job {
        let job = testing::open(
            testing::request("alice", "계약서.pdf", FileType::Pdf, 10),
            at,
        );
        testing::create_and_move(given.jobs.as_ref(), &job, steps, at).await
    }

    fn enqueue() -> Transition {
        Transition::Enqueue {
            size: 10,
            digest: DedupKey {
                owner: Owner::parse("alice").unwrap(),
                sha256: Sha256Hex::from_digest([9; 32]),
            },
            detected: FileType::Pdf,
            declared: FileType::Pdf,
            etag: None,
            pages: None,
        }
    }

    fn sent(given: &Given) -> Vec<JobId> {
        let sent = given.queue.sent.lock().unwrap();
        sent.iter()
            .map(|(message, _)| message.job_id.clone())
            .collect()
    }

    #[tokio::test]
    async fn a_job_left_queued_is_sent_again_and_a_fresh_one_is_not_touched() {
        let given = given(100);
        let now = Timestamp::now();
        let stuck = job_at(&given, ago(now, HOUR), &[enqueue()]).await;
        let fresh = job_at(&given, ago(now, 60_000), &[enqueue()]).await;

        let sweep = given.sweeper.sweep(now).await.unwrap();

        assert_eq!(sweep.requeued, vec![stuck.job_id.clone()]);
        assert_eq!(sent(&given), vec![stuck.job_id]);
        assert!(!sent(&given).contains(&fresh.job_id));
    }

    #[tokio::test]
    async fn a_lapsed_lease_is_sent_again_and_a_live_one_left_alone() {
        let given = given(100);
        let now = Timestamp::now();
        let start = |lease_until| Transition::StartProcessing { lease_until };
        let lapsed = job_at(
            &given,
            ago(now, HOUR),
            &[enqueue(), start(ago(now, HOUR - 300_000))],
        )
        .await;
        let live = job_at(
            &given,
            ago(now, HOUR),
            &[enqueue(), start(now.plus(Duration::from_secs(600)))],
        )
        .await;

        let sweep = given.sweeper.sweep(now).await.unwrap();

        assert_eq!(sweep.requeued, vec![lapsed.job_id.clone()]);
        assert_eq!(sweep.left, 1);
        assert!(!sent(&given).contains(&live.job_id));
    }

    #[tokio::test]
    async fn an_abandoned_upload_expires_once_and_is_announced() {
        let given = given(100);
        let now = Timestamp::now();
        let abandoned = job_at(&given, ago(now, HOUR), &[]).await;

        let first = given.sweeper.sweep(now).await.unwrap();
        let second = given.sweeper.sweep(now).await.unwrap();

        assert_eq!(first.expired, vec![abandoned.job_id.clone()]);
        assert_eq!(
            second,
            Sweep::default(),
            "an expired job is no longer unfinished"
        );
        let stored = given.jobs.get(&abandoned.job_id).await.unwrap().unwrap();
        assert_eq!(stored.status, JobStatus::Expired);
        assert_eq!(stored.error.unwrap().code, "upload_expired");
        assert!(stored.announced);
        let published = given.events.published.lock().unwrap().clone();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].event_type, JobEventType::Expired);
    }

    #[tokio::test]
    async fn an_upload_that_arrived_but_was_never_ingested_is_not_expired() {
        let given = given(100);
        let now = Timestamp::now();
        let waiting = job_at(&given, ago(now, HOUR), &[]).await;
        given
            .blobs
            .put(
                &waiting.job_id.upload_key(),
                Bytes::from_static(b"%PDF-"),
                "application/pdf",
            )
            .await
            .unwrap();

        let sweep = given.sweeper.sweep(now).await.unwrap();

        assert_eq!((sweep.expired.len(), sweep.left), (0, 1));
        let stored = given.jobs.get(&waiting.job_id).await.unwrap().unwrap();
        assert_eq!(stored.status, JobStatus::AwaitingUpload);
    }

    #[tokio::test]
    async fn a_run_looks_at_no_more_than_its_bound_oldest_first() {
        let given = given(2);
        let now = Timestamp::now();
        let mut stuck = Vec::new();
        for hours in [5, 3, 4, 2, 6] {
            stuck.push((
                hours,
                job_at(&given, ago(now, hours * HOUR), &[enqueue()])
                    .await
                    .job_id,
            ));
        }
        stuck.sort_by_key(|(hours, _)| -hours);

        let sweep = given.sweeper.sweep(now).await.unwrap();

        let oldest: Vec<JobId> = stuck.iter().take(2).map(|(_, id)| id.clone()).collect();
        assert_eq!(sweep.requeued, oldest);
    }

    /// `count` uploads that arrived `hours` ago and were never ingested.
    async fn waiting_for_ingest(given: &Given, now: Timestamp, hours: i64, count: usize) {
        for i in 0..count {
            let at = ago(now, hours * HOUR - i as i64);
            let waiting = job_at(given, at, &[]).await;
            let key = waiting.job_id.upload_key();
            let pdf = Bytes::from_static(b"%PDF-");
            given.blobs.put(&key, pdf, "application/pdf").await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_run_pages_past_the_jobs_it_leaves_alone_up_to_its_bound() {
        let now = Timestamp::now();
        // Two and a half pages of uploads waiting for ingest, then a stuck job.
        let paged = given(PAGE * 3);
        waiting_for_ingest(&paged, now, 3, 250).await;
        let stuck = job_at(&paged, ago(now, HOUR / 2), &[enqueue()]).await;

        let sweep = paged.sweeper.sweep(now).await.unwrap();

        assert_eq!(sweep.requeued, vec![stuck.job_id]);
        assert_eq!((sweep.left, sweep.pending_over_an_hour), (250, 250));

        // The bound holds: a run that may look at 120 looks at 120.
        let bounded = given(120);
        waiting_for_ingest(&bounded, now, 3, 250).await;
        let sweep = bounded.sweeper.sweep(now).await.unwrap();
        assert_eq!((sweep.left, sweep.requeued.len()), (120, 0));
    }

    #[tokio::test]
    async fn finished_jobs_are_never_swept() {
        let given = given(100);
        let now = Timestamp::now();
        let rejected = job_at(
            &given,
            ago(now, HOUR),
            &[Transition::Reject {
                error: ocr_shared::domain::JobError::new(
                    ocr_shared::domain::ErrorCode::EmptyFile,
                    "empty",
                ),
                size: 0,
                detected_mime: None,
            }],
        )
        .await;
        assert!(!rejected.unfinished);
        assert_eq!(given.sweeper.sweep(now).await.unwrap(), Sweep::default());
    }
}
