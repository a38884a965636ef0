//! Korean personal data in recognised text: how each kind is recognised, and
//! how it is masked before anything is stored. Masking replaces characters
//! one for one with `*`, so a masked text is as long as the original and the
//! words' boxes still fit.
//!
//! The rules, and where they come from:
//! - Resident registration numbers (주민등록번호, 주민등록법 시행규칙 별표):
//!   `YYMMDD-GNNNNNN`. G is the century and sex digit: 9/0 born 1800–1899,
//!   1/2 1900–1999, 3/4 2000–2099; 5–8 the same centuries for foreign residents
//!   (외국인등록번호). The date must exist in that century. The last digit was a
//!   weighted check digit (weights 2–9, 2–5, mod 11) until October 2020; numbers
//!   issued since carry none, so the check digit is supporting evidence only:
//!   a number written without its hyphen needs either a valid check digit or a
//!   label on its line (주민, 외국인, 등록번호). A line naming a corporate
//!   registration number (법인등록번호, the same shape, and public) is left
//!   alone. Masked: `900101-1******`.
//! - Passports (여권번호): a letter (M, S, R, O, D, G) and 8 digits, or the
//!   2021 format M + 3 digits + a letter + 4 digits. Masked after the letter.
//! - Driver's licences (운전면허번호, 도로교통법 시행규칙 별지 서식): a region
//!   code 11–28 (or the region's name) and 10 digits, written `RR-YY-NNNNNN-CC`
//!   (hyphens required: a bare 12-digit number is too common). Masked after
//!   the region.
//! - Phone numbers: mobile `01[016789]` and area codes (02, 0[3-6][1-5], 070)
//!   with 3–4 and 4 digits. The middle group is masked: `010-****-5678`.
//! - Card numbers: 16 digits in groups of four (or 4-6-5) that pass the Luhn
//!   check. The middle eight digits are masked.
//! - Bank accounts: 10 to 14 digits in 2 to 4 hyphenated groups, only on a line
//!   that names an account (계좌, 은행, 예금주, account, bank): account formats
//!   differ by bank and would otherwise catch any number. All but the last four
//!   digits are masked.

use std::sync::LazyLock;

use regex_lite::Regex;

use crate::domain::PiiKind;
use crate::ports::{OcrResult, OcrWord};

pub use crate::domain::PiiCounts as Counts;
pub use crate::domain::pii::{covers, kinds_for};

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("the masking patterns compile")
}

static RRN: LazyLock<Regex> =
    LazyLock::new(|| regex(r"([0-9]{2})([0-9]{2})([0-9]{2})( *[-.] *| )?([0-9])([0-9]{5})([0-9])"));
static CARD: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"[0-9]{4}([ -]?)[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}|[0-9]{4}[ -]?[0-9]{6}[ -]?[0-9]{5}")
});
static LICENCE: LazyLock<Regex> = LazyLock::new(|| {
    regex(concat!(
        r"(?:(?:1[1-9]|2[0-8])-|(?:서울|부산|경기|강원|충북|충남|전북|전남|경북|경남|제주|대구|인천|광주|대전|울산) ?)",
        r"[0-9]{2}-[0-9]{6}-[0-9]{2}"
    ))
});
static PASSPORT: LazyLock<Regex> =
    LazyLock::new(|| regex(r"[MSRODG]([0-9]{8}|[0-9]{3}[A-Z][0-9]{4})"));
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(01[016789]|02|0[3-6][1-5]|070)([ )-]?)([0-9]{3,4})([ -]?)([0-9]{4})")
});
static ACCOUNT: LazyLock<Regex> = LazyLock::new(|| regex(r"[0-9]{2,6}(-[0-9]{2,6}){1,3}"));

const ACCOUNT_LABELS: [&str; 7] = [
    "계좌",
    "은행",
    "예금주",
    "입금",
    "account",
    "Account",
    "bank",
];
const RRN_LABELS: [&str; 4] = ["주민", "외국인", "등록번호", "RRN"];
/// A corporate registration number (법인등록번호) has the same shape and is
/// public: a number whose nearest label before it on its line is one of these
/// is left alone (a line may name both, as a company's and its
/// representative's numbers side by side).
const NOT_RRN_LABELS: [&str; 2] = ["법인", "corporate"];
/// Labels of a person's number, against which `NOT_RRN_LABELS` are weighed.
const PERSON_LABELS: [&str; 4] = ["주민", "외국인", "RRN", "resident"];

/// Whether the label nearest before `at` on its line names a corporation's number.
fn corporate_number(text: &str, at: usize) -> bool {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..at];
    let last = |labels: &[&str]| labels.iter().filter_map(|l| before.rfind(l)).max();
    match (last(&NOT_RRN_LABELS), last(&PERSON_LABELS)) {
        (Some(corporate), Some(person)) => corporate > person,
        (Some(_), None) => true,
        _ => false,
    }
}

/// One character as the patterns read it: full-width digits as ASCII ones,
/// every dash and minus as `-`, full-width stops as `.`, and other spaces as
/// ` `; each character stays one character, so positions carry over.
fn fold(c: char) -> char {
    match c {
        '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}' => '-',
        '．' | '\u{FF61}' => '.',
        '\u{00A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{3000}' => ' ',
        _ => c,
    }
}

/// Whether the characters just around `start..end` let the match stand on its
/// own: no digit (or, for passports, letter) runs into it.
fn stands_alone(text: &str, start: usize, end: usize, letters_too: bool) -> bool {
    let joins = |c: char| c.is_ascii_digit() || (letters_too && c.is_ascii_alphanumeric());
    let before = text[..start].chars().next_back().is_some_and(joins);
    let after = text[end..].chars().next().is_some_and(joins);
    !before && !after
}

fn line_of(text: &str, at: usize) -> &str {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    &text[start..end]
}

fn leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// The kind of a resident registration number whose parts are these, if its
/// date exists in the century its G digit names.
fn rrn_kind(yy: u32, mm: u32, dd: u32, g: u32) -> Option<PiiKind> {
    let (century, kind) = match g {
        9 | 0 => (1800, PiiKind::Rrn),
        1 | 2 => (1900, PiiKind::Rrn),
        3 | 4 => (2000, PiiKind::Rrn),
        5 | 6 => (1900, PiiKind::ForeignerRrn),
        7 | 8 => (2000, PiiKind::ForeignerRrn),
        _ => return None,
    };
    let year = century + yy;
    let days = match mm {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap(year) => 29,
        2 => 28,
        _ => return None,
    };
    (1..=days).contains(&dd).then_some(kind)
}

/// The pre-2020 check digit: weights 2–9, 2–5 over the first 12 digits, mod 11.
fn rrn_check_digit_holds(digits: &[u32]) -> bool {
    const WEIGHTS: [u32; 12] = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5];
    let sum: u32 = digits.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
    (11 - sum % 11) % 10 == digits[12]
}

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn digits_of(text: &str) -> Vec<u32> {
    text.chars().filter_map(|c| c.to_digit(10)).collect()
}

/// `text` with the digits of `range` after the first `keep`, up to the
/// `until`-th (counted over digits only), replaced by `*`.
fn mask_digits(text: &mut String, range: std::ops::Range<usize>, keep: usize, until: usize) {
    let mut seen = 0;
    let masked: String = text[range.clone()]
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen > keep && seen <= until {
                    return '*';
                }
            }
            c
        })
        .collect();
    text.replace_range(range, &masked);
}

/// Masks one kind's matches in `text`; returns how many.
fn mask_kind(text: &mut String, kind: PiiKind) -> u32 {
    let mut count = 0;
    let mut from = 0;
    while let Some((start, end, keep, until)) = next_match(text, from, kind) {
        if kind == PiiKind::Passport {
            // Letters are part of the number too: all but the first character.
            let masked: String = text[start..end]
                .chars()
                .enumerate()
                .map(|(i, c)| if i == 0 { c } else { '*' })
                .collect();
            text.replace_range(start..end, &masked);
        } else {
            mask_digits(text, start..end, keep, until);
        }
        count += 1;
        from = end;
    }
    count
}

/// The next match of `kind` at or after `from`: its byte range and which of
/// its digits to mask (after the first `keep`, up to the `until`-th).
fn next_match(text: &str, from: usize, kind: PiiKind) -> Option<(usize, usize, usize, usize)> {
    let pattern: &Regex = match kind {
        PiiKind::Rrn | PiiKind::ForeignerRrn => &RRN,
        PiiKind::CardNumber => &CARD,
        PiiKind::DriverLicense => &LICENCE,
        PiiKind::Passport => &PASSPORT,
        PiiKind::Phone => &PHONE,
        PiiKind::BankAccount => &ACCOUNT,
    };
    let mut at = from;
    while let Some(found) = pattern.find_at(text, at) {
        let (start, end) = (found.start(), found.end());
        at = start + text[start..].chars().next().map_or(1, char::len_utf8);
        let letters = kind == PiiKind::Passport;
        if !stands_alone(text, start, end, letters) {
            continue;
        }
        let matched = found.as_str();
        let digits = digits_of(matched);
        let accepted = match kind {
            PiiKind::Rrn | PiiKind::ForeignerRrn => {
                let parts = RRN.captures(matched)?;
                let number = |i: usize| parts[i].parse::<u32>().unwrap_or(99);
                let separated = parts.get(4).is_some();
                let line = line_of(text, start);
                rrn_kind(number(1), number(2), number(3), number(5)) == Some(kind)
                    && !corporate_number(text, start)
                    && (separated
                        || rrn_check_digit_holds(&digits)
                        || RRN_LABELS.iter().any(|label| line.contains(label)))
            }
            PiiKind::CardNumber => luhn(&digits),
            PiiKind::BankAccount => {
                (10..=14).contains(&digits.len())
                    && ACCOUNT_LABELS
                        .iter()
                        .any(|label| line_of(text, start).contains(label))
            }
            PiiKind::Passport | PiiKind::Phone | PiiKind::DriverLicense => true,
        };
        if !accepted {
            continue;
        }
        let (keep, until) = match kind {
            PiiKind::Rrn | PiiKind::ForeignerRrn => (7, 13),
            PiiKind::CardNumber => (4, digits.len() - 4),
            PiiKind::BankAccount => (0, digits.len() - 4),
            PiiKind::Passport => (0, digits.len()),
            PiiKind::DriverLicense => (digits.len() - 10, digits.len()),
            PiiKind::Phone => {
                let parts = PHONE.captures(matched)?;
                let area = parts[1].len();
                (area, area + parts[3].len())
            }
        };
        return Some((start, end, keep, until));
    }
    None
}

/// The order kinds are looked for: the most specific shapes first, so that a
/// card number is never taken for an account, nor an RRN for a phone number.
const ORDER: [PiiKind; 7] = [
    PiiKind::Rrn,
    PiiKind::ForeignerRrn,
    PiiKind::CardNumber,
    PiiKind::DriverLicense,
    PiiKind::Passport,
    PiiKind::Phone,
    PiiKind::BankAccount,
];

/// `text` with every match of `kinds` masked, and the count of each. The
/// patterns read the text folded (`fold`: full-width digits, every dash);
/// the mask is laid on the text as written, character for character.
pub fn mask_text(text: &str, kinds: &[PiiKind]) -> (String, Counts) {
    let folded: String = text.chars().map(fold).collect();
    let (masked, counts) = mask_folded(&folded, kinds);
    if counts.is_empty() {
        return (text.to_owned(), counts);
    }
    let laid = text
        .chars()
        .zip(masked.chars())
        .map(|(original, masked)| if masked == '*' { '*' } else { original })
        .collect();
    (laid, counts)
}

fn mask_folded(text: &str, kinds: &[PiiKind]) -> (String, Counts) {
    let mut masked = text.to_owned();
    let mut counts = Counts::new();
    // Every kind is digits: a text without any (most words) is left at once.
    if !text.bytes().any(|byte| byte.is_ascii_digit()) {
        return (masked, counts);
    }
    for kind in ORDER.into_iter().filter(|kind| kinds.contains(kind)) {
        let found = mask_kind(&mut masked, kind);
        if found > 0 {
            counts.insert(kind, found);
        }
    }
    (masked, counts)
}

/// How many consecutive words a number may be split over by the engine.
const MAX_SPLIT: usize = 4;

/// Masks the words as the text they make: each run of up to four neighbours,
/// joined by spaces and joined with nothing between (an engine may cut one
/// number into several words), is masked as a whole and split back (masking
/// keeps lengths). The resident registration numbers found so are added to
/// `known`, which `mask_result` masks wherever else they appear.
fn mask_words(words: &mut [OcrWord], kinds: &[PiiKind], known: &mut Vec<String>) {
    for start in 0..words.len() {
        for len in 1..=MAX_SPLIT.min(words.len() - start) {
            for separator in [" ", ""] {
                let run = &words[start..start + len];
                let joined = run
                    .iter()
                    .map(|word| word.text.as_str())
                    .collect::<Vec<_>>()
                    .join(separator);
                let (masked, counts) = mask_text(&joined, kinds);
                if counts.is_empty() {
                    continue;
                }
                known.extend(rrn_numbers(&joined, kinds));
                let mut rest = masked.as_str();
                for word in &mut words[start..start + len] {
                    let (own, after) = rest.split_at(word.text.len());
                    word.text = own.to_owned();
                    rest = after.strip_prefix(separator).unwrap_or(after);
                }
            }
        }
    }
}

/// Masks the last six digits of each `known` number whose 13 digits run, in
/// order, through `words` (other characters between them allowed).
fn mask_known(words: &mut [OcrWord], known: &[String]) {
    // Every digit of the run: which word, which character, which digit.
    let mut places = Vec::new();
    for (w, word) in words.iter().enumerate() {
        for (c, ch) in word.text.chars().enumerate() {
            if let Some(digit) = fold(ch).to_digit(10) {
                places.push((w, c, char::from_digit(digit, 10).unwrap_or('0')));
            }
        }
    }
    let digits: String = places.iter().map(|(_, _, d)| d).collect();
    for number in known {
        let Some(at) = digits.find(number.as_str()) else {
            continue;
        };
        let hidden: Vec<(usize, usize)> = places[at + 7..at + 13]
            .iter()
            .map(|(w, c, _)| (*w, *c))
            .collect();
        for (w, word) in words.iter_mut().enumerate() {
            if hidden.iter().any(|(hw, _)| *hw == w) {
                word.text = word
                    .text
                    .chars()
                    .enumerate()
                    .map(|(c, ch)| if hidden.contains(&(w, c)) { '*' } else { ch })
                    .collect();
            }
        }
    }
}

/// `text` with the last six digits of each `known` number masked where its
/// digits run in order with only spaces, dashes or dots between them (an
/// engine's text may cut a number the words showed whole).
fn mask_known_text(text: &str, known: &[String]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let mut segment: Vec<(usize, char)> = Vec::new();
    let mut segments = Vec::new();
    for (i, c) in chars.iter().enumerate() {
        let folded = fold(*c);
        if folded.is_ascii_digit() {
            segment.push((i, folded));
        } else if !matches!(folded, ' ' | '-' | '.') {
            segments.push(std::mem::take(&mut segment));
        }
    }
    segments.push(segment);
    for segment in segments {
        let digits: String = segment.iter().map(|(_, d)| d).collect();
        for number in known {
            let mut from = 0;
            while let Some(at) = digits[from..].find(number.as_str()) {
                for (i, _) in &segment[from + at + 7..from + at + 13] {
                    chars[*i] = '*';
                }
                from += at + 13;
            }
        }
    }
    chars.into_iter().collect()
}

/// The 13 digits of each resident registration number `kinds` would mask in `text`.
fn rrn_numbers(text: &str, kinds: &[PiiKind]) -> Vec<String> {
    let folded: String = text.chars().map(fold).collect();
    let mut numbers = Vec::new();
    for kind in [PiiKind::Rrn, PiiKind::ForeignerRrn] {
        if !kinds.contains(&kind) {
            continue;
        }
        let mut from = 0;
        while let Some((start, end, _, _)) = next_match(&folded, from, kind) {
            numbers.push(
                digits_of(&folded[start..end])
                    .iter()
                    .map(|d| char::from_digit(*d, 10).unwrap_or('0'))
                    .collect(),
            );
            from = end;
        }
    }
    numbers
}

/// Masks `kinds` in the result's text, every page's text and every word, in
/// place. The counts are the document text's, with every kind asked for as a
/// key (0 when none was found); `None` when no kind was asked for.
pub fn mask_result(result: &mut OcrResult, kinds: &[PiiKind]) -> Option<Counts> {
    if kinds.is_empty() {
        return None;
    }
    // The numbers found anywhere (the text, a page's text, a run of words)
    // are masked everywhere else they appear, however cut.
    let mut known = rrn_numbers(&result.text, kinds);
    for page in &mut result.pages {
        known.extend(rrn_numbers(&page.text, kinds));
        mask_words(&mut page.words, kinds, &mut known);
    }
    let (text, mut counts) = mask_text(&result.text, kinds);
    for kind in kinds {
        counts.entry(*kind).or_insert(0);
    }
    result.text = mask_known_text(&text, &known);
    for page in &mut result.pages {
        let text = mask_text(&page.text, kinds).0;
        page.text = mask_known_text(&text, &known);
        for start in 0..page.words.len() {
            let end = (start + MAX_SPLIT).min(page.words.len());
            mask_known(&mut page.words[start..end], &known);
        }
    }
    Some(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DocumentType;
    use crate::ports::{OcrPage, Vertex};

    fn all(text: &str) -> (String, Counts) {
        mask_text(text, &PiiKind::ALL)
    }

    #[test]
    fn a_resident_registration_number_keeps_its_birth_date_and_sex_digit() {
        let (masked, counts) = all("주민등록번호 900101-1234567 발급");
        assert_eq!(masked, "주민등록번호 900101-1****** 발급");
        assert_eq!(counts, Counts::from([(PiiKind::Rrn, 1)]));
    }

    #[test]
    fn foreign_residents_numbers_are_their_own_kind() {
        let (masked, counts) = all("외국인등록번호: 020315-7123456");
        assert_eq!(masked, "외국인등록번호: 020315-7******");
        assert_eq!(counts, Counts::from([(PiiKind::ForeignerRrn, 1)]));
    }

    #[test]
    fn thirteen_digits_without_a_real_date_or_century_digit_are_left_alone() {
        // Month 13, and 30 February.
        assert_eq!(all("주문번호 991399-1234567").1, Counts::new());
        assert_eq!(all("주문번호 990230-1234567").1, Counts::new());
        // 29 February exists in 2000 (G 3/4) but not in 1900 (G 1/2).
        assert_eq!(all("000229-3234567").1, Counts::from([(PiiKind::Rrn, 1)]));
        assert_eq!(all("000229-1234567").1, Counts::new());
        // Part of a longer number; a corporate registration number, same shape.
        assert_eq!(all("12900101-1234567").1, Counts::new());
        assert_eq!(all("법인등록번호: 110111-7012345").1, Counts::new());
    }

    #[test]
    fn without_a_hyphen_the_check_digit_or_a_label_must_support_the_structure() {
        // 900101-1234568: weights give check digit 8 for these twelve digits.
        let digits = digits_of("9001011234568");
        assert!(rrn_check_digit_holds(&digits));
        assert_eq!(all("번호 9001011234568").0, "번호 9001011******");
        assert_eq!(all("번호 9001011234567").1, Counts::new());
        assert_eq!(all("주민번호 9001011234567").0, "주민번호 9001011******");
    }

    #[test]
    fn phones_cards_passports_licences_and_accounts_are_masked_by_their_own_rules() {
        let text = "연락처 010-1234-5678, 02-345-6789\n\
                    카드 4111 1111 1111 1111\n\
                    여권번호 M12345678, M123A4567\n\
                    면허 11-12-345678-90, 서울 12-345678-90\n\
                    입금 계좌 110-123-456789 (신한은행)";
        let (masked, counts) = all(text);
        assert_eq!(
            masked,
            "연락처 010-****-5678, 02-***-6789\n\
             카드 4111 **** **** 1111\n\
             여권번호 M********, M********\n\
             면허 11-**-******-**, 서울 **-******-**\n\
             입금 계좌 ***-***-**6789 (신한은행)"
        );
        assert_eq!(
            counts,
            Counts::from([
                (PiiKind::Passport, 2),
                (PiiKind::DriverLicense, 2),
                (PiiKind::Phone, 2),
                (PiiKind::BankAccount, 1),
                (PiiKind::CardNumber, 1),
            ])
        );
    }

    #[test]
    fn numbers_that_fail_their_checks_or_lack_context_are_left_alone() {
        // Not Luhn-valid; an account number without a label; only the kinds asked for.
        assert_eq!(all("4111 1111 1111 1112").1, Counts::new());
        assert_eq!(all("주문 110-123-456789").1, Counts::new());
        let (masked, counts) = mask_text("010-1234-5678 900101-1234567", &[PiiKind::Phone]);
        assert_eq!(masked, "010-****-5678 900101-1234567");
        assert_eq!(counts, Counts::from([(PiiKind::Phone, 1)]));
    }

    #[test]
    fn an_id_card_masks_everything_by_default_and_a_client_choice_wins() {
        assert_eq!(kinds_for(None, DocumentType::IdCard), PiiKind::ALL.to_vec());
        assert_eq!(
            kinds_for(None, DocumentType::Receipt),
            [PiiKind::Rrn, PiiKind::ForeignerRrn]
        );
        assert_eq!(kinds_for(Some(&[]), DocumentType::IdCard), Vec::new());
        assert_eq!(
            kinds_for(Some(&[PiiKind::Phone]), DocumentType::Receipt),
            vec![PiiKind::Phone]
        );
    }

    #[test]
    fn every_written_form_of_a_resident_registration_number_is_masked() {
        let rrn = [PiiKind::Rrn, PiiKind::ForeignerRrn];
        for (written, masked) in [
            ("９００１０１－１２３４５６８", "９００１０１－１******"),
            ("900101\u{2010}1234568", "900101\u{2010}1******"),
            ("900101\u{2013}1234568", "900101\u{2013}1******"),
            ("900101\u{2212}1234568", "900101\u{2212}1******"),
            ("900101\u{FF0D}1234568", "900101\u{FF0D}1******"),
            ("900101 - 1234568", "900101 - 1******"),
            ("900101.1234568", "900101.1******"),
            (
                "근로자 홍길동 900101-1234568",
                "근로자 홍길동 900101-1******",
            ),
        ] {
            let (text, counts) = mask_text(written, &rrn);
            assert_eq!(text, masked, "{written}");
            assert_eq!(counts.get(&PiiKind::Rrn), Some(&1), "{written}");
        }
        // A line with a company's number and its representative's: only the person's.
        let (text, _) = mask_text(
            "법인등록번호 110111-1234567 대표자 주민등록번호 900101-1234568",
            &rrn,
        );
        assert_eq!(
            text,
            "법인등록번호 110111-1234567 대표자 주민등록번호 900101-1******"
        );
    }

    #[test]
    fn word_boxes_are_masked_however_the_engine_cut_the_number_and_however_far_its_label() {
        let word = |text: &str| OcrWord {
            text: text.into(),
            confidence: 0.9,
            vertices: [Vertex { x: 0, y: 0 }; 4],
        };
        // No hyphen and no valid check digit: only the label, six words away, supports it.
        let text = "주민등록번호 확인 대상 성명 홍길동 (남) 9001011234560\n900101-123 4568";
        let mut result = crate::testing::ocr_result(text);
        result.pages[0].text = text.into();
        result.pages[0].words = text.split_whitespace().map(word).collect();
        mask_result(&mut result, &[PiiKind::Rrn, PiiKind::ForeignerRrn]);
        let words: Vec<&str> = result.pages[0]
            .words
            .iter()
            .map(|w| w.text.as_str())
            .collect();
        assert_eq!(
            words,
            [
                "주민등록번호",
                "확인",
                "대상",
                "성명",
                "홍길동",
                "(남)",
                "9001011******",
                "900101-1**",
                "****"
            ]
        );
        assert!(
            !result.text.contains("234560") && !result.text.contains("4568"),
            "{}",
            result.text
        );
    }

    #[test]
    fn a_number_split_over_words_is_masked_in_each_word() {
        let word = |text: &str| OcrWord {
            text: text.into(),
            confidence: 0.9,
            vertices: [Vertex { x: 0, y: 0 }; 4],
        };
        let text = "주민등록번호 900101-1234567";
        let mut result = OcrResult {
            redacted: None,
            job_id: None,
            engine: "tesseract".into(),
            model_version: "5".into(),
            confidence: 0.9,
            text: text.into(),
            num_billed_pages: 1,
            pages: vec![OcrPage {
                page: 1,
                width: 10,
                height: 10,
                confidence: 0.9,
                text: text.into(),
                words: vec![
                    word("주민등록번호"),
                    word("900101"),
                    word("-"),
                    word("1234567"),
                ],
                quality: None,
            }],
        };
        let counts = mask_result(&mut result, &[PiiKind::Rrn, PiiKind::Phone]);
        assert_eq!(
            counts,
            Some(Counts::from([(PiiKind::Rrn, 1), (PiiKind::Phone, 0)]))
        );
        assert!(covers(counts.as_ref(), &[PiiKind::Rrn]));
        assert!(!covers(counts.as_ref(), &[PiiKind::Passport]));
        assert!(covers(None, &[]));
        assert_eq!(result.text, "주민등록번호 900101-1******");
        assert_eq!(result.pages[0].text, result.text);
        let words: Vec<&str> = result.pages[0]
            .words
            .iter()
            .map(|w| w.text.as_str())
            .collect();
        assert_eq!(words, ["주민등록번호", "900101", "-", "1******"]);
        assert!(!serde_json::to_string(&result).unwrap().contains("1234567"));
    }
}
