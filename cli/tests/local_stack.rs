//! `ocr dev` as a real process, driven the way a user drives it: `ocr submit`,
//! `ocr status`, `ocr list`, `ocr invoke`, a browser, and Ctrl-C.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ocr_tests::dev_process::{
    CEILING, descendants, document, free_port, peak_rss_mib, repo, wait_for,
};
use ocr_tests::quality::{character_error_rate, words_intact};
use serde_json::{Value, json};

const OCR: &str = env!("CARGO_BIN_EXE_ocr");

/// `ocr dev` as this package built it.
struct Dev;

impl Dev {
    fn start() -> ocr_tests::dev_process::Dev {
        ocr_tests::dev_process::Dev::start(Path::new(OCR))
    }

    fn start_on(port: u16, state: tempfile::TempDir) -> ocr_tests::dev_process::Dev {
        ocr_tests::dev_process::Dev::start_on(Path::new(OCR), port, state)
    }

    /// `ocr dev` reading with the fake Upstage, with `variables` besides.
    fn with_upstage(
        upstage: &ocr_tests::fake_upstage::FakeUpstage,
        variables: &[(&str, &str)],
    ) -> ocr_tests::dev_process::Dev {
        let mut all = vec![
            ("UPSTAGE_API_KEY", ocr_tests::fake_upstage::API_KEY),
            ("UPSTAGE_BASE_URL", upstage.url.as_str()),
        ];
        all.extend_from_slice(variables);
        Self::start_with(free_port(), tempfile::tempdir().unwrap(), &all)
    }

    fn start_with(
        port: u16,
        state: tempfile::TempDir,
        variables: &[(&str, &str)],
    ) -> ocr_tests::dev_process::Dev {
        ocr_tests::dev_process::Dev::start_with(Path::new(OCR), port, state, variables)
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_str(stdout(output).trim()).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}): {}\nstderr: {}",
            stdout(output),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'))
}

#[test]
fn ocr_submit_reads_each_rendered_document_through_the_local_stack() {
    let dev = Dev::start();
    let mut report = Vec::new();
    for name in ["receipt.png", "business-registration.jpg", "contract.pdf"] {
        let path = document(name);
        let started = Instant::now();
        let output = dev.ocr(&["submit", path.to_str().unwrap(), "--wait", "--json"]);
        let elapsed = started.elapsed();
        assert!(
            output.status.success(),
            "{name}: {:?}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let job = json(&output);
        assert_eq!(job["status"], "completed", "{name}: {job}");
        assert_eq!(job["engine"], "tesseract");
        let truth = std::fs::read_to_string(path.with_extension("txt")).unwrap();
        let cer = character_error_rate(job["text"].as_str().unwrap(), &truth);
        let intact = words_intact(job["text"].as_str().unwrap(), &truth);
        let pages = job["pages"].as_u64().unwrap();
        report.push(format!(
            "{name}: CER {:.2}% (spacing counted), words intact {:.1}%, {pages} page(s), {:.2} s from submit to text ({:.2} s/page), {}",
            cer * 100.0,
            intact * 100.0,
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() / pages as f64,
            job["document_type"]
        ));
        assert!(cer <= 0.03, "{name}: CER {cer} over 3%:\n{}", job["text"]);
        assert!(
            intact >= 0.95,
            "{name}: {intact} of the words intact:\n{}",
            job["text"]
        );

        // The same job through the other commands.
        let id = job["job_id"].as_str().unwrap();
        let status = json(&dev.ocr(&["status", id, "--json"]));
        assert_eq!(status["job_id"], id);
        assert_eq!(status["text"], job["text"]);
    }
    println!("{}", report.join("\n"));

    let listing = json(&dev.ocr(&["list", "--json"]));
    let jobs = listing["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 3, "{listing}");
    assert!(jobs.iter().all(|job| job["status"] == "completed"));
    // Another subject sees none of them.
    let other = json(&dev.ocr(&["list", "--json", "--sub", "somebody-else"]));
    assert_eq!(other["jobs"], serde_json::json!([]));
    assert!(
        dev.log().contains("ingest"),
        "the pumps logged nothing:\n{}",
        dev.log()
    );
}

/// `ocr submit --wait --json --webhook` of a rendered document: the finished job.
fn submit_with_webhook(
    dev: &ocr_tests::dev_process::Dev,
    name: &str,
    receiver: &ocr_tests::receiver::Receiver,
) -> Value {
    let path = document(name);
    let output = dev.ocr(&[
        "submit",
        path.to_str().unwrap(),
        "--wait",
        "--json",
        "--webhook",
        &receiver.url,
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    json(&output)
}

/// Waits for the receiver's first `count` POSTs.
fn wait_for_deliveries(receiver: &ocr_tests::receiver::Receiver, count: usize) {
    wait_for(
        &format!("{count} webhook deliveries"),
        CEILING,
        Duration::from_millis(200),
        || match receiver.received().len() {
            seen if seen >= count => Ok(()),
            seen => Err(seen),
        },
    );
}

#[test]
fn a_finished_job_is_announced_to_its_webhook_signed() {
    let dev = Dev::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime.block_on(ocr_tests::receiver::Receiver::start());
    let job = submit_with_webhook(&dev, "receipt.png", &receiver);
    wait_for_deliveries(&receiver, 1);
    std::thread::sleep(Duration::from_secs(1)); // a second delivery would show up now
    let received = receiver.received();
    assert_eq!(received.len(), 1, "one POST per event:\n{}", dev.log());
    let delivery = &received[0];
    let event: Value = serde_json::from_slice(&delivery.body).unwrap();
    assert_eq!(event["type"], "job.completed", "{event}");
    assert_eq!(event["job"]["job_id"], job["job_id"]);
    assert_eq!(event["job"]["text"], job["text"]);
    let signature = delivery.headers["lambda-ocr-signature"].to_str().unwrap();
    // The banner's key is the dev user's own, the one the API gives them.
    let own_key: Value = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("{}/v1/webhooks/key", dev.url()))
            .bearer_auth(&dev.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(own_key["key"], dev.webhook_key.as_str(), "{own_key}");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(ocr_shared::webhook::verify(
        dev.webhook_key.as_bytes(),
        signature,
        &delivery.body,
        now,
        300
    ));
    assert!(!ocr_shared::webhook::verify(
        b"another key",
        signature,
        &delivery.body,
        now,
        300
    ));

    let status = json(&dev.ocr(&["status", job["job_id"].as_str().unwrap(), "--json"]));
    assert_eq!(status["webhook"]["status"], "delivered", "{status}");

    // What the functions logged over the whole run (stderr; the banner on
    // stdout shows the dev user their own token and key on purpose) holds no
    // document text, no webhook URL, no presigned signature and no secret.
    let functions_log = dev.log();
    let mut words: Vec<&str> = job["text"].as_str().unwrap().split_whitespace().collect();
    words.sort_by_key(|word| std::cmp::Reverse(word.chars().count()));
    let secrets = [
        ("the webhook URL", receiver.url.as_str()),
        ("the webhook signing key", dev.webhook_key.as_str()),
        ("the bearer token", dev.token.as_str()),
        ("a presigned URL's signature", "X-Amz-Signature"),
        ("the document's longest word", words[0]),
        ("its second longest word", words[1]),
    ];
    for (what, secret) in secrets {
        assert!(
            !functions_log.contains(secret),
            "the logs hold {what}: {secret}"
        );
    }
    assert!(
        functions_log.contains("job completed"),
        "the run was logged"
    );
}

#[test]
fn with_an_upstage_key_the_local_stack_reads_with_upstage() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstage = runtime.block_on(ocr_tests::fake_upstage::FakeUpstage::start());
    let dev = Dev::with_upstage(&upstage, &[("OCR_RETRY_BASE_SECONDS", "0")]);
    let receipt = document("receipt.png");
    let job = json(&dev.ocr(&["submit", receipt.to_str().unwrap(), "--wait", "--json"]));
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["engine"], "upstage", "{job}");
    // The fake checked the published contract: bearer key, multipart document, model.
    let calls = upstage.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].filename, "receipt.png");
    assert_eq!(calls[0].content_type, "image/png");
    assert_eq!(calls[0].model, "ocr");
    assert_eq!(
        calls[0].size,
        std::fs::metadata(&receipt).unwrap().len() as usize
    );
}

#[test]
fn bad_uploads_and_bad_tokens_get_readable_refusals() {
    let dev = Dev::start();
    let scratch = tempfile::tempdir().unwrap();

    // HTML under a .png name: sniffed as HTML, so the API refuses the type at once.
    let html = scratch.path().join("invoice.png");
    std::fs::write(&html, "<html><body>not a scan</body></html>").unwrap();
    // Several files in one call: one JSON line each, in order; the bad one does
    // not stop the good one, and the exit status says not all went well.
    let receipt = document("receipt.png");
    let output = dev.ocr(&[
        "submit",
        html.to_str().unwrap(),
        receipt.to_str().unwrap(),
        "--wait",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let lines: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let refused = &lines[0];
    assert_eq!(refused["error"]["code"], "unsupported_type", "{refused}");
    assert!(!refused["error"]["message"].as_str().unwrap().is_empty());
    assert_eq!(lines[1]["status"], "completed", "{}", lines[1]);

    // A PDF cut short: accepted as a PDF, uploaded, then rejected by ingest with its reason.
    let pdf = std::fs::read(document("contract.pdf")).unwrap();
    let cut = scratch.path().join("cut.pdf");
    std::fs::write(&cut, &pdf[..pdf.len() / 2]).unwrap();
    let output = dev.ocr(&["submit", cut.to_str().unwrap(), "--wait", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let job = json(&output);
    assert_eq!(job["status"], "rejected", "{job}");
    assert_eq!(job["error"]["code"], "truncated_file", "{job}");

    // No token, a forged token: 401 before any function runs, as API Gateway answers.
    let http = raw_http::get_status(&format!("{}/v1/jobs", dev.url()), None);
    assert_eq!(http, 401);
    let forged = format!("{}x", dev.token);
    let http = raw_http::get_status(&format!("{}/v1/jobs", dev.url()), Some(&forged));
    assert_eq!(http, 401);
    // Expired, signed by another key, and unsigned (`alg: none`): each 401.
    let key = hex::decode(
        std::fs::read_to_string(dev.state.path().join("signing-key"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = |exp: i64| serde_json::json!({"iss": ocr_cli::token::ISSUER, "sub": "dev", "iat": now - 7200, "exp": exp, "token_use": "access"});
    let signed = |key: &[u8], exp: i64| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims(exp),
            &jsonwebtoken::EncodingKey::from_secret(key),
        )
        .unwrap()
    };
    let b64 = |bytes: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    let unsigned = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims(now + 3600).to_string().as_bytes())
    );
    for (what, token) in [
        ("expired an hour ago", signed(&key, now - 3600)),
        (
            "signed by another key",
            signed(b"another key entirely", now + 3600),
        ),
        ("unsigned", unsigned),
        ("valid", signed(&key, now + 3600)),
    ] {
        let http = raw_http::get_status(&format!("{}/v1/jobs", dev.url()), Some(&token));
        let expected = if what == "valid" { 200 } else { 401 };
        assert_eq!(http, expected, "a token {what}");
    }
}

/// A plain HTTP/1.1 GET, for status codes without a client library's opinions.
mod raw_http {
    use std::io::{Read, Write};

    pub fn get_status(url: &str, token: Option<&str>) -> u16 {
        let url = url::Url::parse(url).unwrap();
        let mut stream =
            super::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap())).unwrap();
        let auth = token
            .map(|token| format!("Authorization: Bearer {token}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "GET {} HTTP/1.1\r\nHost: {}\r\n{auth}Connection: close\r\n\r\n",
            url.path(),
            url.host_str().unwrap()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response[9..12].parse().unwrap()
    }
}

#[test]
fn ocr_invoke_runs_one_handler_with_an_event_file() {
    let dev = Dev::start();
    let output = dev.ocr(&[
        "invoke",
        "ingest",
        "--event",
        "events/s3-object-created.json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let outcomes = json(&output);
    println!("ocr invoke ingest --event events/s3-object-created.json:\n{outcomes:#}");
    // The sample event names an upload of a job this stack never opened, and a non-upload key.
    assert_eq!(outcomes.as_array().unwrap().len(), 2, "{outcomes}");
    assert!(
        outcomes
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["outcome"] == "ignored")
    );

    let output = dev.ocr(&["invoke", "ingest", "--event", "events/s3-test-event.json"]);
    assert_eq!(json(&output)[0]["reason"], "s3:TestEvent");

    // An API function answers in API Gateway's response format.
    let output = dev.ocr(&[
        "invoke",
        "status-api",
        "--event",
        "events/apigw-get-job.json",
    ]);
    let response = json(&output);
    assert_eq!(response["statusCode"], 404, "{response}");

    // The notifier's sample: a raw delivery and an SNS envelope, both read
    // (their jobs are not in this stack: acknowledged, nothing posted).
    let output = dev.ocr(&[
        "invoke",
        "notifier",
        "--event",
        "events/sqs-notifier-batch.json",
    ]);
    let batch = json(&output);
    assert_eq!(batch["batchItemFailures"], json!([]), "{batch}");

    // A function that does not exist is a wrong command line (2, clap's).
    let output = dev.ocr(&[
        "invoke",
        "no-such-function",
        "--event",
        "events/s3-test-event.json",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("possible values: upload-api"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // ocr delete, and the exit codes the help documents.
    let receipt = document("receipt.png");
    let job = json(&dev.ocr(&["submit", receipt.to_str().unwrap(), "--json"]));
    let id = job["job_id"].as_str().unwrap();
    let deleted = dev.ocr(&["delete", id]);
    assert!(deleted.status.success());
    assert_eq!(stdout(&deleted).trim(), format!("deleted {id}"));
    let gone = dev.ocr(&["status", id]);
    assert_eq!(gone.status.code(), Some(3), "the API refused it");
    assert!(String::from_utf8_lossy(&gone.stderr).contains("404"));
    assert_eq!(
        dev.ocr(&["list", "--status", "done"]).status.code(),
        Some(2)
    );
    let help = stdout(&dev.ocr(&["--help"]));
    assert!(
        help.contains("Exit codes: 0 done; 1 a job did not complete"),
        "{help}"
    );
}

#[test]
fn ctrl_c_stops_everything_and_the_port_is_free_again() {
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut dev = Dev::start_on(port, state);
    let children = descendants(dev.child.id());
    assert!(!children.is_empty(), "ocr dev started moto");

    // The port is taken: a second `ocr dev` says so and starts nothing.
    let second = Command::new(OCR)
        .args(["dev", "--port", &port.to_string()])
        .env("OCR_STATE_DIR", dev.state.path())
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(3), "could not be carried out");
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains("is another `ocr dev` running?"), "{said}");

    // A client holding an idle keep-alive connection does not keep it running.
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(
        &mut idle,
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    )
    .unwrap();

    let status = dev.interrupt();
    assert!(
        status.success(),
        "ocr dev exited with {status:?}:\n{}",
        dev.log()
    );
    wait_for(
        "no process left behind",
        CEILING,
        Duration::from_millis(100),
        || {
            let left: Vec<&u32> = children.iter().filter(|pid| alive(**pid)).collect();
            if left.is_empty() { Ok(()) } else { Err(left) }
        },
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the port still answers"
    );

    // A second `ocr dev` on the same port comes up clean.
    let state = std::mem::replace(&mut dev.state, tempfile::tempdir().unwrap());
    drop(dev);
    let mut again = Dev::start_on(port, state);
    let output = again.ocr(&["list", "--json"]);
    assert_eq!(
        json(&output)["jobs"],
        serde_json::json!([]),
        "a new stack starts empty"
    );
    assert!(again.interrupt().success());
}

#[test]
fn a_stack_on_a_kept_endpoint_survives_a_restart_of_ocr_dev() {
    let moto = ocr_cli::moto::MotoServer::start(&ocr_tests::moto::default_binary()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut dev = Dev::start_with(port, state, &[("AWS_ENDPOINT_URL", moto.endpoint())]);
    let receipt = document("receipt.png");
    let job = json(&dev.ocr(&["submit", receipt.to_str().unwrap(), "--wait", "--json"]));
    assert_eq!(job["status"], "completed", "{job}");
    assert!(dev.interrupt().success());
    // On Ctrl-C, the run's figures in one line: the metrics the functions publish.
    let printed = dev.printed_until_exit();
    let summary = printed
        .iter()
        .find(|line| line.starts_with("metrics "))
        .unwrap_or_else(|| panic!("no metrics line: {printed:?}"));
    assert!(
        summary.contains("jobs: 1 created, 1 completed, 0 failed"),
        "{summary}"
    );
    assert!(summary.contains(" 1 pages"), "{summary}");
    assert!(
        TcpStream::connect(moto.endpoint().trim_start_matches("http://")).is_ok(),
        "a moto ocr dev did not start is left running"
    );

    // Provisioning again finds every resource; the job is still there.
    let state = std::mem::replace(&mut dev.state, tempfile::tempdir().unwrap());
    drop(dev);
    let again = Dev::start_with(port, state, &[("AWS_ENDPOINT_URL", moto.endpoint())]);
    let listing = json(&again.ocr(&["list", "--json"]));
    assert_eq!(listing["jobs"][0]["job_id"], job["job_id"], "{listing}");
    let same = json(&again.ocr(&["submit", receipt.to_str().unwrap(), "--wait", "--json"]));
    assert_eq!(
        same["deduplicated"], true,
        "the same bytes are not read twice: {same}"
    );
}

#[test]
fn a_worker_killed_mid_ocr_is_taken_over_after_its_lease_and_announced_once() {
    let moto = ocr_cli::moto::MotoServer::start(&ocr_tests::moto::default_binary()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstage = runtime.block_on(ocr_tests::fake_upstage::FakeUpstage::start());
    let receiver = runtime.block_on(ocr_tests::receiver::Receiver::start());
    // The first read takes long enough to be killed in the middle of.
    let long_read = ocr_tests::fake_upstage::Reply::Hang(Duration::from_secs(60));
    upstage.script([long_read]);
    let variables = [
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("UPSTAGE_API_KEY", ocr_tests::fake_upstage::API_KEY),
        ("UPSTAGE_BASE_URL", &upstage.url),
        ("UPSTAGE_TIMEOUT_SECONDS", "120"),
        ("OCR_LEASE_SECONDS", "10"),
        ("SWEEP_STALE_SECONDS", "60"),
    ];
    let mut dev = Dev::start_with(free_port(), tempfile::tempdir().unwrap(), &variables);
    let receipt = document("receipt.png");
    let created = json(&dev.ocr(&[
        "submit",
        receipt.to_str().unwrap(),
        "--json",
        "--webhook",
        &receiver.url,
    ]));
    let id = created["job_id"].as_str().unwrap().to_owned();
    wait_for(
        "a read began",
        CEILING,
        Duration::from_millis(100),
        || match upstage.calls().len() {
            0 => Err(0),
            _ => Ok(()),
        },
    );
    let job = json(&dev.ocr(&["status", &id, "--json"]));
    assert_eq!(job["status"], "processing", "{job}");

    // SIGKILL: no handler runs, the lease and the in-flight message are left as they are.
    dev.child.kill().unwrap();
    dev.child.wait().unwrap();
    let killed = Instant::now();
    let state = std::mem::replace(&mut dev.state, tempfile::tempdir().unwrap());
    drop(dev);
    let again = Dev::start_with(free_port(), state, &variables);
    let job = loop {
        let job = json(&again.ocr(&["status", &id, "--json"]));
        if job["status"] == "completed" || job["status"] == "failed" {
            break job;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(120) + CEILING,
            "not taken over: {job}\n{}",
            again.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        job["attempts"], 2,
        "the dead attempt and the one that took over: {job}"
    );
    assert_eq!(upstage.calls().len(), 2, "the killed read and one more");
    assert!(
        again
            .log()
            .contains("stuck job sent to the OCR queue again"),
        "the sweeper found it:\n{}",
        again.log()
    );
    wait_for_deliveries(&receiver, 1);
    std::thread::sleep(Duration::from_secs(2)); // a second delivery would show up now
    let received = receiver.received();
    assert_eq!(received.len(), 1, "announced once");
    let event: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(event["type"], "job.completed", "{event}");
    println!(
        "worker killed mid-OCR: completed {:.1} s after the kill, 2 attempts, 2 Upstage calls, 1 webhook",
        killed.elapsed().as_secs_f64()
    );
}

#[test]
fn moto_restarted_mid_run_under_its_kept_state_loses_no_job() {
    const DOCUMENTS: usize = 5;
    let binary = ocr_tests::moto::default_binary();
    let kept = tempfile::tempdir().unwrap();
    let state = kept.path().join("moto-state.pickle");
    let port = free_port();
    let moto = ocr_cli::moto::MotoServer::start_with(&binary, Some(port), Some(&state)).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstage = runtime.block_on(ocr_tests::fake_upstage::FakeUpstage::start());
    let dev = Dev::start_with(
        free_port(),
        tempfile::tempdir().unwrap(),
        &[
            ("AWS_ENDPOINT_URL", moto.endpoint()),
            ("UPSTAGE_API_KEY", ocr_tests::fake_upstage::API_KEY),
            ("UPSTAGE_BASE_URL", &upstage.url),
            // A write the outage refused leaves its job under a lease: the
            // sweeper finds it once the lease lapses (within two minutes here).
            ("OCR_LEASE_SECONDS", "10"),
            ("SWEEP_STALE_SECONDS", "60"),
        ],
    );
    let receipt = document("receipt.png");
    let before = json(&dev.ocr(&["submit", receipt.to_str().unwrap(), "--wait", "--json"]));
    assert_eq!(before["status"], "completed", "{before}");

    // Five documents whose reads take 8 s: moto goes down as soon as the
    // first read begins, and comes back while it runs; the other documents
    // wait in the queue, in moto's kept state.
    upstage.read_pdfs(Duration::from_secs(8));
    let dir = tempfile::tempdir().unwrap();
    let texts = (1..=DOCUMENTS).map(|n| format!("KEPT {n}"));
    let files = one_page_pdfs(dir.path(), texts);
    let mut args = vec!["submit", "--json"];
    args.extend(files.iter().map(String::as_str));
    assert!(dev.ocr(&args).status.success());
    wait_for(
        "two reads began",
        CEILING,
        Duration::from_millis(100),
        || match upstage.calls().len() {
            calls if calls >= 2 => Ok(()),
            calls => Err(calls),
        },
    );
    let stopped = Instant::now();
    moto.stop();
    assert!(state.is_file(), "moto wrote its state on the way down");
    let refused = dev.ocr(&["list", "--json"]);
    assert!(!refused.status.success(), "moto is down");
    // Down long enough for every pump's poll to fail and be tried again.
    std::thread::sleep(Duration::from_secs(2));
    let moto = ocr_cli::moto::MotoServer::start_with(&binary, Some(port), Some(&state)).unwrap();
    let restarted = Instant::now();
    let down_for = stopped.elapsed();

    let jobs = wait_until_all_finished(&dev, 1 + DOCUMENTS, Duration::from_secs(240));
    let completed = jobs
        .iter()
        .filter(|job| job["status"] == "completed")
        .count();
    assert_eq!(completed, 1 + DOCUMENTS, "{jobs:?}");
    for job in &jobs {
        let id = job["job_id"].as_str().unwrap();
        let job = json(&dev.ocr(&["status", id, "--json"]));
        let name = job["filename"].as_str().unwrap();
        if name.starts_with("KEPT") {
            assert_eq!(job["text"], name.trim_end_matches(".pdf"), "{job}");
        }
    }
    // What was there before the restart still is: the same bytes are not read again.
    let again = json(&dev.ocr(&["submit", receipt.to_str().unwrap(), "--wait", "--json"]));
    assert_eq!(again["deduplicated"], true, "{again}");
    let reads = upstage.calls().len();
    assert!(
        (1 + DOCUMENTS..=1 + 2 * DOCUMENTS).contains(&reads),
        "each document read, at most once more: {reads}"
    );
    println!(
        "moto restarted mid-run: down {:.1} s with a read in flight; all {} jobs completed {:.1} s after the restart, {reads} Upstage calls for {} documents, the earlier result still deduplicates",
        down_for.as_secs_f64(),
        1 + DOCUMENTS,
        restarted.elapsed().as_secs_f64(),
        1 + DOCUMENTS,
    );
    drop(moto);
}

/// A helper process, stopped when the test ends however it ends.
struct KilledOnDrop(std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_demo_page_uploads_shows_text_and_boxes_and_explains_a_rejection() {
    let script = repo().join("web/tests/browser.mjs");
    let modules = repo().join("web/node_modules/playwright-core");
    assert!(
        modules.is_dir(),
        "playwright-core is not installed: run `make setup-browser` (npm ci in web/ and Debian's chromium)"
    );
    // The same page served on its own from another origin, as for a deployed stack.
    let elsewhere_port = free_port();
    let elsewhere = format!("http://127.0.0.1:{elsewhere_port}");
    let port = elsewhere_port.to_string();
    let serving = Command::new(repo().join(".venv/bin/python"))
        .args(["-m", "http.server", &port, "--bind", "127.0.0.1"])
        .current_dir(repo().join("web"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python serves web/");
    let _server = KilledOnDrop(serving);
    let dev = Dev::start_with(
        free_port(),
        tempfile::tempdir().unwrap(),
        &[
            ("ALLOWED_ORIGINS", &elsewhere),
            ("MAX_UPLOAD_BYTES", "150000"),
            ("JOB_CREATE_RATE_PER_MINUTE", "3"),
            // Above any real read: the page shows its review warning.
            ("LOW_CONFIDENCE_THRESHOLD", "0.99"),
        ],
    );
    let other = stdout(&dev.ocr(&["token", "--sub", "burst"]));
    let out = repo().join("target/test-output/browser");
    std::fs::create_dir_all(&out).unwrap();
    let output = Command::new("node")
        .arg(&script)
        .arg(format!("{}/#token={}", dev.url(), dev.token))
        .arg(document("receipt.png"))
        .arg(&out)
        .arg(other.trim())
        .arg(format!("{elsewhere}/"))
        .current_dir(repo().join("web"))
        .output()
        .expect("node runs (Debian: nodejs)");
    println!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the browser script failed:\n{}\n{}",
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    let seen = json(&output);
    println!("browser saw: {seen:#}");
    assert_eq!(seen["asks_for_token"], true, "{seen}");
    assert_eq!(seen["progress"], "100%");
    assert_eq!(seen["status"], "completed");
    let truth = std::fs::read_to_string(document("receipt.txt")).unwrap();
    let cer = character_error_rate(seen["text"].as_str().unwrap(), &truth);
    assert!(cer <= 0.03, "the page shows text with CER {cer}");
    assert!(seen["boxes"].as_u64().unwrap() >= 1, "{seen}");
    assert!(seen["progress_events"].as_u64().unwrap() >= 1, "{seen}");
    assert_eq!(
        seen["chunked_status"], "읽는 중 · reading · 100/250 쪽 · pages",
        "{seen}"
    );
    let screenshot = PathBuf::from(seen["screenshot"].as_str().unwrap());
    assert!(
        std::fs::metadata(&screenshot).unwrap().len() > 10_000,
        "{screenshot:?}"
    );

    assert_eq!(
        seen["sniffed"],
        json!(["image/png", "application/pdf", "text/plain"]),
        "the page declares what the bytes are"
    );

    // Rejections, with their reasons on the page.
    assert_eq!(seen["rejected"]["code"], "truncated_file", "{seen}");
    assert!(
        seen["rejected"]["text"]
            .as_str()
            .unwrap()
            .contains("incomplete"),
        "{seen}"
    );
    assert_eq!(seen["too_large"]["code"], "file_too_large", "{seen}");
    assert!(
        seen["too_large"]["text"]
            .as_str()
            .unwrap()
            .contains("too large"),
        "{seen}"
    );
    assert_eq!(seen["rate_limited"]["code"], "rate_limited", "{seen}");
    // Three creations a minute: the fourth of one minute is refused.
    let chosen = seen["burst"]["chosen"].as_u64().unwrap();
    match seen["burst"]["minutes"].as_u64().unwrap() {
        1 => assert_eq!(chosen, 4, "{seen}"),
        _ => assert!((4..=7).contains(&chosen), "{seen}"),
    }
    let limited = seen["rate_limited"]["text"].as_str().unwrap();
    assert!(
        limited.contains("Too many requests") && limited.contains("try again in"),
        "{seen}"
    );
    assert_eq!(seen["unsupported"]["code"], "unsupported_type", "{seen}");
    assert!(
        seen["unsupported"]["text"]
            .as_str()
            .unwrap()
            .contains("not supported"),
        "{seen}"
    );
    // The search box: the receipt's longest Korean word finds it, with its passage.
    let search = &seen["search"];
    let word = search["word"].as_str().unwrap();
    assert!(search["hits"].as_u64().unwrap() >= 1, "{seen}");
    assert!(search["snippet"].as_str().unwrap().contains(word), "{seen}");
    assert!(search["note"].as_str().unwrap().contains("found"), "{seen}");
    assert!(
        seen["search_none"]
            .as_str()
            .unwrap()
            .contains("nothing found"),
        "{seen}"
    );
    assert_eq!(seen["opened_by_keyboard"], true, "{seen}");
    // Its Content-Security-Policy lets only its own scripts run.
    assert_eq!(seen["injected_script_ran"], false, "{seen}");
    // A link naming another API gets no token: the page asks for one for it.
    let hostile = &seen["hostile_link"];
    assert_eq!(hostile["api"], "http://127.0.0.1:9", "{seen}");
    assert_eq!(hostile["token"], "", "{seen}");
    assert_eq!(hostile["requests"], json!([]), "{seen}");
    assert!(
        hostile["own_api_still_read"].as_u64().unwrap() >= 1,
        "{seen}"
    );
    assert_eq!(seen["keyboard_file_chooser"], true, "{seen}");
    // Served from another origin, the page reached the API by its address and by its form.
    assert!(seen["elsewhere"]["recent"].as_u64().unwrap() >= 1, "{seen}");
    assert!(
        seen["elsewhere"]["by_form"].as_u64().unwrap() >= 1,
        "{seen}"
    );
    assert!(
        seen["review"]
            .as_str()
            .is_some_and(|text| text.contains("Needs review")),
        "{seen}"
    );
}

#[test]
fn an_id_card_has_its_resident_registration_number_masked_everywhere_it_goes() {
    let dev = Dev::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime.block_on(ocr_tests::receiver::Receiver::start());
    let job = submit_with_webhook(&dev, "id-card.png", &receiver);
    let id = job["job_id"].as_str().unwrap();
    // Recognised as an ID card, so every kind is masked by default.
    assert_eq!(job["document_type"], "id_card", "{job}");
    let status = json(&dev.ocr(&["status", id, "--json"]));
    let text = status["text"].as_str().unwrap();
    assert!(text.contains("900101-1******"), "{text}");
    // A 13-digit reference that is no registration number (month 13) stays.
    assert!(text.contains("991399-1234567"), "{text}");
    assert_eq!(status["redacted"]["rrn"], 1, "{status}");

    let result: Value = runtime.block_on(async {
        reqwest::get(status["result_url"].as_str().unwrap())
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(result["redacted"]["rrn"], 1, "{result}");
    let words: Vec<&str> = result["pages"][0]["words"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|word| word["text"].as_str())
        .collect();
    assert!(
        words.iter().any(|word| word.contains("******")),
        "{words:?}"
    );

    wait_for_deliveries(&receiver, 1);
    let received = receiver.received();
    assert_eq!(received.len(), 1, "{}", dev.log());
    let webhook = String::from_utf8_lossy(&received[0].body).into_owned();
    assert!(webhook.contains("900101-1******"), "{webhook}");

    // The holder's digits are nowhere: not in the job, the result, the webhook or the logs.
    for (place, seen) in [
        ("the job", status.to_string()),
        ("the result", result.to_string()),
        ("the webhook", webhook),
        ("the log", dev.log()),
    ] {
        assert!(
            !seen.contains("1234568"),
            "{place} holds the number: {seen}"
        );
    }
    // The search index holds the masked form only: the number finds nothing,
    // written either way.
    for query in ["900101-1234568", "９００１０１－１２３４５６８", "1234568"] {
        let found = json(&dev.ocr(&["search", query, "--json"]));
        assert_eq!(found["jobs"], json!([]), "{query}: {found}");
    }
    // What the mask leaves (the birth date) is found: the search itself works.
    let found = json(&dev.ocr(&["search", "900101-1", "--json"]));
    assert_eq!(found["jobs"][0]["job_id"], id, "{found}");
}

#[test]
fn a_photo_past_reading_fails_retake_photo_and_a_dim_one_reports_its_issues() {
    let dir = tempfile::tempdir().unwrap();
    let documents = repo().join("tests/fixtures/documents");
    ocr_tests::dev_process::run_tool(
        "degrade_documents.py",
        &[documents.as_os_str(), dir.path().as_os_str()],
    );
    let dev = Dev::start();
    let submit = |name: &str| {
        let path = dir.path().join(name);
        dev.ocr(&["submit", path.to_str().unwrap(), "--wait", "--json"])
    };

    // Blurred past reading, in the dark: failed, and the app is told why.
    let output = submit("receipt--unreadable.jpg");
    assert_eq!(output.status.code(), Some(1));
    let job = json(&output);
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "retake_photo", "{job}");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(message.contains("흐립니다 · blurry"), "{message}");
    assert!(message.contains("too dark"), "{message}");

    // Dim and soft, but readable: completed, its issues beside the text.
    let job = json(&submit("receipt--low-light.jpg"));
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["quality_issues"], json!(["blurry"]), "{job}");
    let id = job["job_id"].as_str().unwrap();
    let shown = stdout(&dev.ocr(&["status", id]));
    assert!(
        shown.contains("image quality: 흐립니다 · blurry"),
        "{shown}"
    );
    // The full result keeps each page's measures.
    let url = job["result_url"].as_str().unwrap().to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let result: Value =
        runtime.block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() });
    let quality = &result["pages"][0]["quality"];
    assert_eq!(quality["issues"], json!(["blurry"]), "{quality}");
    assert!(quality["brightness"].as_f64().unwrap() < 0.6, "{quality}");
}

#[test]
fn a_sideways_phone_photo_reads_as_its_upright_twin_with_boxes_on_the_upright_photo() {
    // Rendered now (Pillow, from `make setup`): about 4000 px, noisy, stored
    // sideways with EXIF orientation 6, and its own pixels turned upright.
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("receipt-photo.jpg");
    ocr_tests::dev_process::render(&["--photo".as_ref(), photo.as_os_str()]);
    let upright = dir.path().join("receipt-photo-upright.png");

    let dev = Dev::start();
    let output = dev.ocr(&[
        "submit",
        photo.to_str().unwrap(),
        upright.to_str().unwrap(),
        "--wait",
        "--json",
        "--timeout",
        "180",
    ]);
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        dev.log()
    );
    let jobs: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let (sideways, straight) = (&jobs[0], &jobs[1]);
    let text = |job: &Value| job["text"].as_str().unwrap().to_owned();
    let cer = character_error_rate(&text(sideways), &text(straight));
    let truth = std::fs::read_to_string(document("receipt.txt")).unwrap();
    let (sideways_cer, straight_cer) = (
        character_error_rate(&text(sideways), &truth),
        character_error_rate(&text(straight), &truth),
    );
    println!(
        "sideways photo vs upright: CER {:.2}%; against the receipt's truth {:.2}% and {:.2}%",
        cer * 100.0,
        sideways_cer * 100.0,
        straight_cer * 100.0,
    );
    // Read as well as its upright twin: a word the engine misreads on one
    // copy's pixels and not the other's is noise, not the turn.
    assert!(
        sideways_cer <= straight_cer + 0.01 && sideways_cer <= 0.05,
        "CER {sideways_cer} against {straight_cer}:\n{}\n---\n{}",
        text(sideways),
        text(straight)
    );

    // The boxes are on the upright photo at full size, as a browser shows it.
    for job in [sideways, straight] {
        let id = job["job_id"].as_str().unwrap();
        let status = json(&dev.ocr(&["status", id, "--json"]));
        let url = status["result_url"].as_str().unwrap().to_owned();
        let result: Value = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() });
        let page = &result["pages"][0];
        let (width, height) = (
            page["width"].as_i64().unwrap(),
            page["height"].as_i64().unwrap(),
        );
        assert!(
            (width - 3000).abs() <= 2 && (height - 4000).abs() <= 2,
            "{width}×{height}"
        );
        let words = page["words"].as_array().unwrap();
        assert!(words.len() > 20);
        for vertex in words
            .iter()
            .flat_map(|word| word["vertices"].as_array().unwrap())
        {
            let (x, y) = (vertex["x"].as_i64().unwrap(), vertex["y"].as_i64().unwrap());
            assert!(
                (0..=width).contains(&x) && (0..=height).contains(&y),
                "{vertex}"
            );
        }
    }
}

/// The numbers after each "PAGEMARK" in `text`, in order.
fn page_marks(text: &str) -> Vec<u32> {
    text.split("PAGEMARK")
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}

#[test]
fn a_250_page_pdf_is_one_job_read_in_chunks_with_progress_rising_and_pages_in_order() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstage = runtime.block_on(ocr_tests::fake_upstage::FakeUpstage::start());
    // Slow enough that the progress between chunks can be seen by polling.
    upstage.read_pdfs(Duration::from_millis(1500));
    let dev = Dev::with_upstage(&upstage, &[("OCR_RETRY_BASE_SECONDS", "0")]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contract-250.pdf");
    ocr_tests::dev_process::render(&["--long-pdf".as_ref(), path.as_os_str(), "250".as_ref()]);
    let size = std::fs::metadata(&path).unwrap().len();
    let started = Instant::now();
    let created = json(&dev.ocr(&["submit", path.to_str().unwrap(), "--json"]));
    let id = created["job_id"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    let job = loop {
        let job = json(&dev.ocr(&["status", &id, "--json"]));
        if let Some(done) = job["pages_done"].as_u64() {
            assert_eq!(job["pages"], 250, "counted at ingest: {job}");
            seen.push(done);
        }
        let status = job["status"].as_str().unwrap();
        if !["awaiting_upload", "queued", "processing"].contains(&status) {
            break job;
        }
        assert!(started.elapsed() < Duration::from_secs(240), "{job}");
        std::thread::sleep(Duration::from_millis(150));
    };
    let elapsed = started.elapsed();
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["pages"], 250, "{job}");
    assert!(job.get("pages_done").is_none(), "{job}");
    assert!(
        seen.windows(2).all(|pair| pair[0] <= pair[1]),
        "progress never falls: {seen:?}"
    );
    assert!(
        seen.iter().any(|done| (1..250).contains(done)),
        "progress seen between the chunks: {seen:?}"
    );
    // Three calls within Upstage's 100 pages each, none refused.
    let mut chunk_pages: Vec<u32> = upstage.calls().iter().filter_map(|c| c.pages).collect();
    chunk_pages.sort();
    assert_eq!(chunk_pages, [50, 100, 100]);
    assert!(upstage.refused().is_empty(), "{:?}", upstage.refused());
    // One result, its pages numbered through and in the document's order.
    assert_eq!(
        page_marks(job["text"].as_str().unwrap()),
        (1..=250).collect::<Vec<_>>()
    );
    let url = job["result_url"].as_str().unwrap().to_owned();
    let result: Value =
        runtime.block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() });
    let pages = result["pages"].as_array().unwrap();
    for (index, page) in pages.iter().enumerate() {
        assert_eq!(page["page"], index + 1);
        assert_eq!(
            page_marks(page["text"].as_str().unwrap()),
            [index as u32 + 1]
        );
    }
    assert_eq!(pages.len(), 250);
    println!(
        "250-page PDF ({:.1} MiB): {:.1} s from submit to completed through the fake Upstage (1.5 s per call, 3 calls/s), progress seen {:?}, peak RSS of ocr dev {:.0} MiB",
        size as f64 / 1048576.0,
        elapsed.as_secs_f64(),
        {
            let mut distinct = seen.clone();
            distinct.dedup();
            distinct
        },
        peak_rss_mib(dev.child.id()),
    );
}

/// A one-page PDF with each text as its text layer, named after it
/// (`{text}.pdf` in `dir`): distinct bytes that the fake Upstage reads back.
fn one_page_pdfs(dir: &Path, texts: impl Iterator<Item = String>) -> Vec<String> {
    texts
        .map(|text| {
            let path = dir.join(format!("{text}.pdf"));
            std::fs::write(&path, ocr_shared::pdf::sample_of(&[text])).unwrap();
            path.to_str().unwrap().to_owned()
        })
        .collect()
}

/// Jobs of `dev`'s default user, by id, once none of them is under way.
fn wait_until_all_finished(
    dev: &ocr_tests::dev_process::Dev,
    count: usize,
    within: Duration,
) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let listing = json(&dev.ocr(&["list", "--limit", "100", "--json"]));
        let jobs = listing["jobs"].as_array().unwrap().clone();
        let finished = jobs
            .iter()
            .filter(|job| {
                !["awaiting_upload", "queued", "processing"]
                    .contains(&job["status"].as_str().unwrap())
            })
            .count();
        if jobs.len() == count && finished == count {
            return jobs;
        }
        assert!(
            started.elapsed() < within,
            "{finished} of {count} jobs finished in {within:?}: {listing}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn fifty_documents_queued_through_30_s_of_429s_under_a_3_per_second_quota_all_complete() {
    const DOCUMENTS: usize = 50;
    const RPS: f64 = 3.0;
    const STORM: Duration = Duration::from_secs(30);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstage = runtime.block_on(ocr_tests::fake_upstage::FakeUpstage::start());
    upstage.read_pdfs(Duration::from_millis(100));
    let dev = Dev::with_upstage(
        &upstage,
        &[
            ("OCR_RATE_LIMIT_RPS", "3"),
            ("JOB_CREATE_RATE_PER_MINUTE", "100000"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let texts = (1..=DOCUMENTS).map(|n| format!("STORM {n:02}"));
    let files = one_page_pdfs(dir.path(), texts);
    upstage.rate_limit_for(STORM);
    let started = Instant::now();
    let mut args = vec!["submit", "--json"];
    args.extend(files.iter().map(String::as_str));
    let submitted = dev.ocr(&args);
    assert!(submitted.status.success(), "{}", stdout(&submitted));
    let jobs = wait_until_all_finished(&dev, DOCUMENTS, Duration::from_secs(300));
    let elapsed = started.elapsed();

    let completed = jobs
        .iter()
        .filter(|job| job["status"] == "completed")
        .count();
    assert_eq!(completed, DOCUMENTS, "none fails: {jobs:?}");
    for job in &jobs {
        let id = job["job_id"].as_str().unwrap();
        let job = json(&dev.ocr(&["status", id, "--json"]));
        let name = job["filename"].as_str().unwrap();
        let n = &name["storm-".len()..name.len() - ".pdf".len()];
        assert_eq!(
            job["text"],
            format!("STORM {n}"),
            "each job its own text: {job}"
        );
        assert_eq!(job["attempts"], 1, "a 429 is not an attempt: {job}");
    }
    let throttled = upstage.throttled();
    assert!(throttled > 0, "the storm was met");
    assert_eq!(upstage.calls().len(), DOCUMENTS, "one read each, no more");
    assert!(upstage.refused().is_empty(), "{:?}", upstage.refused());
    // The quota holds through the storm and after it: one second's worth
    // (the quota's window) of calls more than the rate at most.
    let arrivals = upstage.arrivals();
    let span = arrivals
        .last()
        .unwrap()
        .duration_since(arrivals[0])
        .as_secs_f64();
    assert!(
        arrivals.len() as f64 <= RPS * span.ceil() + RPS,
        "{} requests in {span:.1} s against a quota of {RPS}/s",
        arrivals.len()
    );
    let in_storm = arrivals
        .iter()
        .filter(|at| at.duration_since(arrivals[0]) < STORM)
        .count();
    println!(
        "429 storm: {DOCUMENTS} documents, every call refused for {} s, quota {RPS}/s: all {completed} completed in {:.1} s ({:.1} s after the storm), 0 failed, {throttled} calls refused, {} reads (one each), {} requests in all over {span:.1} s; quota use during the storm {:.0}%",
        STORM.as_secs(),
        elapsed.as_secs_f64(),
        elapsed.saturating_sub(STORM).as_secs_f64(),
        upstage.calls().len(),
        arrivals.len(),
        100.0 * in_storm as f64 / (RPS * STORM.as_secs_f64()),
    );
}

#[test]
fn ocr_search_finds_korean_english_and_mixed_text_with_snippets() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstage = runtime.block_on(ocr_tests::fake_upstage::FakeUpstage::start());
    let dev = Dev::with_upstage(&upstage, &[]);
    let dir = tempfile::tempdir().unwrap();
    let texts = [
        "주식회사 한빛문서 임대차 계약서",
        "INVOICE No. 42 Total 12,000",
        "한빛 Trading Co. 영수증",
    ];
    // Read one after another, each answered with its text as Upstage would.
    upstage.script(texts.map(|text| {
        let read = ocr_tests::fake_upstage::pdf_response(&[text.to_owned()]);
        ocr_tests::fake_upstage::Reply::Ok(read)
    }));
    let files = one_page_pdfs(dir.path(), (1..=3).map(|n| format!("document {n}")));
    let mut args = vec!["submit", "--wait", "--json"];
    args.extend(files.iter().map(String::as_str));
    let submitted = dev.ocr(&args);
    assert!(submitted.status.success(), "{}", stdout(&submitted));

    let hits = |query: &str| -> Vec<String> {
        let found = json(&dev.ocr(&["search", query, "--json"]));
        found["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|job| job["snippet"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(hits("한빛 문서"), [texts[0]], "Korean, across a space");
    assert_eq!(hits("invoice no.42"), [texts[1]], "English, any case");
    assert_eq!(hits("trading co. 영수증"), [texts[2]], "mixed");
    assert_eq!(hits("한빛"), [texts[2], texts[0]], "newest first");
    assert!(hits("없는 말").is_empty());

    let printed = stdout(&dev.ocr(&["search", "한빛문서"]));
    assert!(
        printed.contains("\n    주식회사 한빛문서 임대차 계약서"),
        "{printed}"
    );
    // With a filter: the hit's own document type keeps it, another drops it.
    let found = json(&dev.ocr(&["search", "한빛문서", "--json"]));
    let kind = found["jobs"][0]["document_type"]
        .as_str()
        .unwrap()
        .to_owned();
    let kept = json(&dev.ocr(&["search", "한빛", "--document-type", &kind, "--json"]));
    assert_eq!(kept["jobs"].as_array().unwrap().len(), 1, "{kept}");
    let dropped = json(&dev.ocr(&["search", "한빛", "--document-type", "id_card", "--json"]));
    assert!(dropped["jobs"].as_array().unwrap().is_empty(), "{dropped}");
    let refused = dev.ocr(&["search", "   "]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no letters or digits"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn a_low_confidence_read_needs_review_in_the_status_the_webhook_and_the_listing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstage = runtime.block_on(ocr_tests::fake_upstage::FakeUpstage::start());
    let receiver = runtime.block_on(ocr_tests::receiver::Receiver::start());
    let mut blurred =
        ocr_tests::fake_upstage::pdf_response(&["흐릿한 영수증".into(), "합계".into()]);
    blurred["confidence"] = json!(0.55);
    blurred["pages"][1]["confidence"] = json!(0.55);
    // The first document reads blurred; the second gets the clear receipt.
    upstage.script([ocr_tests::fake_upstage::Reply::Ok(blurred)]);
    let dev = Dev::with_upstage(&upstage, &[]);
    let dir = tempfile::tempdir().unwrap();
    let files = one_page_pdfs(
        dir.path(),
        ["blurred".to_owned(), "clear".to_owned()].into_iter(),
    );
    let submitted = dev.ocr(&[
        "submit",
        &files[0],
        &files[1],
        "--wait",
        "--json",
        "--webhook",
        &receiver.url,
    ]);
    assert!(submitted.status.success(), "{}", stdout(&submitted));
    let jobs: Vec<Value> = stdout(&submitted)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(jobs[0]["needs_review"], true, "{}", jobs[0]);
    assert_eq!(jobs[0]["review_pages"], json!([2]), "{}", jobs[0]);
    assert_eq!(jobs[1]["needs_review"], false, "{}", jobs[1]);
    assert!(jobs[1].get("review_pages").is_none());

    let id = jobs[0]["job_id"].as_str().unwrap();
    let shown = stdout(&dev.ocr(&["status", id]));
    assert!(
        shown.contains("needs review: read with low confidence on page(s) 2"),
        "{shown}"
    );
    let flagged = json(&dev.ocr(&["list", "--needs-review", "--json"]));
    let listed: Vec<&str> = flagged["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [id], "{flagged}");

    wait_for_deliveries(&receiver, 2);
    let events: Vec<Value> = receiver
        .received()
        .iter()
        .map(|delivery| serde_json::from_slice(&delivery.body).unwrap())
        .collect();
    let announced = events
        .iter()
        .find(|event| event["job"]["job_id"] == id)
        .expect("the blurred job's webhook");
    assert_eq!(announced["job"]["needs_review"], true, "{announced}");
    assert_eq!(announced["job"]["review_pages"], json!([2]), "{announced}");
}

#[test]
fn tesseract_reads_a_long_pdf_through_the_same_chunks_and_bad_pdfs_are_refused_with_reasons() {
    let dev = Dev::start_with(
        free_port(),
        tempfile::tempdir().unwrap(),
        &[("OCR_PAGES_PER_CALL", "2"), ("MAX_PDF_PAGES", "4")],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("three-pages.pdf");
    ocr_tests::dev_process::render(&["--long-pdf".as_ref(), path.as_os_str(), "3".as_ref()]);
    let job = json(&dev.ocr(&["submit", path.to_str().unwrap(), "--wait", "--json"]));
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        (&job["engine"], &job["pages"]),
        (&"tesseract".into(), &3.into())
    );
    assert_eq!(
        page_marks(job["text"].as_str().unwrap()),
        [1, 2, 3],
        "{job}"
    );
    let log = dev.log();
    assert_eq!(log.matches("chunk read").count(), 2, "pages 1-2, then 3");

    ocr_tests::dev_process::render(&["--pdf-variants".as_ref(), dir.path().as_os_str()]);
    let refused = |name: &str| {
        let path = dir.path().join(name);
        let output = dev.ocr(&["submit", path.to_str().unwrap(), "--wait", "--json"]);
        assert_eq!(output.status.code(), Some(1), "{name}");
        let job = json(&output);
        assert_eq!(job["status"], "rejected", "{job}");
        job["error"].clone()
    };
    let error = refused("user-password.pdf");
    assert_eq!(error["code"], "encrypted_document");
    assert_eq!(
        error["message"],
        "the PDF is protected by a password; remove the password and upload it again"
    );
    let error = refused("plain.pdf");
    assert_eq!(error["code"], "too_many_pages");
    assert_eq!(
        error["message"],
        "the PDF has 5 pages; the limit is 4 pages (split it into smaller files)"
    );
}

/// Every check of schemathesis (status codes, content types, response
/// schemas, server errors, schema-valid requests accepted and schema-violating
/// ones refused), with a bounded number of examples per operation, against
/// openapi.yaml on `ocr dev` with a valid token.
#[test]
fn schemathesis_finds_the_api_true_to_its_spec() {
    let schemathesis = repo().join(".venv-schemathesis/bin/schemathesis");
    assert!(
        schemathesis.is_file(),
        "schemathesis is not installed: run `make setup-schemathesis`"
    );
    let dev = Dev::start_with(
        free_port(),
        tempfile::tempdir().unwrap(),
        &[("JOB_CREATE_RATE_PER_MINUTE", "100000")],
    );
    let output = Command::new(schemathesis)
        // The exceptions, each with its reason, are in schemathesis.toml.
        .args(["--config-file", "schemathesis.toml"])
        .args(["run", "openapi.yaml", "--checks", "all", "--workers", "1"])
        .args(["--exclude-checks", "unsupported_method"])
        .args(["--max-examples", "25", "--seed", "20261127"])
        // Past its 10 s default, under the load of the tests beside it, a slow
        // answer would count as a failure of the API.
        .args(["--request-timeout", &CEILING.as_secs().to_string()])
        .arg("--url")
        .arg(format!("http://127.0.0.1:{}", dev.port))
        .arg("--header")
        .arg(format!("Authorization: Bearer {}", dev.token))
        .current_dir(repo())
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .output()
        .expect("schemathesis runs");
    let report = stdout(&output);
    let summary: Vec<&str> = report
        .lines()
        .filter(|line| {
            line.contains("generated") || line.contains("passed") || line.contains("failures")
        })
        .collect();
    println!("schemathesis: {}", summary.join(" | "));
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!report.contains("Server error"), "{report}");
}

/// How much a corpus case declares of itself when it opens its job.
#[derive(Clone, Copy)]
enum Declared {
    /// Its real size (and, with `true`, its real SHA-256).
    Truly(bool),
    /// One byte more than it has.
    OneMore,
    /// Another file's SHA-256.
    WrongHash,
    Size(u64),
}

/// Where a corpus case must end.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ends {
    /// Refused when the job is opened: this status and code.
    Refused(u16, &'static str),
    /// Rejected by ingest with this code.
    Rejected(&'static str),
    /// Refused by storage at the upload, or else rejected by ingest with this code.
    NotStored(&'static str),
    /// Read: completed with this many pages.
    Read(u64),
}

struct Corpus {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    api: String,
    token: String,
    /// Every status the API answered.
    statuses: Vec<u16>,
}

impl Corpus {
    fn call(&mut self, method: reqwest::Method, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
        let request = self
            .http
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body.unwrap_or_default());
        let (status, text) = self.runtime.block_on(async {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        });
        self.statuses.push(status);
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Opens a job for `bytes` as declared, uploads them as the API said, and
    /// follows the job to where it ends.
    fn submit(
        &mut self,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
        declared: Declared,
    ) -> Ends {
        use sha2::Digest as _;
        let mut request = serde_json::json!({"filename": filename, "content_type": content_type, "size": bytes.len()});
        match declared {
            Declared::Truly(true) => {
                request["sha256"] = hex::encode(sha2::Sha256::digest(bytes)).into()
            }
            Declared::Truly(false) => {}
            Declared::OneMore => request["size"] = (bytes.len() + 1).into(),
            Declared::WrongHash => {
                request["sha256"] = hex::encode(sha2::Sha256::digest(b"other")).into()
            }
            Declared::Size(size) => request["size"] = size.into(),
        }
        let (status, created) = self.call(
            reqwest::Method::POST,
            "/v1/jobs",
            Some(request.to_string().into_bytes()),
        );
        if status == 200 && created["deduplicated"] == true {
            // The owner's same bytes were read before: answered at once.
            return Ends::Read(created["pages"].as_u64().unwrap());
        }
        if status != 201 {
            let code = created["error"]["code"]
                .as_str()
                .unwrap_or_else(|| panic!("{filename}: {status} {created}"));
            assert!(!created["error"]["message"].as_str().unwrap().is_empty());
            return Ends::Refused(status, Box::leak(code.to_owned().into_boxed_str()));
        }
        let upload = &created["upload"];
        let mut put = self
            .http
            .put(upload["url"].as_str().unwrap())
            .body(bytes.to_vec());
        for (name, value) in upload["headers"].as_object().unwrap() {
            if name != "content-length" {
                put = put.header(name, value.as_str().unwrap());
            }
        }
        let stored = self
            .runtime
            .block_on(async { put.send().await.unwrap().status().as_u16() });
        let id = created["job_id"].as_str().unwrap().to_owned();
        if stored >= 400 {
            return Ends::NotStored("refused by storage");
        }
        let started = Instant::now();
        loop {
            let (status, job) = self.call(reqwest::Method::GET, &format!("/v1/jobs/{id}"), None);
            assert_eq!(status, 200, "{job}");
            match job["status"].as_str().unwrap() {
                "completed" => return Ends::Read(job["pages"].as_u64().unwrap()),
                "rejected" | "failed" => {
                    assert!(
                        !job["error"]["message"].as_str().unwrap().is_empty(),
                        "{job}"
                    );
                    let code = job["error"]["code"].as_str().unwrap().to_owned();
                    return Ends::Rejected(Box::leak(code.into_boxed_str()));
                }
                _ => assert!(started.elapsed() < CEILING, "{filename} stuck: {job}"),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A corpus upload: what it is, its filename, declared type and bytes, what
/// it declares of itself, and where it must end.
type Upload<'a> = (&'a str, &'a str, &'a str, Vec<u8>, Declared, Ends);

/// A corpus request: what it is, method, path, body, and the status and code it must get.
type Call<'a> = (
    &'a str,
    reqwest::Method,
    String,
    Option<Vec<u8>>,
    u16,
    &'a str,
);

#[test]
fn bad_input_corpus_every_input_gets_a_clear_status_and_reason_and_nothing_rejected_reaches_upstage()
 {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstage = runtime.block_on(ocr_tests::fake_upstage::FakeUpstage::start());
    upstage.read_pdfs(Duration::ZERO);
    let dev = Dev::with_upstage(&upstage, &[("JOB_CREATE_RATE_PER_MINUTE", "100000")]);
    let dir = tempfile::tempdir().unwrap();
    ocr_tests::dev_process::run_tool("bad_inputs.py", &[dir.path().as_os_str()]);
    let scan = dir.path().join("scanned-1000.pdf");
    ocr_tests::dev_process::run_tool(
        "bad_inputs.py",
        &["--scanned-pdf".as_ref(), scan.as_os_str(), "1000".as_ref()],
    );
    let file = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let receipt = std::fs::read(document("receipt.png")).unwrap();
    let mut corpus = Corpus {
        runtime: tokio::runtime::Runtime::new().unwrap(),
        http: reqwest::Client::new(),
        api: dev.url(),
        token: dev.token.clone(),
        statuses: Vec::new(),
    };
    let png = "image/png";
    let pdf = "application/pdf";
    let four_kb = "가".repeat(1400);
    let cases: Vec<Upload> = vec![
        (
            "empty",
            "empty.png",
            png,
            file("empty.png"),
            Declared::Truly(false),
            Ends::Refused(400, "empty_file"),
        ),
        (
            "1 byte",
            "one.png",
            png,
            file("one-byte.png"),
            Declared::Truly(false),
            Ends::Rejected("unsupported_type"),
        ),
        (
            "truncated PNG",
            "cut.png",
            png,
            file("truncated.png"),
            Declared::Truly(false),
            Ends::Rejected("truncated_file"),
        ),
        (
            "truncated JPEG",
            "cut.jpg",
            "image/jpeg",
            file("truncated.jpg"),
            Declared::Truly(false),
            Ends::Rejected("truncated_file"),
        ),
        (
            "truncated PDF",
            "cut.pdf",
            pdf,
            file("truncated.pdf"),
            Declared::Truly(false),
            Ends::Rejected("truncated_file"),
        ),
        (
            "a JPEG with a PDF header inside, as a PDF",
            "x.pdf",
            pdf,
            file("jpeg-with-pdf-header.jpg"),
            Declared::Truly(false),
            Ends::Read(1),
        ),
        (
            "a PNG named .jpg (a browser declares the type from the name)",
            "receipt.jpg",
            "image/jpeg",
            [receipt.as_slice(), b"\n"].concat(),
            Declared::Truly(false),
            Ends::Read(1),
        ),
        (
            "HTML as .png",
            "page.png",
            png,
            file("page.html.png"),
            Declared::Truly(false),
            Ends::Rejected("unsupported_type"),
        ),
        (
            "SVG as .png",
            "drawing.png",
            png,
            file("drawing.svg.png"),
            Declared::Truly(false),
            Ends::Rejected("unsupported_type"),
        ),
        (
            "ZIP as .pdf",
            "archive.pdf",
            pdf,
            file("archive.zip.pdf"),
            Declared::Truly(false),
            Ends::Rejected("unsupported_type"),
        ),
        (
            "EXE as .png",
            "program.png",
            png,
            file("program.exe.png"),
            Declared::Truly(false),
            Ends::Rejected("unsupported_type"),
        ),
        (
            "a PNG declaring 60000 x 60000",
            "bomb.png",
            png,
            file("bomb-60000x60000.png"),
            Declared::Truly(false),
            Ends::Rejected("image_too_large"),
        ),
        (
            "a sideways 100-megapixel photo (EXIF orientation 6)",
            "photo.jpg",
            "image/jpeg",
            file("sideways-100mp.jpg"),
            Declared::Truly(true),
            Ends::Read(1),
        ),
        (
            "a JPEG whose frame header sits past its first 64 KiB",
            "late.jpg",
            "image/jpeg",
            file("frame-past-64k-20000x20000.jpg"),
            Declared::Truly(false),
            Ends::Rejected("image_too_large"),
        ),
        (
            "a 3-page TIFF whose third page declares 60000 × 60000",
            "scan.tif",
            "image/tiff",
            file("tiff-huge-third-page.tif"),
            Declared::Truly(false),
            Ends::Rejected("image_too_large"),
        ),
        (
            "1 MB of PDF whose object streams inflate to 4 × 250 MiB",
            "bomb.pdf",
            pdf,
            file("object-stream-bomb.pdf"),
            Declared::Truly(false),
            Ends::Rejected("document_too_complex"),
        ),
        (
            "a PDF that needs a password",
            "locked.pdf",
            pdf,
            file("password.pdf"),
            Declared::Truly(false),
            Ends::Rejected("encrypted_document"),
        ),
        (
            "a PDF with no pages",
            "none.pdf",
            pdf,
            file("no-pages.pdf"),
            Declared::Truly(false),
            Ends::Rejected("unreadable_document"),
        ),
        (
            "1,001 pages",
            "long.pdf",
            pdf,
            file("pages-1001.pdf"),
            Declared::Truly(false),
            Ends::Rejected("too_many_pages"),
        ),
        (
            "1,000 pages",
            "long.pdf",
            pdf,
            file("pages-1000.pdf"),
            Declared::Truly(true),
            Ends::Read(1000),
        ),
        (
            "1,000 scanned pages, 43 MB: near the size limit",
            "scan.pdf",
            pdf,
            file("scanned-1000.pdf"),
            Declared::Truly(true),
            Ends::Read(1000),
        ),
        (
            "one byte over the limit",
            "big.png",
            png,
            receipt.clone(),
            Declared::Size(50 * 1024 * 1024 + 1),
            Ends::Refused(413, "file_too_large"),
        ),
        (
            "a size other than declared",
            "r.png",
            png,
            receipt.clone(),
            Declared::OneMore,
            Ends::NotStored("size_mismatch"),
        ),
        (
            "a SHA-256 other than declared",
            "r.png",
            png,
            receipt.clone(),
            Declared::WrongHash,
            Ends::NotStored("checksum_mismatch"),
        ),
        (
            "a filename with ../",
            "../../etc/passwd.png",
            png,
            receipt.clone(),
            Declared::Truly(true),
            Ends::Read(1),
        ),
        (
            "a filename with NUL",
            "a\u{0}.png",
            png,
            receipt.clone(),
            Declared::Truly(false),
            Ends::Refused(400, "invalid_filename"),
        ),
        (
            "a filename with a right-to-left override",
            "receipt\u{202E}gnp.exe",
            png,
            receipt.clone(),
            Declared::Truly(false),
            Ends::Refused(400, "invalid_filename"),
        ),
        (
            "a filename of 4 KB",
            &four_kb,
            png,
            receipt.clone(),
            Declared::Truly(false),
            Ends::Refused(400, "invalid_filename"),
        ),
        (
            "a Korean filename with an emoji",
            "영수증 🧾.png",
            png,
            receipt.clone(),
            Declared::Truly(true),
            Ends::Read(1),
        ),
        (
            "a content type in odd case with a parameter",
            "r.png",
            "IMAGE/PNG; charset=binary",
            receipt.clone(),
            Declared::Truly(true),
            Ends::Read(1),
        ),
        (
            "a content type of no accepted kind",
            "r.png",
            "image/gif",
            receipt.clone(),
            Declared::Truly(false),
            Ends::Refused(415, "unsupported_type"),
        ),
    ];
    let mut report = Vec::new();
    let mut refused_names = Vec::new();
    for (what, filename, content_type, bytes, declared, expected) in cases {
        let ended = corpus.submit(filename, content_type, &bytes, declared);
        let fits = match (expected, ended) {
            (Ends::NotStored(code), Ends::Rejected(got)) => code == got,
            (Ends::NotStored(_), Ends::NotStored(_)) => true,
            (expected, ended) => expected == ended,
        };
        assert!(fits, "{what}: expected {expected:?}, ended {ended:?}");
        if !matches!(ended, Ends::Read(_)) {
            refused_names.push(filename.to_owned());
        }
        report.push(format!("{what}: {ended:?}"));
    }
    // JSON bodies, ids and listing parameters: each a 4xx with its code.
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let big = serde_json::json!({"filename": "x".repeat(10 * 1024 * 1024), "content_type": png, "size": 1}).to_string();
    let requests: Vec<Call> = vec![
        (
            "malformed JSON",
            reqwest::Method::POST,
            "/v1/jobs".into(),
            Some(b"{\"filename\":".to_vec()),
            400,
            "invalid_json",
        ),
        (
            "non-UTF-8",
            reqwest::Method::POST,
            "/v1/jobs".into(),
            Some(b"{\"filename\": \"\xff\xfe\"}".to_vec()),
            400,
            "invalid_json",
        ),
        (
            "deeply nested",
            reqwest::Method::POST,
            "/v1/jobs".into(),
            Some(nested.into_bytes()),
            400,
            "invalid_json",
        ),
        (
            "duplicate keys",
            reqwest::Method::POST,
            "/v1/jobs".into(),
            Some(br#"{"filename":"a.png","content_type":"image/png","size":3,"size":9}"#.to_vec()),
            400,
            "invalid_json",
        ),
        (
            "10 MB of JSON",
            reqwest::Method::POST,
            "/v1/jobs".into(),
            Some(big.into_bytes()),
            413,
            "Request Entity Too Large",
        ),
        (
            "an uppercase job id",
            reqwest::Method::GET,
            "/v1/jobs/0B7A6F0E-2C55-4A7E-9D1A-3F0C0D1E2F3A".into(),
            None,
            404,
            "not_found",
        ),
        (
            "a job id that is not v4",
            reqwest::Method::GET,
            "/v1/jobs/0b7a6f0e-2c55-1a7e-9d1a-3f0c0d1e2f3a".into(),
            None,
            404,
            "not_found",
        ),
        (
            "an SQL-looking job id",
            reqwest::Method::GET,
            "/v1/jobs/1'%20OR%20'1'%3D'1".into(),
            None,
            404,
            "not_found",
        ),
        (
            "a NoSQL-looking job id",
            reqwest::Method::DELETE,
            "/v1/jobs/%7B%22%24ne%22%3Anull%7D".into(),
            None,
            404,
            "not_found",
        ),
        (
            "limit 0",
            reqwest::Method::GET,
            "/v1/jobs?limit=0".into(),
            None,
            400,
            "invalid_limit",
        ),
        (
            "limit 1000000",
            reqwest::Method::GET,
            "/v1/jobs?limit=1000000".into(),
            None,
            400,
            "invalid_limit",
        ),
        (
            "limit -1",
            reqwest::Method::GET,
            "/v1/jobs?limit=-1".into(),
            None,
            400,
            "invalid_limit",
        ),
        (
            "an unknown status",
            reqwest::Method::GET,
            "/v1/jobs?status=done".into(),
            None,
            400,
            "invalid_status",
        ),
        (
            "a forged cursor",
            reqwest::Method::GET,
            "/v1/jobs?cursor=eyJqb2JfaWQiOiJ4In0".into(),
            None,
            400,
            "invalid_cursor",
        ),
    ];
    for (what, method, path, body, status, code) in requests {
        let (got, answer) = corpus.call(method, &path, body);
        // API Gateway's own refusals carry a message, the API's a code.
        let said = answer["error"]["code"]
            .as_str()
            .or(answer["message"].as_str());
        assert_eq!((got, said), (status, Some(code)), "{what}: {answer:.300}");
        report.push(format!("{what}: {got} {code}"));
    }
    // Another owner's cursor: a page of bob's is no page of alice's.
    let bob = stdout(&dev.ocr(&["token", "--sub", "bob"]))
        .trim()
        .to_owned();
    let mut as_bob = Corpus {
        token: bob,
        runtime: tokio::runtime::Runtime::new().unwrap(),
        http: reqwest::Client::new(),
        api: dev.url(),
        statuses: Vec::new(),
    };
    for _ in 0..2 {
        as_bob.call(
            reqwest::Method::POST,
            "/v1/jobs",
            Some(br#"{"filename":"b.png","content_type":"image/png","size":3}"#.to_vec()),
        );
    }
    let (_, page) = as_bob.call(reqwest::Method::GET, "/v1/jobs?limit=1", None);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("bob has a second page")
        .to_owned();
    let (got, answer) = corpus.call(
        reqwest::Method::GET,
        &format!("/v1/jobs?limit=1&cursor={cursor}"),
        None,
    );
    assert_eq!(
        (got, answer["error"]["code"].as_str()),
        (400, Some("invalid_cursor")),
        "{answer}"
    );

    let server_errors = corpus
        .statuses
        .iter()
        .filter(|status| **status >= 500)
        .count();
    assert_eq!(server_errors, 0, "{:?}", corpus.statuses);
    // Upstage read each 1,000-page PDF in ten calls, the photo once, the
    // receipt once (its later uploads were the same bytes, answered from the
    // first read), the PNG named .jpg and the JPEG sent as a PDF once each as
    // what their bytes are, and never saw anything refused.
    let calls = upstage.calls();
    let chunks: Vec<u32> = calls.iter().filter_map(|call| call.pages).collect();
    assert_eq!(chunks, [100; 20], "{calls:?}");
    assert_eq!(calls.len(), 24, "{calls:?}");
    for (name, read_as) in [("receipt.jpg", "image/png"), ("x.pdf", "image/jpeg")] {
        let call = calls.iter().find(|call| call.filename == name);
        assert_eq!(
            call.map(|call| call.content_type.as_str()),
            Some(read_as),
            "{calls:?}"
        );
    }
    // Every function ran in this one process: through the 100-megapixel photo
    // and the 1,000 scanned pages it stayed within one worker's memory.
    let peak = peak_rss_mib(dev.child.id());
    println!("bad-input corpus: ocr dev peak RSS {peak:.0} MiB");
    assert!(peak < 512.0, "ocr dev peaked at {peak:.0} MiB");
    for call in &calls {
        assert!(!refused_names.contains(&call.filename), "{call:?}");
    }
    assert!(upstage.refused().is_empty(), "{:?}", upstage.refused());
    println!(
        "bad-input corpus: {} inputs, {} API answers, 0 server errors, {} Upstage calls (all for documents read)\n{}",
        report.len() + 1,
        corpus.statuses.len(),
        calls.len(),
        report.join("\n")
    );
}
