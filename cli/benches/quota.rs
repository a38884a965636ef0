//! `make bench`: throughput against Upstage's quota, and what a document costs.
//!
//! The local stack (`ocr dev`, moto) reads 200 one-page PDFs, all submitted at
//! once, through a fake Upstage that enforces 3 requests per second of the
//! clock (429 with Retry-After beyond), answering at once and after 800 ms.
//! For each: the documents per second, the quota used, the 429s seen and the
//! failed jobs.
//!
//! A third run sends 100 documents one a second (under the quota, as a month
//! of 1M documents averages 0.4 a second) with 800 ms reads: it gives the cost
//! model its quantities, measured rather than guessed: every request moto received (DynamoDB by action with its bytes,
//! S3 by method, SQS, SNS), divided by the documents, and each function's
//! invocations and busy time as `ocr dev` tallies them (Lambda's REPORT lines,
//! added up). Prices are list prices, stated below with their date and source.
//! Prints figures; asserts only that no job failed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ocr_tests::dev_process::{Dev, free_port};
use ocr_tests::fake_upstage::{API_KEY, FakeUpstage};
use serde_json::Value;

const OCR: &str = env!("CARGO_BIN_EXE_ocr");
const BURST: usize = 200;
const STEADY: usize = 100;
const QUOTA: usize = 3;

/// US East (N. Virginia) list prices, as published on the AWS pricing pages
/// (aws.amazon.com/{lambda,api-gateway,sqs,sns,dynamodb,s3,cloudwatch}/pricing)
/// in November 2024 (DynamoDB on-demand after its November 2024 cut); check
/// them before relying on the totals.
mod price {
    /// Lambda, arm64, per GB-second and per request.
    pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// API Gateway HTTP API, per request (first 300 million a month).
    pub const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
    /// SQS standard queue, per request (64 KB chunk).
    pub const SQS_REQUEST: f64 = 0.40 / 1e6;
    /// SNS, per publish (deliveries to SQS are free).
    pub const SNS_PUBLISH: f64 = 0.50 / 1e6;
    /// DynamoDB on-demand, per write and read request unit; storage per GB-month.
    pub const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
    pub const DYNAMODB_READ_UNIT: f64 = 0.125 / 1e6;
    /// S3 Standard: PUT, COPY, POST, LIST and GET, HEAD per request; storage per GB-month.
    pub const S3_PUT: f64 = 0.005 / 1e3;
    pub const S3_GET: f64 = 0.0004 / 1e3;
    pub const S3_GB_MONTH: f64 = 0.023;
    /// CloudWatch Logs ingestion (standard class), per GB.
    pub const LOGS_GB: f64 = 0.50;
    /// Upstage Document OCR, per page (console price list, 2024; billed by Upstage).
    pub const UPSTAGE_PAGE: f64 = 0.0015;
    /// Always-on parts of the Python/Celery design, per month (on-demand, us-east-1):
    /// an ALB, web and worker EC2 t4g.small, RDS PostgreSQL db.t4g.small with
    /// 20 GB gp3, ElastiCache Redis cache.t4g.small, a NAT gateway.
    pub const ALB_MONTH: f64 = 16.43;
    pub const T4G_SMALL_MONTH: f64 = 12.26;
    pub const RDS_T4G_SMALL_MONTH: f64 = 23.36 + 20.0 * 0.115;
    pub const REDIS_T4G_SMALL_MONTH: f64 = 23.36;
    pub const NAT_MONTH: f64 = 32.85;
}

/// The template's memory sizes, in GB, by function.
fn memory_gb(function: &str) -> f64 {
    match function {
        "ingest" | "ocr-worker" => 0.5,
        _ => 0.25,
    }
}

/// A scanned one-page document's size, and how long uploads and results are
/// kept (the template's RetentionDays default).
const SCAN_BYTES: f64 = 300.0 * 1024.0;
const RETENTION_DAYS: f64 = 30.0;

fn one_page_pdfs(dir: &Path, count: usize) -> Vec<String> {
    (1..=count)
        .map(|n| {
            let path = dir.join(format!("quota-{n:03}.pdf"));
            let text = format!("영수증 {n:03} 합계 12,000원 RECEIPT {n:03}");
            std::fs::write(&path, ocr_shared::pdf::sample_of(&[text])).unwrap();
            path.to_str().unwrap().to_owned()
        })
        .collect()
}

fn json(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Every job of the default user, following the listing's cursors.
fn all_jobs(dev: &Dev) -> Vec<Value> {
    let mut jobs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut args = vec!["list", "--limit", "100", "--json"];
        if let Some(cursor) = &cursor {
            args.extend(["--cursor", cursor.as_str()]);
        }
        let page = json(&dev.ocr(&args));
        jobs.extend(page["jobs"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return jobs,
        }
    }
}

/// moto's request counts: service → action → (count, bytes).
type Requests = BTreeMap<String, BTreeMap<String, (f64, f64)>>;

async fn requests(moto: &str, reset: bool) -> Requests {
    let client = reqwest::Client::new();
    let url = format!("{moto}/lambda-ocr/requests");
    let answer = if reset {
        client.delete(&url).send().await
    } else {
        client.get(&url).send().await
    };
    let counts: Value = answer.unwrap().json().await.unwrap();
    let mut requests = Requests::new();
    for (service, actions) in counts.as_object().unwrap() {
        for (action, entry) in actions.as_object().unwrap() {
            requests.entry(service.clone()).or_default().insert(
                action.clone(),
                (
                    entry["count"].as_f64().unwrap(),
                    entry["bytes"].as_f64().unwrap(),
                ),
            );
        }
    }
    requests
}

fn minus(all: &Requests, part: &Requests, times: f64) -> Requests {
    let mut left = all.clone();
    for (service, actions) in part {
        for (action, (count, bytes)) in actions {
            if let Some(entry) = left.get_mut(service).and_then(|a| a.get_mut(action)) {
                entry.0 = (entry.0 - count * times).max(0.0);
                entry.1 = (entry.1 - bytes * times).max(0.0);
            }
        }
    }
    left
}

/// One function's line of `ocr dev`'s `invocations` summary:
/// `name count × events unit mean ms`.
fn invocations(line: &str) -> BTreeMap<String, (f64, f64, f64)> {
    line.trim_start_matches("invocations")
        .split(';')
        .filter_map(|part| {
            let words: Vec<&str> = part.split_whitespace().collect();
            let count: f64 = words.get(1)?.parse().ok()?;
            let events: f64 = words.get(3)?.parse().ok()?;
            let mean: f64 = words.get(5)?.parse().ok()?;
            Some((words[0].to_owned(), (count, events, mean)))
        })
        .collect()
}

struct Run {
    latency: Duration,
    documents: usize,
    seconds: f64,
    admitted: usize,
    throttled: usize,
    completed: usize,
    failed: usize,
    span: f64,
    requests: Requests,
    invocations: BTreeMap<String, (f64, f64, f64)>,
    log_bytes: u64,
}

/// `documents` PDFs read with `latency`: all at once, or one every `pace`.
fn run(
    runtime: &tokio::runtime::Runtime,
    documents: usize,
    latency: Duration,
    pace: Option<Duration>,
) -> Run {
    let moto = ocr_cli::moto::MotoServer::start(&ocr_tests::moto::default_binary()).unwrap();
    let upstage = runtime.block_on(FakeUpstage::start());
    upstage.read_pdfs(latency);
    upstage.enforce_quota(QUOTA);
    let mut dev = Dev::start_with(
        Path::new(OCR),
        free_port(),
        tempfile::tempdir().unwrap(),
        &[
            ("AWS_ENDPOINT_URL", moto.endpoint()),
            ("UPSTAGE_API_KEY", API_KEY),
            ("UPSTAGE_BASE_URL", upstage.url.as_str()),
            ("OCR_RATE_LIMIT_RPS", &QUOTA.to_string()),
            ("JOB_CREATE_RATE_PER_MINUTE", "100000"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let files = one_page_pdfs(dir.path(), documents);
    let log_before = dev.log().len() as u64;
    runtime.block_on(requests(moto.endpoint(), true));
    let started = Instant::now();
    let batches: Vec<&[String]> = match pace {
        Some(_) => files.chunks(1).collect(),
        None => vec![&files[..]],
    };
    for (n, batch) in batches.iter().enumerate() {
        if let Some(pace) = pace {
            let due = started + pace * n as u32;
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let mut args = vec!["submit", "--json"];
        args.extend(batch.iter().map(String::as_str));
        let submitted = dev.ocr(&args);
        assert!(
            submitted.status.success(),
            "{}",
            String::from_utf8_lossy(&submitted.stderr)
        );
    }
    let mut polls = 0.0;
    let jobs = loop {
        std::thread::sleep(Duration::from_millis(500));
        if upstage.calls().len() < documents {
            continue;
        }
        polls += 1.0;
        let jobs = all_jobs(&dev);
        let finished = jobs
            .iter()
            .filter(|job| {
                !["awaiting_upload", "queued", "processing"]
                    .contains(&job["status"].as_str().unwrap())
            })
            .count();
        if jobs.len() == documents && finished == documents {
            break jobs;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "{finished} of {documents} finished"
        );
    };
    let seconds = started.elapsed().as_secs_f64();
    // What the polling itself asked of moto, taken out of the job's share.
    let before_poll = runtime.block_on(requests(moto.endpoint(), false));
    all_jobs(&dev);
    let after_poll = runtime.block_on(requests(moto.endpoint(), false));
    let one_poll = minus(&after_poll, &before_poll, 1.0);
    let requests = minus(&after_poll, &one_poll, polls + 1.0);
    let log_bytes = dev.log().len() as u64 - log_before;
    dev.interrupt();
    let printed = dev.printed_until_exit();
    let line = printed
        .iter()
        .find(|line| line.starts_with("invocations"))
        .expect("ocr dev prints its invocations");
    let arrivals = upstage.arrivals();
    let span = arrivals
        .last()
        .unwrap()
        .duration_since(arrivals[0])
        .as_secs_f64();
    Run {
        latency,
        documents,
        seconds,
        admitted: upstage.calls().len(),
        throttled: upstage.throttled(),
        completed: jobs
            .iter()
            .filter(|job| job["status"] == "completed")
            .count(),
        failed: jobs.iter().filter(|job| job["status"] == "failed").count(),
        span,
        requests,
        invocations: invocations(line),
        log_bytes,
    }
}

fn count(requests: &Requests, service: &str, actions: &[&str]) -> (f64, f64) {
    let Some(service) = requests.get(service) else {
        return (0.0, 0.0);
    };
    actions
        .iter()
        .filter_map(|action| service.get(*action))
        .fold((0.0, 0.0), |(c, b), (count, bytes)| (c + count, b + bytes))
}

/// Dollars per 1,000 documents, by line, from one run's measured quantities.
fn cost(run: &Run) -> Vec<(String, f64, String)> {
    let documents = run.documents as f64;
    let per_doc = |x: f64| x / documents;
    let mut lines = Vec::new();
    let mut gb_seconds = 0.0;
    let mut lambda_requests = 0.0;
    let mut worker_gb_s = 0.0;
    for (function, (count, _, mean_ms)) in &run.invocations {
        let (count, busy) = match function.as_str() {
            // The client's polling through the API is not the pipeline's: one
            // create and one read of the result per document are counted below.
            "upload-api" | "status-api" => (documents, *mean_ms / 1000.0 * documents),
            // The sweeper runs on a schedule, not per document.
            "sweeper" => continue,
            _ => (*count, count * mean_ms / 1000.0),
        };
        let gb_s = busy * memory_gb(function);
        if function == "ocr-worker" {
            worker_gb_s = gb_s;
        }
        gb_seconds += gb_s;
        lambda_requests += count;
    }
    lines.push((
        "Lambda GB-seconds (arm64)".into(),
        per_doc(gb_seconds) * 1000.0 * price::LAMBDA_GB_SECOND,
        format!(
            "{:.3} GB-s per document, {:.3} of them the worker's",
            per_doc(gb_seconds),
            per_doc(worker_gb_s)
        ),
    ));
    lines.push((
        "Lambda requests".into(),
        per_doc(lambda_requests) * 1000.0 * price::LAMBDA_REQUEST,
        format!("{:.2} invocations per document", per_doc(lambda_requests)),
    ));
    lines.push((
        "API Gateway (HTTP API)".into(),
        2.0 * 1000.0 * price::HTTP_API_REQUEST,
        "2 requests per document (create, read the result)".into(),
    ));
    let (writes, write_bytes) = count(
        &run.requests,
        "dynamodb",
        &[
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "BatchWriteItem",
            "TransactWriteItems",
        ],
    );
    let write_units = writes.max((write_bytes / 1024.0).ceil());
    let (reads, _) = count(
        &run.requests,
        "dynamodb",
        &["GetItem", "Query", "BatchGetItem", "Scan"],
    );
    lines.push((
        "DynamoDB on-demand".into(),
        per_doc(write_units) * 1000.0 * price::DYNAMODB_WRITE_UNIT
            + per_doc(reads) * 1000.0 * price::DYNAMODB_READ_UNIT,
        format!(
            "{:.1} writes ({:.1} write units) and {:.1} reads per document",
            per_doc(writes),
            per_doc(write_units),
            per_doc(reads)
        ),
    ));
    let (puts, _) = count(&run.requests, "s3", &["PUT", "POST", "COPY"]);
    let (gets, _) = count(&run.requests, "s3", &["GET", "HEAD"]);
    let stored_gb_month = SCAN_BYTES / 1e9 * RETENTION_DAYS / 30.0;
    lines.push((
        "S3 requests and storage".into(),
        per_doc(puts) * 1000.0 * price::S3_PUT
            + per_doc(gets) * 1000.0 * price::S3_GET
            + 1000.0 * stored_gb_month * price::S3_GB_MONTH,
        format!(
            "{:.1} PUTs, {:.1} GETs per document; a 300 KiB scan kept {RETENTION_DAYS} days",
            per_doc(puts),
            per_doc(gets)
        ),
    ));
    let sqs_batches: f64 = ["ocr-worker", "notifier"]
        .iter()
        .filter_map(|f| run.invocations.get(*f))
        .map(|(count, _, _)| count)
        .sum();
    let (sqs_other, _) = count(
        &run.requests,
        "sqs",
        &[
            "SendMessage",
            "SendMessageBatch",
            "DeleteMessage",
            "DeleteMessageBatch",
            "ChangeMessageVisibility",
        ],
    );
    let (published, _) = count(&run.requests, "sns", &["Publish"]);
    lines.push((
        "SQS and SNS".into(),
        (per_doc(sqs_other + sqs_batches)) * 1000.0 * price::SQS_REQUEST
            + per_doc(published) * 1000.0 * price::SNS_PUBLISH,
        format!(
            "{:.1} SQS requests (one receive per batch), {:.1} SNS publishes per document",
            per_doc(sqs_other + sqs_batches),
            per_doc(published)
        ),
    ));
    lines.push((
        "CloudWatch Logs".into(),
        per_doc(run.log_bytes as f64) * 1000.0 / 1e9 * price::LOGS_GB,
        format!(
            "{:.1} KB of log per document",
            per_doc(run.log_bytes as f64) / 1e3
        ),
    ));
    lines
}

fn print_cost(run: &Run, label: &str) -> f64 {
    println!(
        "requests moto received per document, {label} (the client's polling taken out; SQS receives are the local pumps' long polls):"
    );
    for (service, actions) in &run.requests {
        let line: Vec<String> = actions
            .iter()
            .map(|(action, (count, _))| format!("{action} {:.2}", count / run.documents as f64))
            .collect();
        println!("  {service:<15} {}", line.join(", "));
    }
    println!(
        "cost per 1,000 one-page documents, {label} (AWS us-east-1 list prices of November 2024; Upstage apart):"
    );
    let lines = cost(run);
    let total: f64 = lines.iter().map(|(_, dollars, _)| dollars).sum();
    for (line, dollars, basis) in &lines {
        println!("  {line:<28} ${dollars:>8.4}   {basis}");
    }
    println!(
        "  {:<28} ${total:>8.4}   (budget $0.03: {})",
        "AWS in all",
        if total <= 0.03 { "met" } else { "missed" }
    );
    total
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bursts: Vec<Run> = [Duration::ZERO, Duration::from_millis(800)]
        .into_iter()
        .map(|latency| run(&runtime, BURST, latency, None))
        .collect();
    let steady = run(
        &runtime,
        STEADY,
        Duration::from_millis(800),
        Some(Duration::from_secs(1)),
    );
    println!(
        "throughput against the quota: one-page PDFs through ocr dev, fake Upstage enforcing {QUOTA} requests/s"
    );
    println!("  command: cargo bench -p ocr-cli --bench quota");
    for run in bursts.iter().chain([&steady]) {
        let utilisation =
            100.0 * run.admitted as f64 / (QUOTA as f64 * (run.span + 1.0 / QUOTA as f64));
        let how = if run.documents == STEADY {
            "one a second"
        } else {
            "all at once"
        };
        println!(
            "  {} documents {how}, Upstage latency {:>4} ms: {:.2} documents/s ({:.1} s from submit to the last job), quota use {utilisation:.1}% ({} reads in {:.1} s), {} 429s seen, {} completed, {} failed",
            run.documents,
            run.latency.as_millis(),
            run.documents as f64 / run.seconds,
            run.seconds,
            run.admitted,
            run.span,
            run.throttled,
            run.completed,
            run.failed,
        );
        for (function, (count, events, mean)) in &run.invocations {
            println!(
                "      {function:<11} {count:>5} invocations × {events:.1} events, {mean:.1} ms each"
            );
        }
    }
    for run in bursts.iter().chain([&steady]) {
        assert_eq!(run.failed, 0, "no job fails under the quota");
    }
    print_cost(&bursts[1], "200 at once, 800 ms reads");
    let total = print_cost(&steady, "one a second, 800 ms reads");
    println!(
        "  {:<28} ${:>8.4}   ${} a page, billed by Upstage",
        "Upstage Document OCR",
        1000.0 * price::UPSTAGE_PAGE,
        price::UPSTAGE_PAGE
    );
    let celery = price::ALB_MONTH
        + 2.0 * price::T4G_SMALL_MONTH
        + price::RDS_T4G_SMALL_MONTH
        + price::REDIS_T4G_SMALL_MONTH
        + price::NAT_MONTH;
    println!(
        "a month, AWS only (Upstage the same for both): this pipeline (the one-a-second figures) against an always-on web + Celery + PostgreSQL + Redis"
    );
    for monthly in [10_000.0, 100_000.0, 1_000_000.0] {
        // One more t4g.small worker per 250,000 documents a month beyond the first.
        let workers = ((monthly / 250_000.0_f64).ceil() - 1.0).max(0.0);
        let always_on = celery + workers * price::T4G_SMALL_MONTH;
        println!(
            "  {:>9} documents: ${:>8.2} serverless   ${always_on:>8.2} always on",
            monthly as u64,
            total * monthly / 1000.0,
        );
    }
}
