//! DynamoDB's number type: an exact decimal of up to 38 significant digits
//! whose magnitude lies in 1E-130 ..= 9.99…9E+125 (or is zero).
//!
//! A [`Number`] is always canonical: the significand carries no trailing
//! zeros and zero has one representation, so `1e3`, `1000`, `1000.0` and
//! `01000` are the same value, compare equal, hash equal and print as `1000`.
//! Input outside the limits is rejected, never rounded.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use super::ValueError;

/// The most significant digits a number may have.
pub const MAX_SIGNIFICANT_DIGITS: u32 = 38;
/// The largest decimal exponent of a number's leading digit (9.99…E+125).
pub const MAX_LEADING_EXPONENT: i32 = 125;
/// The smallest decimal exponent of a number's leading digit (1E-130).
pub const MIN_LEADING_EXPONENT: i32 = -130;

/// An exact decimal number with DynamoDB's precision and range.
///
/// The value is `(-1)^negative × significand × 10^exponent`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    /// No trailing decimal zeros; zero only for the number zero.
    significand: u128,
    exponent: i16,
}

/// Why a number was rejected; converted to DynamoDB's message by [`ValueError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberError {
    /// Not a decimal number at all.
    Malformed,
    /// More than 38 significant digits.
    TooPrecise,
    /// Magnitude at or above 1E+126.
    Overflow,
    /// Non-zero magnitude below 1E-130.
    Underflow,
}

impl NumberError {
    /// DynamoDB's message for this error; `text` is the rejected input.
    fn into_value_error(self, text: &str) -> ValueError {
        ValueError::validation(match self {
            NumberError::Malformed if text.is_empty() => {
                "The parameter cannot be converted to a numeric value".to_owned()
            }
            NumberError::Malformed => {
                format!("The parameter cannot be converted to a numeric value: {text}")
            }
            NumberError::TooPrecise => {
                "Attempting to store more than 38 significant digits in a Number".to_owned()
            }
            NumberError::Overflow => "Number overflow. Attempting to store a number with \
                                      magnitude larger than supported range"
                .to_owned(),
            NumberError::Underflow => "Number underflow. Attempting to store a number with \
                                       magnitude smaller than supported range"
                .to_owned(),
        })
    }

    /// The error of an arithmetic result. DynamoDB reports a result that
    /// needs more than 38 digits (`1e50 + 1`) as an overflow, and so do we,
    /// so that callers matching DynamoDB's messages see the same text.
    fn into_arithmetic_error(self) -> ValueError {
        match self {
            NumberError::TooPrecise => NumberError::Overflow.into_value_error(""),
            other => other.into_value_error(""),
        }
    }
}

impl Number {
    /// The number zero.
    pub const ZERO: Number = Number {
        negative: false,
        significand: 0,
        exponent: 0,
    };

    /// Builds `(-1)^negative × significand × 10^exponent`, canonicalised and
    /// checked against DynamoDB's precision and range.
    pub(crate) fn from_parts(
        negative: bool,
        significand: u128,
        exponent: i64,
    ) -> Result<Self, NumberError> {
        if significand == 0 {
            return Ok(Self::ZERO);
        }
        let (mut significand, mut exponent) = (significand, exponent);
        while significand % 10 == 0 {
            significand /= 10;
            exponent += 1;
        }
        let digits = digit_count(significand);
        if digits > MAX_SIGNIFICANT_DIGITS {
            return Err(NumberError::TooPrecise);
        }
        let leading = exponent + i64::from(digits) - 1;
        if leading > i64::from(MAX_LEADING_EXPONENT) {
            return Err(NumberError::Overflow);
        }
        if leading < i64::from(MIN_LEADING_EXPONENT) {
            return Err(NumberError::Underflow);
        }
        let exponent = i16::try_from(exponent).map_err(|_| NumberError::Underflow)?;
        Ok(Self {
            negative,
            significand,
            exponent,
        })
    }

    /// Whether the number is zero.
    pub fn is_zero(&self) -> bool {
        self.significand == 0
    }

    /// Whether the number is below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// The significant digits, without trailing zeros (`0` for zero).
    pub fn significand(&self) -> u128 {
        self.significand
    }

    /// The power of ten the significand is multiplied by.
    pub fn exponent(&self) -> i32 {
        i32::from(self.exponent)
    }

    /// How many significant digits the number has (1 for zero).
    pub fn significant_digits(&self) -> u32 {
        digit_count(self.significand)
    }

    /// The decimal exponent of the leading digit (`2` for `123`, `-1` for
    /// `0.5`), or `None` for zero.
    pub fn leading_exponent(&self) -> Option<i32> {
        if self.is_zero() {
            return None;
        }
        Some(self.exponent() + self.significant_digits() as i32 - 1)
    }

    /// The number with the opposite sign.
    pub fn negated(&self) -> Self {
        if self.is_zero() {
            return *self;
        }
        Self {
            negative: !self.negative,
            ..*self
        }
    }

    /// `self + other`, exact, or an error when the exact result does not fit
    /// DynamoDB's 38 digits and range (never rounded).
    pub fn checked_add(&self, other: &Number) -> Result<Number, ValueError> {
        add(self, other).map_err(NumberError::into_arithmetic_error)
    }

    /// `self - other`, exact, or an error like [`Number::checked_add`].
    pub fn checked_sub(&self, other: &Number) -> Result<Number, ValueError> {
        add(self, &other.negated()).map_err(NumberError::into_arithmetic_error)
    }

    /// The number as an `i64`, if it is an integer in range.
    pub fn to_i64(&self) -> Option<i64> {
        let magnitude = self.integer_magnitude()?;
        if self.negative {
            0i64.checked_sub_unsigned(u64::try_from(magnitude).ok()?)
        } else {
            i64::try_from(magnitude).ok()
        }
    }

    /// The number as a `u64`, if it is a non-negative integer in range.
    pub fn to_u64(&self) -> Option<u64> {
        if self.negative {
            return None;
        }
        u64::try_from(self.integer_magnitude()?).ok()
    }

    /// The nearest `f64` (rounding as Rust's float parser does).
    pub fn to_f64(&self) -> f64 {
        // Going through the canonical text keeps the conversion correctly
        // rounded without a hand-written decimal-to-binary algorithm.
        self.to_scientific().parse().unwrap_or(f64::NAN)
    }

    fn integer_magnitude(&self) -> Option<u128> {
        if self.exponent < 0 {
            return None;
        }
        10u128
            .checked_pow(u32::try_from(self.exponent).ok()?)?
            .checked_mul(self.significand)
    }

    /// The number in scientific notation (`1.5E+3`), shorter than the plain
    /// form for extreme exponents; parses back to the same number.
    pub fn to_scientific(&self) -> String {
        let sign = if self.negative { "-" } else { "" };
        let digits = self.digits();
        let (first, rest) = digits.as_str().split_at(1);
        let leading = self.leading_exponent().unwrap_or(0);
        if rest.is_empty() {
            format!("{sign}{first}E{leading:+}")
        } else {
            format!("{sign}{first}.{rest}E{leading:+}")
        }
    }

    /// The significant digits as ASCII, without allocating.
    pub(crate) fn digits(&self) -> Digits {
        // Dividing by 10^19 once leaves u64 chunks, much cheaper to split
        // into digits than a u128.
        const CHUNK: u128 = 10u128.pow(19);
        let mut bytes = [b'0'; 40];
        let mut end = bytes.len();
        let mut rest = self.significand;
        loop {
            let mut chunk = (rest % CHUNK) as u64;
            rest /= CHUNK;
            let chunk_end = end;
            loop {
                end -= 1;
                bytes[end] = b'0' + (chunk % 10) as u8;
                chunk /= 10;
                if chunk == 0 {
                    break;
                }
            }
            if rest == 0 {
                return Digits { bytes, start: end };
            }
            // A lower chunk has exactly 19 digits; the buffer is pre-filled
            // with the zeros that pad it.
            end = chunk_end - 19;
        }
    }

    /// The significand scaled to exactly 38 digits, for comparisons.
    fn scaled_significand(&self) -> u128 {
        self.significand * 10u128.pow(MAX_SIGNIFICANT_DIGITS - self.significant_digits())
    }
}

/// The ASCII digits of a significand, held on the stack.
pub(crate) struct Digits {
    bytes: [u8; 40],
    start: usize,
}

impl Digits {
    /// The digits, most significant first.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// The digits as text.
    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII digits are ever written.
        std::str::from_utf8(self.as_bytes()).unwrap_or("0")
    }
}

/// The number of decimal digits of `value` (1 for 0).
fn digit_count(value: u128) -> u32 {
    value.checked_ilog10().map_or(1, |log| log + 1)
}

fn add(a: &Number, b: &Number) -> Result<Number, NumberError> {
    if a.is_zero() {
        return Ok(*b);
    }
    if b.is_zero() {
        return Ok(*a);
    }
    // Align both significands to the smaller exponent. If the larger one
    // needs more than u128 to be aligned, the exact sum spans more than 38
    // digits: its leading digit is at least 10^39 places above its last
    // non-zero digit (which comes from the other operand), so it is rejected
    // as too precise rather than computed.
    let (high, low) = if a.exponent >= b.exponent {
        (a, b)
    } else {
        (b, a)
    };
    let shift = u32::try_from(i32::from(high.exponent) - i32::from(low.exponent))
        .map_err(|_| NumberError::TooPrecise)?;
    let aligned_high = 10u128
        .checked_pow(shift)
        .and_then(|scale| scale.checked_mul(high.significand))
        .ok_or(NumberError::TooPrecise)?;
    let (negative, magnitude) = if high.negative == low.negative {
        let sum = aligned_high
            .checked_add(low.significand)
            .ok_or(NumberError::TooPrecise)?;
        (high.negative, sum)
    } else if aligned_high >= low.significand {
        (high.negative, aligned_high - low.significand)
    } else {
        (low.negative, low.significand - aligned_high)
    };
    Number::from_parts(negative, magnitude, i64::from(low.exponent))
}

/// Parses DynamoDB's textual number form: an optional sign, digits with an
/// optional decimal point (at least one digit), and an optional exponent.
fn parse(text: &str) -> Result<Number, NumberError> {
    let bytes = text.as_bytes();
    let mut position = 0;
    let negative = match bytes.first() {
        Some(b'-') => {
            position += 1;
            true
        }
        Some(b'+') => {
            position += 1;
            false
        }
        _ => false,
    };

    let mut significand: u128 = 0;
    let mut significant_digits: u32 = 0;
    let mut any_digit = false;
    let mut seen_point = false;
    // Digits dropped because they were trailing zeros beyond what fits are
    // tracked by adjusting the exponent instead of the significand.
    let mut exponent: i64 = 0;
    let mut pending_zeros: i64 = 0;
    while let Some(&byte) = bytes.get(position) {
        match byte {
            b'0'..=b'9' => {
                any_digit = true;
                let digit = u128::from(byte - b'0');
                if seen_point {
                    exponent -= 1;
                }
                if digit == 0 {
                    if significand != 0 {
                        pending_zeros += 1;
                    }
                } else {
                    // Flush the zeros seen since the last non-zero digit.
                    significant_digits = significant_digits
                        .saturating_add(u32::try_from(pending_zeros).unwrap_or(u32::MAX))
                        .saturating_add(1);
                    if significant_digits > MAX_SIGNIFICANT_DIGITS {
                        return Err(NumberError::TooPrecise);
                    }
                    let scale = 10u128.pow(u32::try_from(pending_zeros).unwrap_or(0) + 1);
                    significand = significand * scale + digit;
                    pending_zeros = 0;
                }
            }
            b'.' if !seen_point => seen_point = true,
            _ => break,
        }
        position += 1;
    }
    if !any_digit {
        return Err(NumberError::Malformed);
    }
    // Trailing zeros of the significand scale the value instead.
    exponent += pending_zeros;

    if let Some(&(b'e' | b'E')) = bytes.get(position) {
        position += 1;
        let exponent_negative = match bytes.get(position) {
            Some(b'-') => {
                position += 1;
                true
            }
            Some(b'+') => {
                position += 1;
                false
            }
            _ => false,
        };
        let start = position;
        let mut written: i64 = 0;
        while let Some(&byte @ b'0'..=b'9') = bytes.get(position) {
            written = written
                .saturating_mul(10)
                .saturating_add(i64::from(byte - b'0'));
            position += 1;
        }
        // DynamoDB reads the exponent as a 32-bit integer and calls anything
        // larger unconvertible.
        if position == start || written > i64::from(i32::MAX) {
            return Err(NumberError::Malformed);
        }
        exponent = if exponent_negative {
            exponent.saturating_sub(written)
        } else {
            exponent.saturating_add(written)
        };
    }
    if position != bytes.len() {
        return Err(NumberError::Malformed);
    }
    Number::from_parts(negative, significand, exponent)
}

impl FromStr for Number {
    type Err = ValueError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse(text).map_err(|error| error.into_value_error(text))
    }
}

impl TryFrom<&str> for Number {
    type Error = ValueError;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl fmt::Display for Number {
    /// DynamoDB's canonical form: plain decimal notation, never scientific,
    /// no superfluous zeros (`1000`, `0.001`, `-2.5`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        if self.negative {
            f.write_str("-")?;
        }
        let digits = self.digits();
        let digits = digits.as_str();
        let exponent = self.exponent();
        if exponent >= 0 {
            f.write_str(digits)?;
            return write_zeros(f, exponent.unsigned_abs() as usize);
        }
        let fraction_digits = exponent.unsigned_abs() as usize;
        if digits.len() > fraction_digits {
            let (integer, fraction) = digits.split_at(digits.len() - fraction_digits);
            write!(f, "{integer}.{fraction}")
        } else {
            f.write_str("0.")?;
            write_zeros(f, fraction_digits - digits.len())?;
            f.write_str(digits)
        }
    }
}

fn write_zeros(f: &mut fmt::Formatter<'_>, mut count: usize) -> fmt::Result {
    const ZEROS: &str = "00000000000000000000000000000000";
    while count > 0 {
        let chunk = count.min(ZEROS.len());
        f.write_str(&ZEROS[..chunk])?;
        count -= chunk;
    }
    Ok(())
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({self})")
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        let sign = |n: &Number| match (n.is_zero(), n.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        };
        match sign(self).cmp(&sign(other)) {
            Ordering::Equal => {}
            unequal => return unequal,
        }
        if self.is_zero() {
            return Ordering::Equal;
        }
        let magnitude = self
            .leading_exponent()
            .cmp(&other.leading_exponent())
            .then_with(|| self.scaled_significand().cmp(&other.scaled_significand()));
        if self.negative {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Default for Number {
    fn default() -> Self {
        Self::ZERO
    }
}

macro_rules! from_unsigned {
    ($($t:ty),*) => {$(
        impl From<$t> for Number {
            fn from(value: $t) -> Self {
                // Every value of these types has at most 20 digits.
                match Number::from_parts(false, value as u128, 0) {
                    Ok(number) => number,
                    Err(_) => unreachable!("{} fits in a Number", value),
                }
            }
        }
    )*};
}

macro_rules! from_signed {
    ($($t:ty),*) => {$(
        impl From<$t> for Number {
            fn from(value: $t) -> Self {
                let magnitude = value.unsigned_abs() as u128;
                match Number::from_parts(value < 0, magnitude, 0) {
                    Ok(number) => number,
                    Err(_) => unreachable!("{} fits in a Number", value),
                }
            }
        }
    )*};
}

from_unsigned!(u8, u16, u32, u64, usize);
from_signed!(i8, i16, i32, i64, isize);

impl TryFrom<u128> for Number {
    type Error = ValueError;

    fn try_from(value: u128) -> Result<Self, Self::Error> {
        Number::from_parts(false, value, 0).map_err(|error| error.into_value_error(""))
    }
}

impl TryFrom<i128> for Number {
    type Error = ValueError;

    fn try_from(value: i128) -> Result<Self, Self::Error> {
        Number::from_parts(value < 0, value.unsigned_abs(), 0)
            .map_err(|error| error.into_value_error(""))
    }
}

macro_rules! from_float {
    ($($t:ty),*) => {$(
        impl TryFrom<$t> for Number {
            type Error = ValueError;

            /// The shortest decimal that round-trips to `value`; NaN and
            /// infinities are not numbers in DynamoDB.
            fn try_from(value: $t) -> Result<Self, Self::Error> {
                if !value.is_finite() {
                    return Err(NumberError::Malformed.into_value_error(&value.to_string()));
                }
                // `{:e}` prints the shortest round-tripping digits.
                format!("{value:e}").parse()
            }
        }
    )*};
}

from_float!(f32, f64);
