//! Money: integer minor units, an ISO 4217 currency, checked arithmetic and the
//! largest-remainder split that shares a discount among its lines.
//!
//! Amounts are `i64` counts of the currency's minor unit (cents for EUR), as in
//! `docs/api.md`. No floating point anywhere: a cancellation must refund exactly
//! what was paid for the cancelled lines (SPEC §2.4).

use std::fmt;

use super::refusal::{FieldError, Refusal};

/// An ISO 4217 alphabetic currency code: three upper-case ASCII letters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(String);

/// A currency code that is not three upper-case ASCII letters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not an ISO 4217 currency code (three upper-case letters, e.g. EUR)")]
pub struct InvalidCurrency {
    /// The code as given.
    pub input: String,
}

impl Currency {
    /// Parses a code such as `EUR`. Lower case is refused rather than fixed up:
    /// the code is echoed to ERPs, which expect it exactly.
    pub fn parse(code: &str) -> Result<Currency, InvalidCurrency> {
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Currency(code.to_owned()))
        } else {
            Err(InvalidCurrency {
                input: code.to_owned(),
            })
        }
    }

    /// The three-letter code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Currency {
    type Err = InvalidCurrency;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

/// The refusal for an amount that does not fit in `i64` minor units.
/// Validated orders never reach it (their amounts are bounded, see
/// [`Order::validate`](super::Order::validate)); it exists so that no input
/// can make the domain panic.
pub(crate) fn overflow() -> Refusal {
    Refusal::ValidationFailed {
        errors: vec![FieldError::new(
            "amountMinor",
            "amounts add up beyond the largest representable amount",
        )],
    }
}

/// `a + b`, or the overflow refusal.
pub(crate) fn add(a: i64, b: i64) -> Result<i64, Refusal> {
    a.checked_add(b).ok_or_else(overflow)
}

/// `a - b`, or the overflow refusal.
pub(crate) fn sub(a: i64, b: i64) -> Result<i64, Refusal> {
    a.checked_sub(b).ok_or_else(overflow)
}

/// The sum of `amounts`, or the overflow refusal.
pub(crate) fn sum(amounts: impl IntoIterator<Item = i64>) -> Result<i64, Refusal> {
    amounts.into_iter().try_fold(0i64, add)
}

/// Shares `total` among parts in proportion to `weights`, by the largest
/// remainder method (Hamilton): each part first gets the floor of its exact
/// share, then the units left over go one each to the parts with the largest
/// remainders; equal remainders go to the earlier part. When every weight is
/// zero, the parts weigh equally.
///
/// The shares always add up to `total` exactly, carry its sign, and none is
/// further than one unit from its exact proportional value. This is how a
/// discount line that applies to several lines is spread over them (SPEC
/// §2.4), so that cancelling the lines one by one returns exactly the order
/// total.
///
/// # Examples
/// ```
/// use rescind_host::domain::split_largest_remainder;
/// assert_eq!(split_largest_remainder(-100, &[1, 1, 1]), vec![-34, -33, -33]);
/// assert_eq!(split_largest_remainder(10, &[0, 0]), vec![5, 5]);
/// ```
pub fn split_largest_remainder(total: i64, weights: &[u64]) -> Vec<i64> {
    if weights.is_empty() {
        return Vec::new();
    }
    let equal;
    let weights = if weights.iter().all(|&w| w == 0) {
        equal = vec![1u64; weights.len()];
        &equal[..]
    } else {
        weights
    };
    // i128 holds |total| * weight (< 2^63 * 2^64) without overflow.
    let magnitude = i128::from(total).abs();
    let weight_sum: i128 = weights.iter().map(|&w| i128::from(w)).sum();
    let mut shares: Vec<i128> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
    for (index, &weight) in weights.iter().enumerate() {
        let exact = magnitude * i128::from(weight);
        shares.push(exact / weight_sum);
        remainders.push((exact % weight_sum, index));
    }
    let mut left_over = magnitude - shares.iter().sum::<i128>();
    // Largest remainder first; on a tie, the earlier part.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, index) in &remainders {
        if left_over == 0 {
            break;
        }
        shares[index] += 1;
        left_over -= 1;
    }
    let sign = if total < 0 { -1 } else { 1 };
    shares
        .into_iter()
        // Each share is at most |total|, so it fits back into i64.
        .map(|share| {
            i64::try_from(share * sign).unwrap_or(if sign < 0 { i64::MIN } else { i64::MAX })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_codes_are_three_upper_case_letters() {
        // docs/api.md: "Amounts are integers in minor units" with an ISO 4217 currency (SPEC §2.4).
        for ok in ["EUR", "USD", "CHF"] {
            assert_eq!(Currency::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "eur", "EU", "EURO", "E1R", "€UR"] {
            assert_eq!(
                Currency::parse(bad),
                Err(InvalidCurrency {
                    input: bad.to_owned()
                })
            );
        }
    }

    #[test]
    fn split_table() {
        // AaaS seed: "any associated discounts ... are also canceled" — a discount over
        // several lines is shared among them, exactly.
        let cases: &[(i64, &[u64], &[i64])] = &[
            (-100, &[1, 1, 1], &[-34, -33, -33]),
            (-100, &[3, 1], &[-75, -25]),
            (-2000, &[20000], &[-2000]),
            (-10, &[0, 0], &[-5, -5]),
            (-7, &[0, 5], &[0, -7]),
            (0, &[4, 6], &[0, 0]),
            (-1, &[1, 1], &[-1, 0]),
            (-1, &[1, 2], &[0, -1]),
            (101, &[1, 1], &[51, 50]),
            (-5, &[0, 1, 1], &[0, -3, -2]),
            (
                i64::MIN,
                &[1, 1],
                &[-4611686018427387904, -4611686018427387904],
            ),
            (i64::MAX, &[u64::MAX, 1], &[i64::MAX, 0]),
        ];
        for &(total, weights, expected) in cases {
            assert_eq!(
                split_largest_remainder(total, weights),
                expected,
                "{total} over {weights:?}"
            );
        }
        assert!(split_largest_remainder(-5, &[]).is_empty());
    }

    #[test]
    fn checked_arithmetic_refuses_instead_of_panicking() {
        assert_eq!(add(i64::MAX, 1), Err(overflow()));
        assert_eq!(sub(i64::MIN, 1), Err(overflow()));
        assert_eq!(sum([i64::MAX, 1, -5]), Err(overflow()));
        assert_eq!(sum([1, 2, 3]), Ok(6));
        assert_eq!(overflow().code(), "validation-failed");
    }
}
