use std::path::Path;

use ocr_shared::domain::JobId;
use ocr_shared::ports::JobStore;
use ocr_tests::moto::{HarnessError, MotoServer};

#[test]
fn a_missing_moto_fails_with_the_way_to_install_it() {
    let error = MotoServer::start(Path::new("/nonexistent/.venv/bin/moto_server"))
        .err()
        .expect("a missing binary cannot start");
    assert!(matches!(error, HarnessError::NotInstalled(_)));
    assert!(error.to_string().contains("make setup"), "{error}");
}

#[test]
fn a_server_that_dies_at_start_reports_its_log() {
    // moto runs with the interpreter beside its moto_server: here, one that dies.
    let venv = tempfile::tempdir().unwrap();
    let fake = venv.path().join("moto_server");
    let python = venv.path().join("python");
    std::fs::write(&fake, "").unwrap();
    std::fs::write(
        &python,
        "#!/bin/sh\necho 'address already in use' >&2\nexit 3\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&python)
        .status()
        .unwrap();
    let error = MotoServer::start(&fake)
        .err()
        .expect("a dying server cannot start");
    assert!(matches!(error, HarnessError::Exited { .. }), "{error}");
    assert!(
        error.to_string().contains("address already in use"),
        "{error}"
    );
}

#[test]
fn the_shared_server_answers_on_loopback() {
    let server = ocr_tests::moto();
    assert!(
        server.endpoint().starts_with("http://127.0.0.1:"),
        "{}",
        server.endpoint()
    );
}

/// The launcher serialises DynamoDB only: SQS's long polls still wait side by
/// side, and a DynamoDB request is answered while they wait.
#[tokio::test]
async fn long_polls_wait_side_by_side_and_dynamodb_answers_meanwhile() {
    let config = ocr_tests::sdk_config().await;
    let url = ocr_tests::resources::queue(&config).await;
    let store = crate::helpers::job_store().await;
    let sqs = aws_sdk_sqs::Client::new(&config);

    let started = std::time::Instant::now();
    let polls: Vec<_> = (0..3)
        .map(|_| {
            let (sqs, url) = (sqs.clone(), url.clone());
            tokio::spawn(async move {
                sqs.receive_message()
                    .queue_url(url)
                    .wait_time_seconds(3)
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let read_at = std::time::Instant::now();
    let missing = store.get(&JobId::new()).await.unwrap();
    let read_took = read_at.elapsed();
    for poll in polls {
        assert!(poll.await.unwrap().messages.unwrap_or_default().is_empty());
    }
    let polls_took = started.elapsed();

    assert_eq!(missing, None);
    assert!(
        read_took < std::time::Duration::from_secs(2),
        "a DynamoDB read waited for the long polls: {read_took:?}"
    );
    // One after another they would take 9 s.
    assert!(
        polls_took < std::time::Duration::from_secs(7),
        "three 3 s long polls took {polls_took:?}: they ran one at a time"
    );
}
