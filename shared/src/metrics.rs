//! Job metrics in CloudWatch's Embedded Metric Format. The figures go through
//! the `metrics` facade; in Lambda, `install` sets `metrics_cloudwatch_embedded`
//! as its recorder (namespace `LambdaOcr`, one dimension: the function; no
//! per-job or per-owner dimension) and `flushed` writes what an invocation
//! recorded to stdout as EMF documents, which CloudWatch Logs turns into
//! metrics. Outside Lambda (`ocr dev`) no recorder is installed; every figure
//! also goes into a process-wide tally, which `ocr dev` prints as one line
//! when it stops.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Mutex, OnceLock};

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
    /// Unfinished jobs the sweeper found unchanged for over an hour: jobs it
    /// cannot move (alarmed).
    JobsPendingOverAnHour,
}

impl Metric {
    pub const ALL: [Metric; 15] = [
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
        Metric::JobsPendingOverAnHour,
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
            Metric::JobsPendingOverAnHour => "JobsPendingOverAnHour",
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

/// Publishes `value` of `metric`: to the installed recorder (EMF in Lambda),
/// and into the process's tally.
pub fn record(metric: Metric, value: f64) {
    if let Ok(mut tally) = TALLY.lock() {
        let entry = tally.entry(metric).or_default();
        entry.count += 1;
        entry.sum += value;
    }
    if metric.unit() == "Count" {
        metrics::counter!(metric.name()).increment(value as u64);
    } else {
        metrics::histogram!(metric.name()).record(value);
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

static COLLECTOR: OnceLock<&'static metrics_cloudwatch_embedded::Collector> = OnceLock::new();

/// In Lambda (`AWS_LAMBDA_FUNCTION_NAME` set), makes the EMF collector the
/// recorder, with the function as the one dimension; elsewhere does nothing.
pub fn install() {
    let Ok(function) = std::env::var("AWS_LAMBDA_FUNCTION_NAME") else {
        return;
    };
    let built = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(NAMESPACE)
        .with_dimension(DIMENSION, function)
        .init();
    match built {
        Ok(collector) => {
            let _ = COLLECTOR.set(collector);
            describe();
        }
        Err(error) => tracing::warn!(%error, "metrics are not published"),
    }
}

/// Each figure's CloudWatch unit, told to the recorder.
fn describe() {
    for metric in Metric::ALL {
        let unit = match metric.unit() {
            "Milliseconds" => metrics::Unit::Milliseconds,
            "Count" => metrics::Unit::Count,
            _ => continue,
        };
        if unit == metrics::Unit::Count {
            metrics::describe_counter!(metric.name(), unit, "");
        } else {
            metrics::describe_histogram!(metric.name(), unit, "");
        }
    }
}

/// Runs one invocation, then writes what it recorded to stdout as EMF.
pub async fn flushed<T>(invocation: impl Future<Output = T>) -> T {
    let answer = invocation.await;
    if let Some(collector) = COLLECTOR.get() {
        let stdout = std::io::stdout();
        if let Err(error) = collector.flush(stdout.lock()) {
            tracing::warn!(%error, "metrics could not be written");
        }
    }
    answer
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
    fn the_collector_writes_emf_documents_cloudwatch_accepts() {
        let collector = metrics_cloudwatch_embedded::Builder::new()
            .cloudwatch_namespace(NAMESPACE)
            .with_dimension(DIMENSION, "lambda-ocr-OcrWorker")
            .init()
            .unwrap();
        describe();
        count(Metric::JobsCompleted);
        record(Metric::OcrDuration, 812.0);
        let mut written = Vec::new();
        collector.flush(&mut written).unwrap();
        let documents: Vec<Value> = String::from_utf8(written)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let mut seen = Vec::new();
        for document in &documents {
            let directive = &document["_aws"]["CloudWatchMetrics"][0];
            assert!(document["_aws"]["Timestamp"].is_u64(), "{document}");
            assert_eq!(directive["Namespace"], NAMESPACE);
            assert_eq!(directive["Dimensions"][0][0], DIMENSION);
            assert_eq!(document[DIMENSION], "lambda-ocr-OcrWorker");
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap().to_owned();
                // Every metric the directive names is a member of the root.
                assert!(!document[&name].is_null(), "{document}");
                seen.push((
                    name,
                    metric["Unit"].clone(),
                    document[metric["Name"].as_str().unwrap()].clone(),
                ));
            }
        }
        assert!(
            seen.contains(&(
                "JobsCompleted".into(),
                serde_json::json!("Count"),
                serde_json::json!(1)
            )),
            "{seen:?}"
        );
        let duration = seen
            .iter()
            .find(|(name, ..)| name == "OcrDuration")
            .unwrap();
        assert_eq!(duration.1, "Milliseconds");
        assert!(duration.2.to_string().contains("812"), "{duration:?}");
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
