//! In-memory adapters of every port, for unit tests of logic. They keep the
//! same rules as the AWS adapters (conditional transitions, owner-scoped
//! dedup) so handler tests exercise the real decisions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use crate::domain::{Job, JobId, JobStatus, Owner, Sha256Hex, Timestamp, Transition, WebhookState};
use crate::ports::{
    BlobError, BlobStore, Document, EventPublisher, JobEvent, JobMessage, JobPage, JobQueue,
    JobStore, ListQuery, ObjectInfo, OcrEngine, OcrError, OcrResult, PendingCursor, PendingPage,
    PresignedRequest, PublishError, QueueError, RateDecision, RateLimiter, RateScope, SecretError,
    SecretSource, StoreError, UploadSlot, window_of,
};

#[derive(Default)]
pub struct MemoryJobStore {
    jobs: Mutex<HashMap<JobId, Job>>,
    /// Transitions to this status fail, this many more times.
    failing_transitions: Mutex<Option<(JobStatus, u32)>>,
}

/// What the in-memory store answers when told to fail: a store that did not answer.
#[derive(Debug, thiserror::Error)]
#[error("the job store did not answer (injected)")]
pub struct Unavailable;

impl MemoryJobStore {
    /// The next `count` transitions to `target` fail as an unreachable store would.
    pub fn fail_transitions_to(&self, target: JobStatus, count: u32) {
        *self.failing_transitions.lock().unwrap() = Some((target, count));
    }

    pub fn all(&self) -> Vec<Job> {
        self.jobs.lock().unwrap().values().cloned().collect()
    }
}

#[async_trait]
impl JobStore for MemoryJobStore {
    async fn create(&self, job: &Job) -> Result<(), StoreError> {
        let mut jobs = self.jobs.lock().unwrap();
        if jobs.contains_key(&job.job_id) {
            return Err(StoreError::AlreadyExists(job.job_id.clone()));
        }
        jobs.insert(job.job_id.clone(), job.clone());
        Ok(())
    }

    async fn get(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        let now = Timestamp::now();
        Ok(self
            .jobs
            .lock()
            .unwrap()
            .get(id)
            .filter(|job| !job.is_expired(now))
            .cloned())
    }

    async fn transition(
        &self,
        id: &JobId,
        transition: &Transition,
        now: Timestamp,
    ) -> Result<Job, StoreError> {
        if let Some((target, left)) = self.failing_transitions.lock().unwrap().as_mut()
            && *target == transition.target()
            && *left > 0
        {
            *left -= 1;
            return Err(StoreError::backend(Unavailable));
        }
        let mut jobs = self.jobs.lock().unwrap();
        let job = jobs
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        let next = job.apply(transition, now)?;
        *job = next.clone();
        Ok(next)
    }

    async fn list_by_owner(&self, owner: &Owner, query: &ListQuery) -> Result<JobPage, StoreError> {
        let after: Option<(Timestamp, JobId)> = match &query.cursor {
            None => None,
            Some(cursor) => {
                let (at, id) = cursor.split_once('|').ok_or(StoreError::BadCursor)?;
                let at = at.parse().map_err(|_| StoreError::BadCursor)?;
                Some((
                    Timestamp::from_millis(at),
                    JobId::parse(id).map_err(|_| StoreError::BadCursor)?,
                ))
            }
        };
        let mut mine: Vec<Job> = self
            .jobs
            .lock()
            .unwrap()
            .values()
            .filter(|job| &job.owner == owner && !job.is_expired(Timestamp::now()))
            .filter(|job| query.admits(job))
            .cloned()
            .collect();
        mine.sort_by(|a, b| (b.created_at, &b.job_id).cmp(&(a.created_at, &a.job_id)));
        let start = after
            .map(|key| {
                mine.iter()
                    .position(|job| (job.created_at, job.job_id.clone()) < key)
                    .unwrap_or(mine.len())
            })
            .unwrap_or(0);
        let limit = query.limit.max(1) as usize;
        let jobs: Vec<Job> = mine.iter().skip(start).take(limit).cloned().collect();
        let next_cursor = (start + jobs.len() < mine.len())
            .then(|| {
                jobs.last()
                    .map(|job| format!("{}|{}", job.created_at.as_millis(), job.job_id))
            })
            .flatten();
        Ok(JobPage { jobs, next_cursor })
    }

    async fn find_completed_by_hash(
        &self,
        owner: &Owner,
        sha256: &Sha256Hex,
    ) -> Result<Option<Job>, StoreError> {
        Ok(self
            .jobs
            .lock()
            .unwrap()
            .values()
            .filter(|job| &job.owner == owner && job.status == JobStatus::Completed)
            .filter(|job| !job.is_expired(Timestamp::now()))
            .filter(|job| job.sha256() == Some(sha256))
            .max_by_key(|job| job.created_at)
            .cloned())
    }

    async fn delete(&self, id: &JobId) -> Result<(), StoreError> {
        self.jobs.lock().unwrap().remove(id);
        Ok(())
    }

    async fn unfinished_before(
        &self,
        before: Timestamp,
        after: Option<&PendingCursor>,
        limit: u32,
    ) -> Result<PendingPage, StoreError> {
        let now = Timestamp::now();
        let past = |job: &Job| {
            after.is_none_or(|cursor| {
                (job.updated_at, &job.job_id) > (cursor.updated_at, &cursor.job_id)
            })
        };
        let mut stale: Vec<Job> = self
            .jobs
            .lock()
            .unwrap()
            .values()
            .filter(|job| job.unfinished && job.updated_at < before && !job.is_expired(now))
            .filter(|job| past(job))
            .cloned()
            .collect();
        stale.sort_by(|a, b| (a.updated_at, &a.job_id).cmp(&(b.updated_at, &b.job_id)));
        let more = stale.len() > limit as usize;
        stale.truncate(limit as usize);
        let next = stale.last().filter(|_| more).map(|job| PendingCursor {
            updated_at: job.updated_at,
            job_id: job.job_id.clone(),
        });
        Ok(PendingPage { jobs: stale, next })
    }

    async fn record_webhook(&self, id: &JobId, state: &WebhookState) -> Result<(), StoreError> {
        let mut jobs = self.jobs.lock().unwrap();
        let job = jobs
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        if let Some(webhook) = &mut job.webhook {
            webhook.state = state.clone();
        }
        Ok(())
    }

    async fn mark_announced(&self, id: &JobId) -> Result<(), StoreError> {
        let mut jobs = self.jobs.lock().unwrap();
        let job = jobs
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;
        job.announced = true;
        Ok(())
    }
}

type DeleteHook = Box<dyn Fn(&str) + Send + Sync>;

/// Objects in a map; presigned URLs point at a fictitious host.
#[derive(Default)]
pub struct MemoryBlobStore {
    objects: Mutex<BTreeMap<String, (Bytes, String)>>,
    on_delete: Mutex<Option<DeleteHook>>,
}

impl MemoryBlobStore {
    /// Runs `hook` with the key before each delete: lets a test see what else
    /// had happened by then.
    pub fn on_delete(&self, hook: impl Fn(&str) + Send + Sync + 'static) {
        *self.on_delete.lock().unwrap() = Some(Box::new(hook));
    }

    pub fn keys(&self) -> Vec<String> {
        self.objects.lock().unwrap().keys().cloned().collect()
    }

    /// A content-derived tag, as S3's ETag of a single-part upload is.
    fn etag(body: &[u8]) -> String {
        let digest = Sha256::digest(body);
        format!(
            "\"{}\"",
            Sha256Hex::from_digest(digest.into())
                .as_str()
                .get(..32)
                .unwrap_or_default()
        )
    }

    fn object(&self, key: &str) -> Result<Bytes, BlobError> {
        self.objects
            .lock()
            .unwrap()
            .get(key)
            .map(|(body, _)| body.clone())
            .ok_or_else(|| BlobError::NotFound(key.to_owned()))
    }
}

fn memory_request(method: &str, key: &str, ttl: Duration) -> PresignedRequest {
    PresignedRequest {
        method: method.to_owned(),
        url: format!("https://documents.invalid/{key}"),
        headers: BTreeMap::new(),
        expires_at: Timestamp::now().plus(ttl),
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn presign_upload(
        &self,
        key: &str,
        slot: &UploadSlot,
        ttl: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        let mut request = memory_request("PUT", key, ttl);
        request
            .headers
            .insert("content-type".into(), slot.content_type.mime().to_owned());
        request.headers.insert("if-none-match".into(), "*".into());
        Ok(request)
    }

    async fn presign_download(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        Ok(memory_request("GET", key, ttl))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BlobError> {
        Ok(self
            .objects
            .lock()
            .unwrap()
            .get(key)
            .map(|(body, content_type)| ObjectInfo {
                size: body.len() as u64,
                content_type: Some(content_type.clone()),
                sha256: None,
                etag: Some(Self::etag(body)),
            }))
    }

    async fn read_range(&self, key: &str, start: u64, len: u64) -> Result<Bytes, BlobError> {
        let body = self.object(key)?;
        let start = (start as usize).min(body.len());
        let end = start.saturating_add(len as usize).min(body.len());
        Ok(body.slice(start..end))
    }

    async fn sha256(&self, key: &str) -> Result<Sha256Hex, BlobError> {
        Ok(Sha256Hex::from_digest(
            Sha256::digest(self.object(key)?).into(),
        ))
    }

    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        self.object(key)
    }

    async fn get_if_match(&self, key: &str, etag: &str) -> Result<Bytes, BlobError> {
        let body = self.object(key)?;
        if Self::etag(&body) != etag {
            return Err(BlobError::Changed(key.to_owned()));
        }
        Ok(body)
    }

    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), BlobError> {
        self.objects
            .lock()
            .unwrap()
            .insert(key.to_owned(), (body, content_type.to_owned()));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        if let Some(hook) = self.on_delete.lock().unwrap().as_ref() {
            hook(key);
        }
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u32, BlobError> {
        let keys: Vec<String> = self
            .objects
            .lock()
            .unwrap()
            .keys()
            .filter(|key| key.starts_with(prefix))
            .cloned()
            .collect();
        for key in &keys {
            self.delete(key).await?;
        }
        Ok(keys.len() as u32)
    }
}

/// Records what was sent (with its delay) and which receipts were delayed, and for how long.
#[derive(Default)]
pub struct MemoryJobQueue {
    pub sent: Mutex<Vec<(JobMessage, Duration)>>,
    pub delayed: Mutex<Vec<(String, Duration)>>,
}

#[async_trait]
impl JobQueue for MemoryJobQueue {
    async fn send(&self, message: &JobMessage) -> Result<(), QueueError> {
        self.send_later(message, Duration::ZERO).await
    }

    async fn send_later(&self, message: &JobMessage, delay: Duration) -> Result<(), QueueError> {
        self.sent.lock().unwrap().push((message.clone(), delay));
        Ok(())
    }

    async fn delay_redelivery(
        &self,
        receipt_handle: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        self.delayed
            .lock()
            .unwrap()
            .push((receipt_handle.to_owned(), delay));
        Ok(())
    }
}

#[derive(Default)]
pub struct MemoryEventPublisher {
    pub published: Mutex<Vec<JobEvent>>,
    /// How many of the next publishes fail, as an unreachable topic would.
    pub failures: Mutex<u32>,
}

#[derive(Debug, thiserror::Error)]
#[error("the topic is unreachable")]
struct Unreachable;

#[async_trait]
impl EventPublisher for MemoryEventPublisher {
    async fn publish(&self, event: &JobEvent) -> Result<(), PublishError> {
        let mut failures = self.failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Err(PublishError::backend(Unreachable));
        }
        self.published.lock().unwrap().push(event.clone());
        Ok(())
    }
}

/// Counts per scope and window, like the DynamoDB counter.
#[derive(Default)]
pub struct MemoryRateLimiter {
    hits: Mutex<HashMap<(RateScope, i64), u32>>,
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn acquire(
        &self,
        scope: &RateScope,
        limit: u32,
        window: Duration,
        now: Timestamp,
    ) -> Result<RateDecision, StoreError> {
        let (index, remaining) = window_of(now, window);
        let mut hits = self.hits.lock().unwrap();
        let count = hits.entry((scope.clone(), index)).or_default();
        if *count >= limit {
            return Ok(RateDecision::Limited {
                retry_after: remaining,
            });
        }
        *count += 1;
        Ok(RateDecision::Allowed)
    }
}

/// An OCR engine that answers from a script, then with a fixed result; counts its calls.
pub struct ScriptedOcr {
    replies: Mutex<std::collections::VecDeque<Result<OcrResult, OcrError>>>,
    otherwise: OcrResult,
    calls: std::sync::atomic::AtomicUsize,
}

impl ScriptedOcr {
    /// Answers `otherwise` to every call once the script is used up.
    pub fn new(otherwise: OcrResult) -> Self {
        Self {
            replies: Mutex::new(Default::default()),
            otherwise,
            calls: Default::default(),
        }
    }

    pub fn then(self, reply: Result<OcrResult, OcrError>) -> Self {
        self.replies.lock().unwrap().push_back(reply);
        self
    }

    pub fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl OcrEngine for ScriptedOcr {
    fn name(&self) -> &'static str {
        "scripted"
    }

    async fn recognize(&self, _document: &Document) -> Result<OcrResult, OcrError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let next = self.replies.lock().unwrap().pop_front();
        next.unwrap_or_else(|| Ok(self.otherwise.clone()))
    }
}

/// Fixed secrets by id.
#[derive(Default)]
pub struct MemorySecrets {
    values: HashMap<String, String>,
}

impl MemorySecrets {
    pub fn with(mut self, id: &str, value: &str) -> Self {
        self.values.insert(id.to_owned(), value.to_owned());
        self
    }
}

#[async_trait]
impl SecretSource for MemorySecrets {
    async fn secret(&self, id: &str) -> Result<SecretString, SecretError> {
        self.values
            .get(id)
            .map(|value| SecretString::from(value.clone()))
            .ok_or_else(|| SecretError::Empty(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FileType;

    fn job(owner: &str, at: i64) -> Job {
        Job::open(
            crate::testing::request(owner, "a.png", FileType::Png, 1),
            Timestamp::from_millis(at),
            Duration::from_secs(60),
            // Kept long enough that jobs made at the epoch are still within retention.
            Duration::from_secs(100 * 365 * 86_400),
        )
    }

    #[tokio::test]
    async fn listing_pages_through_one_owners_jobs_newest_first() {
        let store = MemoryJobStore::default();
        for at in 0..7 {
            store.create(&job("alice", at)).await.unwrap();
        }
        store.create(&job("bob", 3)).await.unwrap();
        let alice = Owner::parse("alice").unwrap();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .list_by_owner(
                    &alice,
                    &ListQuery {
                        status: None,
                        limit: 3,
                        cursor,
                        ..ListQuery::default()
                    },
                )
                .await
                .unwrap();
            seen.extend(page.jobs.iter().map(|job| job.created_at.as_millis()));
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(seen, vec![6, 5, 4, 3, 2, 1, 0]);
    }
}
