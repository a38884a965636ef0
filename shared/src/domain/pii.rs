//! The kinds of Korean personal data a job can have masked.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::DocumentType;

/// How many of each kind were masked in a job's text; every kind the job
/// masks is a key, found or not.
pub type PiiCounts = BTreeMap<PiiKind, u32>;

/// A kind of personal data, as a job's `redact` list and its masked counts name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// 주민등록번호.
    Rrn,
    /// 외국인등록번호.
    ForeignerRrn,
    Passport,
    DriverLicense,
    Phone,
    BankAccount,
    CardNumber,
}

impl PiiKind {
    pub const ALL: [PiiKind; 7] = [
        PiiKind::Rrn,
        PiiKind::ForeignerRrn,
        PiiKind::Passport,
        PiiKind::DriverLicense,
        PiiKind::Phone,
        PiiKind::BankAccount,
        PiiKind::CardNumber,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            PiiKind::Rrn => "rrn",
            PiiKind::ForeignerRrn => "foreigner_rrn",
            PiiKind::Passport => "passport",
            PiiKind::DriverLicense => "driver_license",
            PiiKind::Phone => "phone",
            PiiKind::BankAccount => "bank_account",
            PiiKind::CardNumber => "card_number",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a job masks: the client's list (empty for `"none"`), else every kind
/// on an ID card and resident registration numbers (citizens' and foreign
/// residents') on anything else: an employment contract or a family
/// register carries them as often as an ID card does.
pub fn kinds_for(requested: Option<&[PiiKind]>, document_type: DocumentType) -> Vec<PiiKind> {
    match requested {
        Some(kinds) => kinds.to_vec(),
        None if document_type == DocumentType::IdCard => PiiKind::ALL.to_vec(),
        None => vec![PiiKind::Rrn, PiiKind::ForeignerRrn],
    }
}

/// Whether a result masked for `applied` kinds hides every kind in `needed`.
pub fn covers(applied: Option<&PiiCounts>, needed: &[PiiKind]) -> bool {
    needed
        .iter()
        .all(|kind| applied.is_some_and(|applied| applied.contains_key(kind)))
}
