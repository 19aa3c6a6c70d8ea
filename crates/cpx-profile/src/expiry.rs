//! Expiry status of a certificate at a given instant.

use serde::Serialize;

use crate::cert::Validity;
use crate::timestamp::Timestamp;

/// Where an instant falls in a validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryStatus {
    /// Before notBefore.
    NotYetValid,
    /// Within the period.
    Valid,
    /// After notAfter.
    Expired,
}

/// Expiry status and days left.
///
/// ```
/// use cpx_profile::{Expiry, ExpiryStatus, Timestamp, Validity};
///
/// let v = Validity {
///     not_before: Timestamp::parse("2026-01-01T00:00:00Z")?,
///     not_after: Timestamp::parse("2029-01-01T00:00:00Z")?,
/// };
/// let e = Expiry::at(&v, Timestamp::parse("2027-01-01T00:00:00Z")?);
/// assert_eq!((e.status, e.days_left), (ExpiryStatus::Valid, 731));
/// # Ok::<(), cpx_profile::ProfileError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Expiry {
    /// Status at the instant.
    pub status: ExpiryStatus,
    /// Whole days from the instant to notAfter, rounded down; negative once expired.
    pub days_left: i64,
}

impl Expiry {
    /// The status of `validity` at `at`.
    pub fn at(validity: &Validity, at: Timestamp) -> Expiry {
        let status = if at < validity.not_before {
            ExpiryStatus::NotYetValid
        } else if at > validity.not_after {
            ExpiryStatus::Expired
        } else {
            ExpiryStatus::Valid
        };
        Expiry {
            status,
            days_left: at.days_until(validity.not_after),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        let v = Validity {
            not_before: Timestamp::from_unix(100),
            not_after: Timestamp::from_unix(200_000),
        };
        assert_eq!(
            Expiry::at(&v, Timestamp::from_unix(99)).status,
            ExpiryStatus::NotYetValid
        );
        assert_eq!(
            Expiry::at(&v, Timestamp::from_unix(100)).status,
            ExpiryStatus::Valid
        );
        assert_eq!(
            Expiry::at(&v, Timestamp::from_unix(200_000)).status,
            ExpiryStatus::Valid
        );
        let after = Expiry::at(&v, Timestamp::from_unix(200_001));
        assert_eq!((after.status, after.days_left), (ExpiryStatus::Expired, -1));
        assert_eq!(Expiry::at(&v, Timestamp::from_unix(100)).days_left, 2);
    }
}
