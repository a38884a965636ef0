//! How well a text was read: the measure the OCR tests hold engines to.

/// Edit distance between the two texts, whitespace ignored, over the truth's length.
pub fn character_error_rate(read: &str, truth: &str) -> f64 {
    let read: Vec<char> = read.chars().filter(|c| !c.is_whitespace()).collect();
    let truth: Vec<char> = truth.chars().filter(|c| !c.is_whitespace()).collect();
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
