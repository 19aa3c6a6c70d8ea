//! Instants: validation time is always a parameter, never the clock read inside the logic.

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::ProfileError;

/// Seconds in a day, for "days left".
const DAY: i64 = 86_400;

/// A UTC instant with one-second resolution (certificate times have no more).
///
/// Serialised as an RFC 3339 string, e.g. `"2027-01-01T00:00:00Z"`.
///
/// ```
/// use cpx_profile::Timestamp;
///
/// let at = Timestamp::parse("2027-01-01T00:00:00Z")?;
/// assert_eq!(at.unix(), 1_798_761_600);
/// assert_eq!(at.to_string(), "2027-01-01T00:00:00Z");
/// # Ok::<(), cpx_profile::ProfileError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From seconds since 1970-01-01T00:00:00Z.
    pub const fn from_unix(seconds: i64) -> Self {
        Timestamp(seconds)
    }

    /// Parse an RFC 3339 instant (any offset; stored as UTC).
    ///
    /// # Errors
    /// [`ProfileError::BadTime`] when the text is not RFC 3339.
    pub fn parse(text: &str) -> Result<Self, ProfileError> {
        OffsetDateTime::parse(text, &Rfc3339)
            .map(|t| Timestamp(t.unix_timestamp()))
            .map_err(|_| ProfileError::BadTime(text.to_owned()))
    }

    /// The current time, for callers at the edge (the CLI). Library logic never calls it.
    pub fn now() -> Self {
        Timestamp(OffsetDateTime::now_utc().unix_timestamp())
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// Whole days from `self` to `later`, rounded down (negative when `later` is before).
    pub const fn days_until(self, later: Timestamp) -> i64 {
        (later.0 - self.0).div_euclid(DAY)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
        {
            Some(s) => f.write_str(&s),
            // Outside years 0000-9999: cannot come from an X.509 time; show the raw number.
            None => write!(f, "@{}", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_days() {
        let at = Timestamp::parse("2027-01-01T00:00:00Z").unwrap();
        let end = Timestamp::parse("2029-01-01T00:00:00Z").unwrap();
        assert_eq!(at.days_until(end), 731); // 2028 is a leap year
        let expired = Timestamp::parse("2022-01-01T00:00:00Z").unwrap();
        assert_eq!(at.days_until(expired), -1826);
        assert_eq!(at.days_until(Timestamp::from_unix(at.unix() - 1)), -1);
        assert_eq!(Timestamp::parse("2027-01-01T01:00:00+01:00").unwrap(), at);
        assert!(matches!(
            Timestamp::parse("2027-01-01"),
            Err(ProfileError::BadTime(_))
        ));
        assert_eq!(
            Timestamp::from_unix(i64::MAX).to_string(),
            format!("@{}", i64::MAX)
        );
    }
}
