//! `make bench`: the local pipeline end to end, as `ocr submit --wait` sees it,
//! with the Tesseract engine: per document and per page, where the time goes
//! (upload and checks, queue, OCR), throughput with several jobs at once, and
//! the memory `ocr dev` and moto hold. Prints figures; asserts nothing.

use std::path::Path;
use std::time::Instant;

use ocr_tests::dev_process::{Dev, document, peak_rss_mib};
use ocr_tests::quality::{character_error_rate, words_intact};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const OCR: &str = env!("CARGO_BIN_EXE_ocr");
const ROUNDS: usize = 5;
const CONCURRENT: usize = 8;

fn at(job: &Value, field: &str) -> OffsetDateTime {
    OffsetDateTime::parse(job[field].as_str().unwrap_or_default(), &Rfc3339)
        .unwrap_or_else(|_| panic!("{field} missing: {job}"))
}

fn millis(from: OffsetDateTime, to: OffsetDateTime) -> f64 {
    (to - from).as_seconds_f64() * 1000.0
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn submit(dev: &Dev, path: &Path, subject: &str) -> (f64, Value) {
    let started = Instant::now();
    let output = dev.ocr(&[
        "submit",
        path.to_str().unwrap(),
        "--wait",
        "--json",
        "--sub",
        subject,
    ]);
    let wall = started.elapsed().as_secs_f64() * 1000.0;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let job: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(job["status"], "completed", "{job}");
    (wall, job)
}

fn main() {
    let mut dev = Dev::start(Path::new(OCR));
    // One job to warm caches (tesseract's language data, the SDK's connections).
    submit(&dev, &document("receipt.png"), "bench-warm-up");

    println!(
        "\nlocal pipeline, Tesseract kor+Hangul+eng, {ROUNDS} jobs per document (each by another user: no dedup)"
    );
    println!(
        "{:<28} {:>5} {:>12} {:>14} {:>10} {:>10} {:>12} {:>7} {:>7}",
        "document",
        "pages",
        "submit→text",
        "upload+ingest",
        "queue",
        "OCR",
        "OCR per page",
        "CER",
        "intact"
    );
    for name in ["receipt.png", "business-registration.jpg", "contract.pdf"] {
        let path = document(name);
        let (mut wall, mut checks, mut queue, mut ocr) = (vec![], vec![], vec![], vec![]);
        let mut pages = 1;
        let truth = std::fs::read_to_string(path.with_extension("txt")).unwrap();
        let (mut cer, mut intact) = (0.0, 0.0);
        for round in 0..ROUNDS {
            let (elapsed, job) = submit(&dev, &path, &format!("bench-{name}-{round}"));
            pages = job["pages"].as_u64().unwrap_or(1);
            let text = job["text"].as_str().unwrap_or_default();
            cer = character_error_rate(text, &truth);
            intact = words_intact(text, &truth);
            wall.push(elapsed);
            checks.push(millis(at(&job, "created_at"), at(&job, "queued_at")));
            queue.push(millis(at(&job, "queued_at"), at(&job, "started_at")));
            ocr.push(millis(at(&job, "started_at"), at(&job, "completed_at")));
        }
        let ocr_median = median(&mut ocr);
        println!(
            "{:<28} {:>5} {:>9.0} ms {:>11.0} ms {:>7.0} ms {:>7.0} ms {:>9.0} ms {:>6.2}% {:>6.1}%",
            name,
            pages,
            median(&mut wall),
            median(&mut checks),
            median(&mut queue),
            ocr_median,
            ocr_median / pages as f64,
            cer * 100.0,
            intact * 100.0
        );
    }
    println!(
        "(medians; submit→text is the client's wall time, hashing and upload included;\n CER counts word spacing; intact is the share of the truth's words read whole)"
    );

    let started = Instant::now();
    std::thread::scope(|scope| {
        for i in 0..CONCURRENT {
            let dev = &dev;
            scope.spawn(move || submit(dev, &document("receipt.png"), &format!("bench-many-{i}")));
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "\n{CONCURRENT} receipts at once: all read in {elapsed:.2} s, {:.1} pages/s on {} cores",
        CONCURRENT as f64 / elapsed,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let pid = dev.child.id();
    let moto = ocr_tests::dev_process::descendants(pid);
    println!(
        "\npeak resident memory: ocr dev {} MiB",
        peak_rss_mib(pid).floor() as u64
    );
    for child in moto {
        let command = std::fs::read_to_string(format!("/proc/{child}/cmdline"))
            .unwrap_or_default()
            .replace('\0', " ");
        let launcher_doc = ocr_cli::moto::LAUNCHER.lines().next().unwrap_or_default();
        if command.contains(launcher_doc) && !command.starts_with("sh ") {
            println!(
                "                      moto   {} MiB",
                peak_rss_mib(child).floor() as u64
            );
        }
    }
    assert!(dev.interrupt().success());
}
