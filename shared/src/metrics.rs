//! Job metrics in CloudWatch's Embedded Metric Format: one JSON line on
//! stdout per figure, which CloudWatch Logs turns into a metric of the
//! `LambdaOcr` namespace with one dimension, the function (few series, no
//! per-job or per-owner dimension). Outside Lambda (`ocr dev`) nothing is
//! printed; every figure is also added to a process-wide tally, which
//! `ocr dev` prints as one line when it stops.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Mutex;

use serde_json::json;

/// The namespace every figure is published in.
pub const NAMESPACE: &str = "LambdaOcr";
/// The one dimension: which function published the figure.
pub const DIMENSION: &str = "Function";

/// A figure the functions publish, with its unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    JobsCreated,
    JobsCompleted,
    JobsFailed,
    JobsRejected,
    JobsDeduplicated,
    /// Pages of each completed document.
    Pages,
    /// One OCR call, in milliseconds.
    OcrDuration,
    /// From queued to taken by a worker, in milliseconds.
    QueueWait,
    /// From created to completed, in milliseconds.
    EndToEnd,
    /// Each completed document's confidence (0–1).
    Confidence,
    /// OCR calls that failed and will be tried again.
    OcrRetries,
    /// OCR calls the engine's rate limit (429) refused.
    OcrThrottled,
    WebhooksDelivered,
    WebhooksFailed,
}

impl Metric {
    pub const ALL: [Metric; 14] = [
        Metric::JobsCreated,
        Metric::JobsCompleted,
        Metric::JobsFailed,
        Metric::JobsRejected,
        Metric::JobsDeduplicated,
        Metric::Pages,
        Metric::OcrDuration,
        Metric::QueueWait,
        Metric::EndToEnd,
        Metric::Confidence,
        Metric::OcrRetries,
        Metric::OcrThrottled,
        Metric::WebhooksDelivered,
        Metric::WebhooksFailed,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Metric::JobsCreated => "JobsCreated",
            Metric::JobsCompleted => "JobsCompleted",
            Metric::JobsFailed => "JobsFailed",
            Metric::JobsRejected => "JobsRejected",
            Metric::JobsDeduplicated => "JobsDeduplicated",
            Metric::Pages => "Pages",
            Metric::OcrDuration => "OcrDuration",
            Metric::QueueWait => "QueueWait",
            Metric::EndToEnd => "EndToEnd",
            Metric::Confidence => "Confidence",
            Metric::OcrRetries => "OcrRetries",
            Metric::OcrThrottled => "OcrThrottled",
            Metric::WebhooksDelivered => "WebhooksDelivered",
            Metric::WebhooksFailed => "WebhooksFailed",
        }
    }

    /// CloudWatch's unit for it.
    pub const fn unit(self) -> &'static str {
        match self {
            Metric::OcrDuration | Metric::QueueWait | Metric::EndToEnd => "Milliseconds",
            Metric::Confidence => "None",
            _ => "Count",
        }
    }
}

/// What the tally keeps of one figure.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    pub count: u64,
    pub sum: f64,
}

impl Tally {
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

static TALLY: Mutex<BTreeMap<Metric, Tally>> = Mutex::new(BTreeMap::new());

/// Publishes `value` of `metric` for this function: an EMF line on stdout in
/// Lambda, and always into the process's tally.
pub fn record(metric: Metric, value: f64) {
    if let Ok(mut tally) = TALLY.lock() {
        let entry = tally.entry(metric).or_default();
        entry.count += 1;
        entry.sum += value;
    }
    if let Ok(function) = std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
        let line = emf_line(
            metric,
            value,
            &function,
            crate::domain::Timestamp::now().as_millis(),
        );
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }
}

/// One occurrence of a counted event.
pub fn count(metric: Metric) {
    record(metric, 1.0);
}

/// The tally of this process so far.
pub fn tally() -> BTreeMap<Metric, Tally> {
    TALLY.lock().map(|tally| tally.clone()).unwrap_or_default()
}

/// One EMF document for one figure.
pub fn emf_line(metric: Metric, value: f64, function: &str, at_millis: i64) -> String {
    json!({
        "_aws": {
            "Timestamp": at_millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[DIMENSION]],
                "Metrics": [{"Name": metric.name(), "Unit": metric.unit()}],
            }],
        },
        DIMENSION: function,
        metric.name(): value,
    })
    .to_string()
}

/// The tally as one line: what `ocr dev` prints when it stops.
pub fn summary(tally: &BTreeMap<Metric, Tally>) -> String {
    let count = |metric| tally.get(&metric).map_or(0, |t: &Tally| t.sum as u64);
    let mean = |metric| tally.get(&metric).map_or(0.0, Tally::mean);
    format!(
        "jobs: {} created, {} completed, {} failed, {} rejected, {} deduplicated · {} pages · OCR {:.0} ms per call ({} retried, {} throttled) · queue wait {:.0} ms · end to end {:.0} ms · confidence {:.2} · webhooks: {} delivered, {} failed",
        count(Metric::JobsCreated),
        count(Metric::JobsCompleted),
        count(Metric::JobsFailed),
        count(Metric::JobsRejected),
        count(Metric::JobsDeduplicated),
        count(Metric::Pages),
        mean(Metric::OcrDuration),
        count(Metric::OcrRetries),
        count(Metric::OcrThrottled),
        mean(Metric::QueueWait),
        mean(Metric::EndToEnd),
        mean(Metric::Confidence),
        count(Metric::WebhooksDelivered),
        count(Metric::WebhooksFailed),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn a_line_is_an_emf_document_cloudwatch_accepts() {
        let line = emf_line(
            Metric::OcrDuration,
            812.0,
            "lambda-ocr-OcrWorker",
            1_795_586_812_000,
        );
        let document: Value = serde_json::from_str(&line).unwrap();
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(document["_aws"]["Timestamp"], 1_795_586_812_000i64);
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "OcrDuration", "Unit": "Milliseconds"}])
        );
        // Every dimension and metric the directive names is a member of the root.
        assert_eq!(document["Function"], "lambda-ocr-OcrWorker");
        assert_eq!(document["OcrDuration"], 812.0);
        assert!(!line.contains('\n'), "one line");
    }

    #[test]
    fn names_are_unique_and_units_are_cloudwatchs() {
        let names: std::collections::BTreeSet<&str> =
            Metric::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Metric::ALL.len());
        for metric in Metric::ALL {
            assert!(["Count", "Milliseconds", "None"].contains(&metric.unit()));
        }
    }

    #[test]
    fn the_summary_counts_sums_and_averages() {
        let mut tally = BTreeMap::new();
        tally.insert(Metric::JobsCompleted, Tally { count: 2, sum: 2.0 });
        tally.insert(Metric::Pages, Tally { count: 2, sum: 5.0 });
        tally.insert(
            Metric::OcrDuration,
            Tally {
                count: 2,
                sum: 900.0,
            },
        );
        let line = summary(&tally);
        assert!(line.contains("2 completed"), "{line}");
        assert!(line.contains("5 pages"), "{line}");
        assert!(line.contains("OCR 450 ms per call"), "{line}");
    }
}
