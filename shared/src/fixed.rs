//! Fixed-point numbers with two decimals.
//!
//! Council means such as 90.75 decide stars at hard thresholds (70, 90), so
//! they are kept as integer hundredths: no float ever touches a score.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-float decimal with exactly two fractional digits, stored as hundredths.
///
/// Serialized as a JSON string (`"90.75"`) so that no JSON reader turns it
/// into a binary float on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Centi(i64);

impl Centi {
    pub const ZERO: Centi = Centi(0);

    /// From hundredths: `Centi::from_hundredths(9075)` is 90.75.
    pub const fn from_hundredths(h: i64) -> Self {
        Centi(h)
    }

    /// From whole points: `Centi::from_points(90)` is 90.00.
    pub const fn from_points(p: i64) -> Self {
        Centi(p * 100)
    }

    pub const fn hundredths(self) -> i64 {
        self.0
    }

    /// The mean of `sum / count` rounded to two decimals.
    ///
    /// Rounding rule: to the nearest hundredth, halves away from zero
    /// (90.125 → 90.13, −0.125 → −0.13). Points are never negative in OCOP,
    /// so in practice this is "round half up". `count == 0` gives `None`.
    pub fn mean(sum: i64, count: u64) -> Option<Self> {
        if count == 0 {
            return None;
        }
        let n = i128::from(count);
        let scaled = i128::from(sum) * 100;
        let q = scaled / n;
        let r = scaled % n;
        // Compare 2|r| with n to decide the half, exactly.
        let adjust = if 2 * r.abs() >= n { scaled.signum() } else { 0 };
        let v = q + adjust;
        Some(Centi(i64::try_from(v).unwrap_or(if v > 0 {
            i64::MAX
        } else {
            i64::MIN
        })))
    }

    pub fn saturating_sub(self, other: Centi) -> Centi {
        Centi(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Centi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", a / 100, a % 100)
    }
}

/// Error parsing a [`Centi`] from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid decimal {0:?}: expected digits with at most two decimals, such as 90.75")]
pub struct ParseCentiError(pub String);

impl FromStr for Centi {
    type Err = ParseCentiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseCentiError(s.to_string());
        let (neg, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if int.is_empty()
            || frac.len() > 2
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        if body.contains('.') && frac.is_empty() {
            return Err(err());
        }
        let whole: i64 = int.parse().map_err(|_| err())?;
        let mut hundredths: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().map_err(|_| err())? * 10,
            _ => frac.parse::<i64>().map_err(|_| err())?,
        };
        hundredths = whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(hundredths))
            .ok_or_else(err)?;
        Ok(Centi(if neg { -hundredths } else { hundredths }))
    }
}

impl Serialize for Centi {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Centi {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::exact(181, 2, "90.50")]
    #[case::thirds_down(271, 3, "90.33")]
    #[case::thirds_up(272, 3, "90.67")]
    #[case::half_hundredth_rounds_up(721, 8, "90.13")] // 721/8 = 90.125
    #[case::just_below_ninety(629, 7, "89.86")]
    #[case::zero(0, 5, "0.00")]
    fn mean_rounds_half_away_from_zero(#[case] sum: i64, #[case] n: u64, #[case] want: &str) {
        assert_eq!(Centi::mean(sum, n).unwrap().to_string(), want);
    }

    #[test]
    fn mean_of_nothing_is_none() {
        assert_eq!(Centi::mean(10, 0), None);
    }

    #[rstest]
    #[case("90.75", 9075)]
    #[case("90", 9000)]
    #[case("90.5", 9050)]
    #[case("0.01", 1)]
    #[case("-1.25", -125)]
    fn parses_decimal_text(#[case] s: &str, #[case] h: i64) {
        assert_eq!(s.parse::<Centi>().unwrap(), Centi::from_hundredths(h));
    }

    #[rstest]
    #[case("")]
    #[case("90.")]
    #[case("90.123")]
    #[case("1e3")]
    #[case(".5")]
    #[case("abc")]
    fn rejects_malformed_decimal_text(#[case] s: &str) {
        assert!(s.parse::<Centi>().is_err());
    }

    #[test]
    fn serializes_as_exact_string() {
        let v = Centi::from_hundredths(8999);
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"89.99\"");
        assert_eq!(serde_json::from_str::<Centi>("\"89.99\"").unwrap(), v);
    }
}
