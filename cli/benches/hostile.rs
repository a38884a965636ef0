//! `make bench`: the peak memory of `ocr dev` (every function in one process,
//! the worker's 512 MiB the budget) through each hostile input alone, read
//! with the fake Upstage: its VmHWM after the input has ended, beside the same
//! for a one-page receipt. Prints figures; asserts nothing.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ocr_tests::dev_process::{Dev, document, free_port, peak_rss_mib, run_tool};
use ocr_tests::fake_upstage::{API_KEY, FakeUpstage};
use serde_json::Value;

const OCR: &str = env!("CARGO_BIN_EXE_ocr");
const BUDGET_MIB: f64 = 512.0;

/// Where `path` ends through a fresh `ocr dev`: its status and code, the
/// seconds it took, and the process's peak memory.
fn through_a_fresh_stack(runtime: &tokio::runtime::Runtime, path: &Path) -> (String, f64, f64) {
    let upstage = runtime.block_on(FakeUpstage::start());
    upstage.read_pdfs(std::time::Duration::ZERO);
    let dev = Dev::start_with(
        Path::new(OCR),
        free_port(),
        tempfile::tempdir().unwrap(),
        &[
            ("UPSTAGE_API_KEY", API_KEY),
            ("UPSTAGE_BASE_URL", upstage.url.as_str()),
        ],
    );
    let started = Instant::now();
    let output = dev.ocr(&[
        "submit",
        path.to_str().unwrap(),
        "--wait",
        "--json",
        "--timeout",
        "900",
    ]);
    let seconds = started.elapsed().as_secs_f64();
    let job: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    let ended = match job["error"]["code"].as_str() {
        Some(code) => format!("{} {code}", job["status"].as_str().unwrap_or("?")),
        None => format!(
            "{} {} pages",
            job["status"].as_str().unwrap_or("?"),
            job["pages"]
        ),
    };
    (ended, seconds, peak_rss_mib(dev.child.id()))
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    run_tool("bad_inputs.py", &[dir.path().as_os_str()]);
    let scan = dir.path().join("scanned-1000.pdf");
    run_tool(
        "bad_inputs.py",
        &["--scanned-pdf".as_ref(), scan.as_os_str(), "1000".as_ref()],
    );
    let inputs: Vec<(&str, PathBuf)> = vec![
        (
            "a one-page receipt (for reference)",
            document("receipt.png"),
        ),
        (
            "a sideways 10000 x 10000 photo (EXIF 6)",
            dir.path().join("sideways-100mp.jpg"),
        ),
        (
            "a JPEG's frame header past 64 KiB",
            dir.path().join("frame-past-64k-20000x20000.jpg"),
        ),
        (
            "a 3-page TIFF, 3rd page 60000 x 60000",
            dir.path().join("tiff-huge-third-page.tif"),
        ),
        (
            "object streams inflating to 4 x 250 MiB",
            dir.path().join("object-stream-bomb.pdf"),
        ),
        ("1,000 text pages", dir.path().join("pages-1000.pdf")),
        ("1,000 scanned pages (43 MB)", scan),
    ];
    println!(
        "hostile inputs: ocr dev's peak RSS (VmHWM) through each alone, against the worker's {BUDGET_MIB:.0} MiB"
    );
    for (what, path) in inputs {
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        let (ended, seconds, peak) = through_a_fresh_stack(&runtime, &path);
        println!(
            "  {what:<42} {:>9.1} KiB  {ended:<36} {seconds:>6.1} s  peak {peak:>6.1} MiB ({:.0}% of {BUDGET_MIB:.0})",
            size as f64 / 1024.0,
            peak / BUDGET_MIB * 100.0
        );
    }
}
