use std::path::Path;

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
    let fake = std::env::temp_dir().join(format!("fake-moto-{}", std::process::id()));
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'address already in use' >&2\nexit 3\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .unwrap();
    let error = MotoServer::start(&fake)
        .err()
        .expect("a dying server cannot start");
    std::fs::remove_file(&fake).unwrap();
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
