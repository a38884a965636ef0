//! The kinds of Korean document the pipeline knows, and a classifier from text.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of paperwork a document is: given by the client, or told from its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    Receipt,
    BusinessRegistration,
    IdCard,
    Contract,
    Invoice,
    General,
}

/// Title words that name a document outright, strongest first. Matched with
/// spaces removed, since OCR often splits Korean words.
const TITLES: &[(DocumentType, &[&str])] = &[
    (
        DocumentType::BusinessRegistration,
        &["사업자등록증", "businessregistrationcertificate"],
    ),
    (
        DocumentType::IdCard,
        &[
            "주민등록증",
            "운전면허증",
            "외국인등록증",
            "residentregistrationcard",
            "driver'slicense",
            "driverlicense",
        ],
    ),
    (
        DocumentType::Invoice,
        &["세금계산서", "거래명세서", "청구서", "invoice"],
    ),
    (DocumentType::Contract, &["계약서", "contract", "agreement"]),
    (DocumentType::Receipt, &["영수증", "receipt"]),
];

/// Weaker signals, used when no title is found: (type, words, how many must appear).
const SIGNALS: &[(DocumentType, &[&str], usize)] = &[
    (
        DocumentType::Receipt,
        &["합계", "카드", "승인", "부가세", "결제", "total", "vat"],
        2,
    ),
    (
        DocumentType::Contract,
        &["제1조", "갑", "을", "계약", "서명"],
        3,
    ),
    (DocumentType::Invoice, &["공급가액", "공급자", "세액"], 2),
];

impl DocumentType {
    pub const ALL: [DocumentType; 6] = [
        DocumentType::Receipt,
        DocumentType::BusinessRegistration,
        DocumentType::IdCard,
        DocumentType::Contract,
        DocumentType::Invoice,
        DocumentType::General,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            DocumentType::Receipt => "receipt",
            DocumentType::BusinessRegistration => "business_registration",
            DocumentType::IdCard => "id_card",
            DocumentType::Contract => "contract",
            DocumentType::Invoice => "invoice",
            DocumentType::General => "general",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }

    /// The document's type from its recognised text.
    pub fn classify(text: &str) -> Self {
        let folded: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect();
        if let Some((kind, _)) = TITLES
            .iter()
            .find(|(_, words)| words.iter().any(|word| folded.contains(word)))
        {
            return *kind;
        }
        SIGNALS
            .iter()
            .find(|(_, words, needed)| {
                words.iter().filter(|word| folded.contains(*word)).count() >= *needed
            })
            .map_or(DocumentType::General, |(kind, _, _)| *kind)
    }
}

impl fmt::Display for DocumentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_name_the_document_even_when_ocr_splits_them() {
        let cases = [
            (
                "사 업 자 등 록 증\n등록번호 : 123-45-67890",
                DocumentType::BusinessRegistration,
            ),
            ("주민등록증\n홍길동", DocumentType::IdCard),
            ("자동차운전면허증 서울 12-345678", DocumentType::IdCard),
            ("전자세금계산서 공급자 공급받는자", DocumentType::Invoice),
            ("INVOICE No. 2026-001", DocumentType::Invoice),
            ("부동산 임대차 계약서\n제1조 (목적)", DocumentType::Contract),
            ("영수증\n아메리카노 4,500", DocumentType::Receipt),
            ("Sales RECEIPT", DocumentType::Receipt),
        ];
        for (text, expected) in cases {
            assert_eq!(DocumentType::classify(text), expected, "{text}");
        }
    }

    #[test]
    fn weaker_signals_decide_when_there_is_no_title() {
        assert_eq!(
            DocumentType::classify("합계 12,000\n카드 승인번호 1234"),
            DocumentType::Receipt
        );
        assert_eq!(
            DocumentType::classify("제1조 갑은 을에게 계약금을"),
            DocumentType::Contract
        );
        assert_eq!(
            DocumentType::classify("회의록\n참석자: 김철수"),
            DocumentType::General
        );
        assert_eq!(DocumentType::classify(""), DocumentType::General);
    }

    #[test]
    fn names_round_trip() {
        for kind in DocumentType::ALL {
            assert_eq!(DocumentType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(DocumentType::parse("passport"), None);
    }
}
