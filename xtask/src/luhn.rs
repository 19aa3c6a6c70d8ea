//! Luhn (mod 10) keys: RPPS, RPPS-rang, SIRET and PAN check digits (docs/data-and-certs.md §2.7).

use crate::Result;

/// Luhn sum of `digits`, doubling every second digit from the right when `double_last` is false
/// (a complete number, key included) or from the last one when true (a number awaiting its key).
fn sum(digits: &str, double_last: bool) -> Result<u32> {
    let mut total = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let mut d = c
            .to_digit(10)
            .ok_or_else(|| format!("not a digit in {digits:?}"))?;
        if (i % 2 == 0) == double_last {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        total += d;
    }
    Ok(total)
}

/// The key that makes `digits` followed by it Luhn-valid.
pub(crate) fn check_digit(digits: &str) -> Result<char> {
    let key = (10 - sum(digits, true)? % 10) % 10;
    char::from_digit(key, 10).ok_or_else(|| "Luhn key out of range".into())
}

/// `digits` followed by its Luhn key.
pub(crate) fn with_check_digit(digits: &str) -> Result<String> {
    let key = check_digit(digits)?;
    Ok(format!("{digits}{key}"))
}

/// Whether `digits` (key last) is non-empty, all digits and Luhn-valid.
pub(crate) fn is_valid(digits: &str) -> bool {
    !digits.is_empty() && sum(digits, false).is_ok_and(|s| s.is_multiple_of(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real numbers checked in docs/data-and-certs.md §2.7, and real or reference PANs.
    const KNOWN_GOOD: &[&str] = &[
        "10002813839",    // RPPS
        "99700735741",    // RPPS (test range)
        "99700075122",    // RPPS
        "99700367917",    // RPPS
        "99700218896",    // RPPS
        "99700735741008", // RPPS-rang of a real test card
        "99900001100018", // our CPA SIRET
        "79927398713",    // the textbook Luhn example
    ];

    #[test]
    fn known_good_numbers_get_their_key_back() {
        for id in KNOWN_GOOD {
            assert!(is_valid(id), "{id}");
            let (body, key) = id.split_at(id.len() - 1);
            assert_eq!(check_digit(body).unwrap().to_string(), key, "{id}");
            assert_eq!(with_check_digit(body).unwrap(), *id);
        }
    }

    #[test]
    fn wrong_keys_and_non_digits_are_rejected() {
        // MOS illustrative RPPS, not a real number (docs/data-and-certs.md §2.7).
        assert!(!is_valid("10005678901"));
        assert!(!is_valid("99700735742"));
        assert!(!is_valid(""));
        assert!(!is_valid("9970073574A"));
        assert!(check_digit("12a").is_err());
        // EF.SN.ICC PAN of the CPS4 test card: 8025000001 + 00000006 + key (emulator default).
        assert_eq!(check_digit("802500000100000006").unwrap(), '4');
    }
}
