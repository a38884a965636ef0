//! What makes a page image hard to read, as a user can fix it.

use serde::{Deserialize, Serialize};

/// What makes a page hard to read, as a user can fix it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityIssue {
    Blurry,
    Skewed,
    TextTooSmall,
    TooDark,
    Glare,
    CutOff,
}

impl QualityIssue {
    pub const ALL: [QualityIssue; 6] = [
        QualityIssue::Blurry,
        QualityIssue::Skewed,
        QualityIssue::TextTooSmall,
        QualityIssue::TooDark,
        QualityIssue::Glare,
        QualityIssue::CutOff,
    ];

    /// The stable code clients match on.
    pub const fn as_str(self) -> &'static str {
        match self {
            QualityIssue::Blurry => "blurry",
            QualityIssue::Skewed => "skewed",
            QualityIssue::TextTooSmall => "text_too_small",
            QualityIssue::TooDark => "too_dark",
            QualityIssue::Glare => "glare",
            QualityIssue::CutOff => "cut_off",
        }
    }

    /// The issue as the page shows it to a user, in Korean and English.
    pub const fn label(self) -> &'static str {
        match self {
            QualityIssue::Blurry => "흐립니다 · blurry",
            QualityIssue::Skewed => "기울어졌습니다 · skewed",
            QualityIssue::TextTooSmall => "글자가 너무 작습니다 · text too small",
            QualityIssue::TooDark => "너무 어둡습니다 · too dark",
            QualityIssue::Glare => "빛이 반사됩니다 · glare",
            QualityIssue::CutOff => "잘렸습니다 · cut off",
        }
    }
}
