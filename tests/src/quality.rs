//! How well a text was read: the measures the OCR tests hold engines to.

/// The text with its spacing made comparable: each line trimmed and its runs
/// of spaces made one, blank lines dropped. Word spacing still counts.
pub fn normalized(text: &str) -> String {
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Edit distance between the two texts over the truth's length, every
/// character counted, spaces and line breaks included (as `normalized`):
/// "한 빛 문서" read for "한빛문서" is two errors.
pub fn character_error_rate(read: &str, truth: &str) -> f64 {
    let read: Vec<char> = normalized(read).chars().collect();
    let truth: Vec<char> = normalized(truth).chars().collect();
    let mut previous: Vec<usize> = (0..=truth.len()).collect();
    for (i, r) in read.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, t) in truth.iter().enumerate() {
            current.push(
                (previous[j + 1] + 1)
                    .min(current[j] + 1)
                    .min(previous[j] + usize::from(r != t)),
            );
        }
        previous = current;
    }
    previous[truth.len()] as f64 / truth.len().max(1) as f64
}

/// The share of the truth's words (split at whitespace) that the read text
/// holds intact, each read word matching at most one.
pub fn words_intact(read: &str, truth: &str) -> f64 {
    let mut unmatched: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for word in read.split_whitespace() {
        *unmatched.entry(word).or_default() += 1;
    }
    let words: Vec<&str> = truth.split_whitespace().collect();
    let intact = words
        .iter()
        .filter(|word| match unmatched.get_mut(*word) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        })
        .count();
    intact as f64 / words.len().max(1) as f64
}

/// One document read under one condition, as the conditions table shows it.
#[derive(Clone, Debug)]
pub struct Score {
    pub document: String,
    pub condition: String,
    pub cer: f64,
    pub intact: f64,
    pub seconds: f64,
    pub issues: Vec<String>,
    pub skew: f64,
}

impl std::fmt::Display for Score {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "| {} | {} | {:.1}% | {:.1}% | {:.1}° | {} | {:.2} s |",
            self.document,
            self.condition,
            self.intact * 100.0,
            self.cer * 100.0,
            self.skew,
            if self.issues.is_empty() {
                "-".to_owned()
            } else {
                self.issues.join(", ")
            },
            self.seconds
        )
    }
}
