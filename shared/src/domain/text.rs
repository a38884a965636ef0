//! Text limits of the job record.

/// How much recognised text a job record holds; the full text is in the result object.
pub const MAX_STORED_TEXT_BYTES: usize = 256 * 1024;

/// `text` cut to at most `max_bytes` on a character boundary, and whether it was cut.
pub fn truncate_utf8(text: &str, max_bytes: usize) -> (String, bool) {
    if text.len() <= max_bytes {
        return (text.to_owned(), false);
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_owned(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_a_character_boundary_and_says_so() {
        assert_eq!(truncate_utf8("영수증", 9), ("영수증".to_owned(), false));
        // Each Hangul syllable is 3 bytes: 7 bytes hold two of them.
        assert_eq!(truncate_utf8("영수증", 7), ("영수".to_owned(), true));
        let long = "가".repeat(100_000);
        let (cut, truncated) = truncate_utf8(&long, MAX_STORED_TEXT_BYTES);
        assert!(truncated);
        assert!(cut.len() <= MAX_STORED_TEXT_BYTES && cut.len() > MAX_STORED_TEXT_BYTES - 3);
    }
}
