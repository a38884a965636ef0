//! Search over a job's text: the normal form both the stored copy and the
//! query are brought to, and the snippet a hit shows.
//!
//! Matching is a substring match on the normal form: Unicode NFKC (so
//! full-width "ＡＢＣ" is "abc", "㈜" is "(주)"), lower case, and no white
//! space or control characters at all, so that "한빛 문서" finds "한빛문서"
//! and a line break inside a name does not hide it.

use unicode_normalization::UnicodeNormalization;

/// The most of a document's normal form kept for search (on a character
/// boundary): with the stored text (256 KiB) it keeps the job within
/// DynamoDB's 400 KB item. About 32,000 Hangul syllables; past it a long
/// document is found by its beginning only.
pub const MAX_SEARCH_TEXT_BYTES: usize = 96 * 1024;

/// The longest query, in characters of its normal form.
pub const MAX_QUERY_CHARS: usize = 200;

/// Characters of the original text shown on each side of a match.
const SNIPPET_CONTEXT_CHARS: usize = 40;

/// `text` in the normal form search compares: NFKC, lower case, without
/// white space and control characters.
pub fn normalize(text: &str) -> String {
    searchable(text.nfkc()).collect()
}

/// NFKC output in lower case, white space and control characters dropped.
fn searchable(nfkc: impl Iterator<Item = char>) -> impl Iterator<Item = char> {
    nfkc.flat_map(char::to_lowercase)
        .filter(|c| !c.is_whitespace() && !c.is_control())
}

/// The normal form of a document's text as stored for search, cut to
/// `MAX_SEARCH_TEXT_BYTES`; `None` when nothing searchable is left.
pub fn search_text(text: &str) -> Option<String> {
    let normal = normalize(text);
    if normal.is_empty() {
        return None;
    }
    let (cut, _) = super::truncate_utf8(&normal, MAX_SEARCH_TEXT_BYTES);
    Some(cut)
}

/// A search query, in normal form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchQuery(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SearchQueryError {
    #[error("the search query has no letters or digits to look for")]
    Empty,
    #[error("the search query is longer than {MAX_QUERY_CHARS} characters")]
    TooLong,
}

impl SearchQuery {
    pub fn parse(raw: &str) -> Result<Self, SearchQueryError> {
        let normal = normalize(raw);
        if normal.is_empty() {
            return Err(SearchQueryError::Empty);
        }
        if normal.chars().count() > MAX_QUERY_CHARS {
            return Err(SearchQueryError::TooLong);
        }
        Ok(Self(normal))
    }

    /// The normal form the stored copy is searched for.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a stored normal form holds the query.
    pub fn matches(&self, search_text: &str) -> bool {
        search_text.contains(&self.0)
    }

    /// A short passage of `text` around its first match, with `…` where it
    /// was cut; the beginning of the text when the match cannot be placed
    /// (a match that spans a character NFKC composes with its neighbour).
    pub fn snippet(&self, text: &str) -> String {
        let chars: Vec<char> = text.chars().collect();
        // The normal form char by char, with the original index of each piece.
        let mut normal = String::new();
        let mut origin = Vec::new();
        for (index, c) in chars.iter().enumerate() {
            for piece in searchable(std::iter::once(*c).nfkc()) {
                normal.push(piece);
                origin.push(index);
            }
        }
        let (first, last) = match normal.find(&self.0) {
            Some(byte) => {
                let start = normal[..byte].chars().count();
                let end = start + self.0.chars().count() - 1;
                (origin[start], origin[end])
            }
            None => (0, 0),
        };
        let from = first.saturating_sub(SNIPPET_CONTEXT_CHARS);
        let to = (last + 1 + SNIPPET_CONTEXT_CHARS).min(chars.len());
        let passage: String = chars[from..to].iter().collect();
        let passage = passage.split_whitespace().collect::<Vec<_>>().join(" ");
        let before = if from > 0 { "…" } else { "" };
        let after = if to < chars.len() { "…" } else { "" };
        format!("{before}{passage}{after}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(raw: &str) -> SearchQuery {
        SearchQuery::parse(raw).unwrap()
    }

    #[test]
    fn the_normal_form_ignores_space_case_and_width() {
        assert_eq!(normalize("한빛 문서"), "한빛문서");
        assert_eq!(normalize("Invoice\nNo. 42"), "invoiceno.42");
        assert_eq!(normalize("ＡＢＣ　１２３"), "abc123");
        assert_eq!(normalize("㈜한빛"), "(주)한빛");
        // Hangul written as separate jamo composes into the syllable.
        assert_eq!(normalize("\u{1112}\u{1161}\u{11AB}"), "한");
    }

    #[test]
    fn a_query_matches_across_spaces_lines_and_case() {
        let stored = search_text("주식회사 한빛문서\n대표자 홍길동\nTOTAL 12,000").unwrap();
        assert!(query("한빛 문서").matches(&stored));
        assert!(query("한 빛 문 서").matches(&stored));
        assert!(query("total 12,000").matches(&stored));
        assert!(query("문서 대표자").matches(&stored), "across a line break");
        assert!(!query("김철수").matches(&stored));
    }

    #[test]
    fn an_empty_or_overlong_query_is_refused() {
        assert_eq!(SearchQuery::parse("  \n\t"), Err(SearchQueryError::Empty));
        assert_eq!(
            SearchQuery::parse(&"가".repeat(MAX_QUERY_CHARS + 1)),
            Err(SearchQueryError::TooLong)
        );
        assert!(SearchQuery::parse(&"가 ".repeat(MAX_QUERY_CHARS)).is_ok());
    }

    #[test]
    fn the_stored_copy_is_cut_on_a_character_boundary() {
        let long = "가".repeat(50_000);
        let stored = search_text(&long).unwrap();
        assert!(stored.len() <= MAX_SEARCH_TEXT_BYTES);
        assert!(stored.len() > MAX_SEARCH_TEXT_BYTES - 3);
        assert_eq!(search_text(" \n "), None);
    }

    #[test]
    fn a_snippet_shows_the_first_match_in_its_original_spelling() {
        let text = format!(
            "{}\n주식회사 한빛 문서 대표자 홍길동\n{}",
            "머리말 ".repeat(20),
            "꼬리말 ".repeat(20)
        );
        let snippet = query("한빛문서").snippet(&text);
        assert!(snippet.contains("한빛 문서"), "{snippet}");
        assert!(
            snippet.starts_with('…') && snippet.ends_with('…'),
            "{snippet}"
        );
        assert!(!snippet.contains('\n'));
        assert!(snippet.chars().count() <= 2 * SNIPPET_CONTEXT_CHARS + 10);
        // A short text is shown whole.
        assert_eq!(query("total").snippet("TOTAL 12,000"), "TOTAL 12,000");
    }
}
