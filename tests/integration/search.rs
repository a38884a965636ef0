//! Search over an owner's documents on moto: the sparse `by_search` index,
//! its filter over the text's normal form, and a cursor that crosses pages
//! the filter empties.

use std::time::Duration;

use ocr_shared::domain::{DocumentType, Job, JobId, SearchQuery, Timestamp};
use ocr_shared::ports::{JobStore, ListQuery};

use crate::helpers::{completed_reading, completion, job_store, new_job, owner, sha};

async fn read(store: &dyn JobStore, who: &str, at: Timestamp, n: u8, text: &str) -> Job {
    completed_reading(store, who, sha(n), at, completion(text)).await
}

/// Every hit of `query` over all its pages, and how many pages that took.
async fn search_all(store: &dyn JobStore, who: &str, query: ListQuery) -> (Vec<Job>, usize) {
    let mut hits = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_by_owner(
                &owner(who),
                &ListQuery {
                    cursor,
                    ..query.clone()
                },
            )
            .await
            .unwrap();
        pages += 1;
        hits.extend(page.jobs);
        cursor = page.next_cursor;
        if cursor.is_none() {
            return (hits, pages);
        }
        assert!(pages < 100, "the search does not end");
    }
}

fn searching(raw: &str) -> ListQuery {
    ListQuery {
        limit: 20,
        search: Some(SearchQuery::parse(raw).unwrap()),
        ..ListQuery::default()
    }
}

fn ids(jobs: &[Job]) -> Vec<JobId> {
    jobs.iter().map(|job| job.job_id.clone()).collect()
}

#[tokio::test]
async fn korean_english_and_mixed_text_are_found_across_spaces_case_and_width() {
    let store = &job_store().await;
    let t0 = Timestamp::now();
    let at = |ms: u64| t0.plus(Duration::from_millis(ms));
    let registration = read(
        store,
        "alice",
        at(1),
        1,
        "상호 주식회사 한빛문서\n대표자 홍길동",
    )
    .await;
    let invoice = read(store, "alice", at(2), 2, "INVOICE No. 42\nTotal 12,000 KRW").await;
    let receipt = read(
        store,
        "alice",
        at(3),
        3,
        "한빛 Trading Co.\n합계 ５,０００원",
    )
    .await;
    read(store, "alice", at(4), 4, "관계없는 문서").await;
    store.create(&new_job("alice", at(5))).await.unwrap(); // no text yet
    read(store, "bob", at(6), 5, "한빛문서 홍길동").await;

    for (query, expected) in [
        ("한빛 문서", vec![&registration]),
        ("한빛", vec![&receipt, &registration]),
        ("홍 길동", vec![&registration]),
        ("invoice no.42", vec![&invoice]),
        ("TRADING co", vec![&receipt]),
        ("합계 5,000", vec![&receipt]),
        ("co.합계", vec![&receipt]),
        ("없는말", vec![]),
    ] {
        let (hits, _) = search_all(store, "alice", searching(query)).await;
        let expected: Vec<JobId> = expected.iter().map(|job| job.job_id.clone()).collect();
        assert_eq!(ids(&hits), expected, "{query}: newest first, alice's only");
    }
    // Hits are read whole: their text gives the snippet.
    let (hits, _) = search_all(store, "alice", searching("invoice")).await;
    assert_eq!(hits[0].text(), Some("INVOICE No. 42\nTotal 12,000 KRW"));

    // Every filter combines with the search.
    let since = ListQuery {
        created_after: Some(at(2)),
        ..searching("한빛")
    };
    assert_eq!(
        ids(&search_all(store, "alice", since).await.0),
        vec![receipt.job_id.clone()]
    );
    let until = ListQuery {
        created_before: Some(at(3)),
        ..searching("한빛")
    };
    assert_eq!(
        ids(&search_all(store, "alice", until).await.0),
        vec![registration.job_id.clone()]
    );
    let of_type = ListQuery {
        document_type: Some(DocumentType::Receipt),
        ..searching("한빛")
    };
    assert!(search_all(store, "alice", of_type).await.0.is_empty());
    let window = ListQuery {
        created_after: Some(at(2)),
        created_before: Some(at(4)),
        limit: 20,
        ..ListQuery::default()
    };
    let listed = ids(&search_all(store, "alice", window).await.0);
    assert_eq!(
        listed,
        [receipt.job_id.clone(), invoice.job_id.clone()],
        "a listing's window"
    );
}

#[tokio::test]
async fn a_search_cursor_crosses_pages_the_filter_empties() {
    // Five index items a round, ten rounds a request: 50 jobs a request.
    let store = &job_store().await.with_search_scan(5);
    let t0 = Timestamp::now();
    let oldest = read(store, "carol", t0, 1, "계약서 갑 을 특약사항").await;
    for i in 0..120u64 {
        let at = t0.plus(Duration::from_millis(1 + i));
        read(store, "carol", at, 2 + (i % 200) as u8, "영수증 합계").await;
    }
    let newest = read(
        store,
        "carol",
        t0.plus(Duration::from_millis(500)),
        250,
        "특약 사항 추가",
    )
    .await;

    let query = ListQuery {
        limit: 2,
        ..searching("특약사항")
    };
    let mut cursor = None;
    let mut pages = Vec::new();
    let mut hits = Vec::new();
    loop {
        let page = store
            .list_by_owner(
                &owner("carol"),
                &ListQuery {
                    cursor,
                    ..query.clone()
                },
            )
            .await
            .unwrap();
        pages.push(page.jobs.len());
        hits.extend(page.jobs);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
        assert!(pages.len() < 50, "the search does not end");
    }
    assert_eq!(
        ids(&hits),
        [newest.job_id, oldest.job_id],
        "both, newest first"
    );
    assert!(
        pages.iter().skip(1).any(|&found| found == 0),
        "a page the filter emptied still carried a cursor: {pages:?}"
    );
}

#[tokio::test]
async fn a_listing_cursor_is_no_search_cursor_and_the_reverse() {
    let store = &job_store().await;
    let t0 = Timestamp::now();
    for i in 0..3u8 {
        read(
            store,
            "dan",
            t0.plus(Duration::from_millis(u64::from(i))),
            i,
            "한빛문서",
        )
        .await;
    }
    let listing = ListQuery {
        limit: 1,
        ..ListQuery::default()
    };
    let listed = store.list_by_owner(&owner("dan"), &listing).await.unwrap();
    let search = searching("한빛");
    let found = store
        .list_by_owner(
            &owner("dan"),
            &ListQuery {
                limit: 1,
                ..search.clone()
            },
        )
        .await
        .unwrap();
    let crossed = [
        ListQuery {
            cursor: listed.next_cursor,
            ..search
        },
        ListQuery {
            cursor: found.next_cursor,
            ..listing
        },
    ];
    for query in crossed {
        let refused = store.list_by_owner(&owner("dan"), &query).await;
        assert!(
            matches!(refused, Err(ocr_shared::ports::StoreError::BadCursor)),
            "{refused:?}"
        );
    }
}

#[tokio::test]
async fn more_hits_in_one_round_than_a_page_holds_continue_on_the_next_page_exactly() {
    let store = &job_store().await;
    let t0 = Timestamp::now();
    let mut made = Vec::new();
    for i in 0..5u8 {
        let at = t0.plus(Duration::from_millis(u64::from(i)));
        made.push(read(store, "erin", at, i, "부가세 포함").await.job_id);
        read(
            store,
            "erin",
            at.plus(Duration::from_micros(500)),
            100 + i,
            "영수증",
        )
        .await;
    }
    made.reverse();
    let (hits, pages) = search_all(
        store,
        "erin",
        ListQuery {
            limit: 2,
            ..searching("부가세")
        },
    )
    .await;
    assert_eq!(ids(&hits), made, "every hit once, newest first");
    assert_eq!(pages, 3, "2 + 2 + 1");
}

#[tokio::test]
async fn needs_review_filters_a_listing_and_a_search() {
    let store = &job_store().await;
    let t0 = Timestamp::now();
    let weak = ocr_shared::domain::Completion {
        confidence: 0.41,
        needs_review: true,
        review_pages: vec![2],
        quality_issues: Vec::new(),
        ..completion("흐릿한 계약서")
    };
    let unsure = completed_reading(store, "fay", sha(1), t0, weak).await;
    let sure = read(
        store,
        "fay",
        t0.plus(Duration::from_millis(1)),
        2,
        "선명한 계약서",
    )
    .await;
    store
        .create(&new_job("fay", t0.plus(Duration::from_millis(2))))
        .await
        .unwrap();
    let flagged = |wanted| ListQuery {
        limit: 20,
        needs_review: Some(wanted),
        ..ListQuery::default()
    };
    let (listed, _) = search_all(store, "fay", flagged(true)).await;
    assert_eq!(ids(&listed), vec![unsure.job_id.clone()]);
    assert_eq!(
        listed[0].completion().unwrap().review_pages,
        [2],
        "the index carries the pages"
    );
    let (listed, _) = search_all(store, "fay", flagged(false)).await;
    assert_eq!(listed.len(), 2, "the clear job and the one not read yet");
    assert!(listed.iter().all(|job| job.job_id != unsure.job_id));
    let (found, _) = search_all(
        store,
        "fay",
        ListQuery {
            needs_review: Some(true),
            ..searching("계약서")
        },
    )
    .await;
    assert_eq!(ids(&found), [unsure.job_id]);
    assert!(!sure.needs_review());
}
