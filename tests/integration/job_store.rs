use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ocr_shared::domain::{JobError, JobId, JobStatus, Timestamp, Transition};
use ocr_shared::ports::{JobStore, ListQuery, StoreError};

use crate::helpers::{completed_job, completion, job_store, new_job, owner, queued_job, sha};

#[tokio::test]
async fn ten_workers_race_for_one_job_and_exactly_one_takes_it() {
    let store = Arc::new(job_store().await);
    let now = Timestamp::now();
    let job = queued_job(store.as_ref(), "alice", sha(1), now).await;

    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let store = Arc::clone(&store);
        let id = job.job_id.clone();
        racers.spawn(async move {
            let lease_until = now.plus(Duration::from_secs(300));
            store
                .transition(&id, &Transition::StartProcessing { lease_until }, now)
                .await
        });
    }
    let results = racers.join_all().await;

    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert_eq!(winners[0].status, JobStatus::Processing);
    assert_eq!(winners[0].attempts, 1);
    for result in results.iter().filter(|r| r.is_err()) {
        match result {
            Err(StoreError::Refused(refused)) => {
                assert_eq!(refused.current, JobStatus::Processing);
                assert_eq!(refused.attempted, JobStatus::Processing);
            }
            other => panic!("a loser must be told the job is taken, got {other:?}"),
        }
    }
    let stored = store.get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(stored.attempts, 1, "only the winner counted an attempt");
}

#[tokio::test]
async fn a_job_moves_through_every_stage_and_keeps_what_each_wrote() {
    let store = &job_store().await;
    let t0 = Timestamp::now();
    let job = queued_job(store, "alice", sha(2), t0).await;
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.sha256().cloned(), Some(sha(2)));
    assert_eq!(
        job.hash
            .as_ref()
            .and_then(|hash| hash.owner_sha256.as_deref()),
        Some(format!("alice#{}", sha(2)).as_str())
    );
    assert_eq!(job.queued_at, Some(t0));

    let lease = t0.plus(Duration::from_secs(60));
    let taken = store
        .transition(
            &job.job_id,
            &Transition::StartProcessing { lease_until: lease },
            t0,
        )
        .await
        .unwrap();
    assert_eq!((taken.attempts, taken.lease_until), (1, Some(lease)));

    let error = JobError::new(
        ocr_shared::domain::ErrorCode::OcrUnavailable,
        "Upstage answered 429",
    );
    let released = store
        .transition(
            &job.job_id,
            &Transition::Release {
                attempt: 1,
                error: error.clone(),
            },
            t0,
        )
        .await
        .unwrap();
    assert_eq!(released.status, JobStatus::Queued);
    assert_eq!(released.lease_until, None);
    assert_eq!(released.error, Some(error));

    let retaken = store
        .transition(
            &job.job_id,
            &Transition::StartProcessing { lease_until: lease },
            t0,
        )
        .await
        .unwrap();
    assert_eq!(retaken.attempts, 2);

    // The first attempt's lease is gone: it can no longer finish the job.
    let stale = store
        .transition(
            &job.job_id,
            &Transition::Complete {
                attempt: 1,
                completion: completion("늦은 결과"),
                pages: 2,
                document_type: Some(ocr_shared::domain::DocumentType::BusinessRegistration),
            },
            t0,
        )
        .await;
    assert!(matches!(stale, Err(StoreError::Refused(_))), "{stale:?}");

    let t1 = t0.plus(Duration::from_secs(3));
    let done = store
        .transition(
            &job.job_id,
            &Transition::Complete {
                attempt: 2,
                completion: completion("대표자 홍길동"),
                pages: 2,
                document_type: Some(ocr_shared::domain::DocumentType::BusinessRegistration),
            },
            t1,
        )
        .await
        .unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.text(), Some("대표자 홍길동"));
    assert_eq!(done.completion().map(|read| read.confidence), Some(0.93));
    assert_eq!(done.error, None);
    assert_eq!(done.lease_until, None);
    assert_eq!(done.completed_at, Some(t1));
    assert_eq!(store.get(&job.job_id).await.unwrap(), Some(done.clone()));

    // A finished job never moves again.
    let again = store
        .transition(
            &job.job_id,
            &Transition::StartProcessing { lease_until: lease },
            t1,
        )
        .await;
    match again {
        Err(StoreError::Refused(refused)) => {
            assert_eq!(refused.current, JobStatus::Completed);
            assert_eq!(refused.job.map(|job| *job), Some(done));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_a_live_one_is_not() {
    let store = &job_store().await;
    let t0 = Timestamp::now();
    let job = queued_job(store, "alice", sha(3), t0).await;
    let lease = t0.plus(Duration::from_secs(30));
    store
        .transition(
            &job.job_id,
            &Transition::StartProcessing { lease_until: lease },
            t0,
        )
        .await
        .unwrap();

    let during = t0.plus(Duration::from_secs(10));
    let refused = store
        .transition(
            &job.job_id,
            &Transition::StartProcessing {
                lease_until: during,
            },
            during,
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Refused(_))),
        "{refused:?}"
    );

    let after = t0.plus(Duration::from_secs(31));
    let taken = store
        .transition(
            &job.job_id,
            &Transition::StartProcessing {
                lease_until: after.plus(Duration::from_secs(30)),
            },
            after,
        )
        .await
        .unwrap();
    assert_eq!(taken.attempts, 2);
}

#[tokio::test]
async fn creating_twice_and_moving_a_missing_job_are_typed_errors() {
    let store = &job_store().await;
    let job = new_job("alice", Timestamp::now());
    store.create(&job).await.unwrap();
    assert!(matches!(
        store.create(&job).await,
        Err(StoreError::AlreadyExists(_))
    ));

    let missing = JobId::new();
    let result = store
        .transition(
            &missing,
            &Transition::StartProcessing {
                lease_until: Timestamp::now(),
            },
            Timestamp::now(),
        )
        .await;
    assert!(matches!(result, Err(StoreError::NotFound(id)) if id == missing));
    assert_eq!(store.get(&missing).await.unwrap(), None);

    store.delete(&job.job_id).await.unwrap();
    assert_eq!(store.get(&job.job_id).await.unwrap(), None);
}

#[tokio::test]
async fn listing_pages_through_55_jobs_with_none_twice_and_none_missed() {
    let store = &job_store().await;
    let base = Timestamp::now();
    let mut created = HashSet::new();
    for i in 0..55 {
        let job = new_job("alice", base.plus(Duration::from_millis(i)));
        store.create(&job).await.unwrap();
        created.insert(job.job_id);
    }
    for i in 0..5 {
        store
            .create(&new_job("bob", base.plus(Duration::from_millis(i))))
            .await
            .unwrap();
    }

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_by_owner(
                &owner("alice"),
                &ListQuery {
                    status: None,
                    limit: 10,
                    cursor,
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap();
        pages += 1;
        assert!(page.jobs.len() <= 10);
        seen.extend(page.jobs);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
        assert!(pages < 20, "the listing does not end");
    }
    let ids: Vec<JobId> = seen.iter().map(|job| job.job_id.clone()).collect();
    let unique: HashSet<JobId> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), 55, "every job once");
    assert_eq!(unique, created, "exactly alice's jobs");
    assert!(
        seen.windows(2)
            .all(|pair| pair[0].created_at >= pair[1].created_at),
        "newest first"
    );
    assert!(pages >= 6);
}

#[tokio::test]
async fn listing_by_status_fills_pages_from_a_mixed_history() {
    let store = &job_store().await;
    let base = Timestamp::now();
    let mut completed = HashSet::new();
    for i in 0..12u8 {
        let at = base.plus(Duration::from_millis(u64::from(i)));
        if i % 3 == 0 {
            completed.insert(completed_job(store, "alice", sha(100 + i), at).await.job_id);
        } else {
            store.create(&new_job("alice", at)).await.unwrap();
        }
    }
    let mut found = HashSet::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_by_owner(
                &owner("alice"),
                &ListQuery {
                    status: Some(JobStatus::Completed),
                    limit: 3,
                    cursor,
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap();
        assert!(
            page.jobs
                .iter()
                .all(|job| job.status == JobStatus::Completed)
        );
        found.extend(page.jobs.into_iter().map(|job| job.job_id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(found, completed);
}

#[tokio::test]
async fn a_cursor_is_opaque_and_bound_to_its_owner() {
    let store = &job_store().await;
    let base = Timestamp::now();
    for i in 0..3 {
        store
            .create(&new_job("alice", base.plus(Duration::from_millis(i))))
            .await
            .unwrap();
    }
    let page = store
        .list_by_owner(
            &owner("alice"),
            &ListQuery {
                status: None,
                limit: 1,
                cursor: None,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    let cursor = page.next_cursor.expect("more than one page");
    assert!(
        !cursor.contains("alice"),
        "the cursor does not show its contents: {cursor}"
    );

    let stolen = store
        .list_by_owner(
            &owner("mallory"),
            &ListQuery {
                status: None,
                limit: 1,
                cursor: Some(cursor),
                ..ListQuery::default()
            },
        )
        .await;
    assert!(matches!(stolen, Err(StoreError::BadCursor)), "{stolen:?}");
    let garbage = store
        .list_by_owner(
            &owner("alice"),
            &ListQuery {
                status: None,
                limit: 1,
                cursor: Some("not-a-cursor".into()),
                ..ListQuery::default()
            },
        )
        .await;
    assert!(matches!(garbage, Err(StoreError::BadCursor)), "{garbage:?}");
}

#[tokio::test]
async fn dedup_finds_only_the_same_owners_completed_job_with_those_bytes() {
    let store = &job_store().await;
    let t0 = Timestamp::now();
    let digest = sha(7);
    let alices = completed_job(store, "alice", digest.clone(), t0).await;
    // Same bytes, not finished yet: not a match.
    queued_job(
        store,
        "alice",
        digest.clone(),
        t0.plus(Duration::from_secs(1)),
    )
    .await;
    // Same bytes, another owner: never a match for alice.
    let bobs = completed_job(
        store,
        "bob",
        digest.clone(),
        t0.plus(Duration::from_secs(2)),
    )
    .await;
    // Alice, other bytes.
    completed_job(store, "alice", sha(8), t0.plus(Duration::from_secs(3))).await;

    let found = store
        .find_completed_by_hash(&owner("alice"), &digest)
        .await
        .unwrap();
    assert_eq!(found.map(|job| job.job_id), Some(alices.job_id));
    let found = store
        .find_completed_by_hash(&owner("bob"), &digest)
        .await
        .unwrap();
    assert_eq!(found.map(|job| job.job_id), Some(bobs.job_id));
    assert_eq!(
        store
            .find_completed_by_hash(&owner("carol"), &digest)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .find_completed_by_hash(&owner("alice"), &sha(9))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_job_past_its_retention_is_gone_for_every_read_before_ttl_deletes_it() {
    let store = &job_store().await;
    let now = Timestamp::now();
    let long_ago = Timestamp::from_millis(now.as_millis() - 31 * 86_400 * 1000);
    // Kept 30 days from long ago: past its TTL, which DynamoDB may honour days late.
    let old = completed_job(store, "dave", sha(11), long_ago).await;
    let fresh = completed_job(store, "dave", sha(12), now).await;
    assert!(old.expires_at < now.as_epoch_seconds());

    assert_eq!(store.get(&old.job_id).await.unwrap(), None);
    assert!(store.get(&fresh.job_id).await.unwrap().is_some());
    let listed = first_page(store, "dave").await;
    let ids: Vec<JobId> = listed.jobs.into_iter().map(|job| job.job_id).collect();
    assert_eq!(ids, vec![fresh.job_id.clone()]);
    assert_eq!(
        store
            .find_completed_by_hash(&owner("dave"), &sha(11))
            .await
            .unwrap(),
        None,
        "a duplicate never points at an expired job"
    );
    assert!(
        store
            .find_completed_by_hash(&owner("dave"), &sha(12))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_postponed_job_hands_its_attempt_back_and_counts_the_refusal() {
    let store = &job_store().await;
    let now = Timestamp::now();
    let job = queued_job(store, "erin", sha(13), now).await;
    let lease_until = now.plus(Duration::from_secs(60));
    for refusal in 1..=2 {
        let taken = store
            .transition(
                &job.job_id,
                &Transition::StartProcessing { lease_until },
                now,
            )
            .await
            .unwrap();
        assert_eq!(taken.attempts, 1);
        let postponed = store
            .transition(
                &job.job_id,
                &Transition::Postpone {
                    attempt: 1,
                    error: JobError::new(ocr_shared::domain::ErrorCode::OcrUnauthorized, "401"),
                },
                now,
            )
            .await
            .unwrap();
        assert_eq!(postponed.status, JobStatus::Queued);
        assert_eq!((postponed.attempts, postponed.auth_failures), (0, refusal));
        assert_eq!(store.get(&job.job_id).await.unwrap(), Some(postponed));
    }
}

#[tokio::test]
async fn a_throttled_job_hands_its_attempt_back_and_completion_clears_the_count() {
    let store = &job_store().await;
    let now = Timestamp::now();
    let job = queued_job(store, "erin", sha(15), now).await;
    let lease_until = now.plus(Duration::from_secs(60));
    let start = Transition::StartProcessing { lease_until };
    for throttle in 1..=3 {
        let taken = store.transition(&job.job_id, &start, now).await.unwrap();
        assert_eq!(taken.attempts, 1);
        let throttled = store
            .transition(
                &job.job_id,
                &Transition::Throttle {
                    attempt: 1,
                    error: JobError::new(ocr_shared::domain::ErrorCode::OcrUnavailable, "429"),
                },
                now,
            )
            .await
            .unwrap();
        assert_eq!(throttled.status, JobStatus::Queued);
        assert_eq!((throttled.attempts, throttled.throttles), (0, throttle));
        assert_eq!(throttled.lease_until, None);
    }
    let taken = store.transition(&job.job_id, &start, now).await.unwrap();
    let done = store
        .transition(
            &job.job_id,
            &Transition::Complete {
                attempt: taken.attempts,
                completion: completion("영수증"),
                pages: 2,
                document_type: Some(ocr_shared::domain::DocumentType::BusinessRegistration),
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!((done.attempts, done.throttles), (1, 0));
    assert_eq!(store.get(&job.job_id).await.unwrap(), Some(done));
}

#[tokio::test]
async fn a_completion_too_large_for_an_item_is_refused_as_such_not_as_an_outage() {
    let store = &job_store().await;
    let now = Timestamp::now();
    let job = queued_job(store, "frank", sha(14), now).await;
    let lease_until = now.plus(Duration::from_secs(60));
    let taken = store
        .transition(
            &job.job_id,
            &Transition::StartProcessing { lease_until },
            now,
        )
        .await
        .unwrap();
    let written = store
        .transition(
            &job.job_id,
            &Transition::Complete {
                attempt: taken.attempts,
                completion: completion(&"가".repeat(150_000)),
                pages: 2,
                document_type: Some(ocr_shared::domain::DocumentType::BusinessRegistration),
            },
            now,
        )
        .await;
    assert!(
        matches!(written, Err(StoreError::ItemTooLarge(ref id)) if *id == job.job_id),
        "{written:?}"
    );
}

#[tokio::test]
async fn a_listing_shows_each_job_as_a_read_would_but_never_reads_its_text() {
    let store = &job_store().await;
    let now = Timestamp::now();
    let done = completed_job(store, "gina", sha(15), now).await;
    let waiting = new_job("gina", now.plus(Duration::from_secs(1)));
    store.create(&waiting).await.unwrap();
    let page = first_page(store, "gina").await;
    assert_eq!(page.jobs.len(), 2);
    for listed in &page.jobs {
        let whole = store.get(&listed.job_id).await.unwrap().unwrap();
        assert_eq!(
            ocr_shared::view::JobView::summary(listed, now),
            ocr_shared::view::JobView::summary(&whole, now),
            "the index projects everything a listing shows"
        );
        assert_eq!(listed.text(), None, "the index never carries the text");
    }
    assert_eq!(
        store.get(&done.job_id).await.unwrap().unwrap().text(),
        Some("상호 주식회사 예시")
    );
}

/// The owner's first ten jobs, newest first.
async fn first_page(store: &impl JobStore, owner_name: &str) -> ocr_shared::ports::JobPage {
    store
        .list_by_owner(
            &owner(owner_name),
            &ListQuery {
                limit: 10,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap()
}
