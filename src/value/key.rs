//! The order-preserving, self-delimiting encoding of key values (S, N, B).
//!
//! Rows are stored under `keyspace | token | partition key | sort key`, so
//! the encoding must satisfy, for values `a`, `b` of one key type:
//! - `a < b` in DynamoDB's order  ⇔  `encode(a) < encode(b)` bytewise;
//! - no encoding is a prefix of another, so a concatenation of encodings
//!   sorts by its first component, then its second;
//! - `decode(encode(a)) == a`, and decoding reports where the value ended.
//!
//! Formats (see docs/format.md):
//! - **S and B**: the bytes with `0x00` escaped as `0x00 0xFF`, then the
//!   terminator `0x00 0x01`. Escaped zeros sort above the terminator, so a
//!   value sorts before every value it is a proper prefix of.
//! - **N**: a sign byte (`0x01` negative, `0x02` zero, `0x03` positive);
//!   zero ends there. Otherwise the leading digit's exponent + 130 as one
//!   byte (range −130..=125 is exactly 256 values), then the significant
//!   digits in pairs (the last padded with a 0), each pair `p` as the byte
//!   `p + 1`, then the terminator `0x00`. Negative numbers store the
//!   exponent byte as `255 − byte`, each pair as `254 − p` and the
//!   terminator as `0xFF`, which inverts their order.

use super::number::MIN_LEADING_EXPONENT;
use super::{AttributeValue, Number, ScalarType, ValueError};

const NEGATIVE: u8 = 0x01;
const ZERO: u8 = 0x02;
const POSITIVE: u8 = 0x03;
const ESCAPE: u8 = 0x00;
const ESCAPED_ZERO: u8 = 0xFF;
const BYTES_TERMINATOR: u8 = 0x01;
const POSITIVE_TERMINATOR: u8 = 0x00;
const NEGATIVE_TERMINATOR: u8 = 0xFF;

/// The longest encoding of a number: sign, exponent, 19 pairs, terminator.
pub const MAX_ENCODED_NUMBER_BYTES: usize = 22;

/// Appends the encoding of a key value to `out`.
///
/// Fails if `value` is not of a key type (S, N or B).
pub fn encode_key_value(value: &AttributeValue, out: &mut Vec<u8>) -> Result<(), ValueError> {
    match value {
        AttributeValue::S(s) => encode_bytes(s.as_bytes(), out),
        AttributeValue::B(b) => encode_bytes(b, out),
        AttributeValue::N(n) => encode_number(n, out),
        other => {
            return Err(ValueError::invalid_parameter(format!(
                "Key attributes must be of type S, N or B, not {}",
                other.attribute_type()
            )));
        }
    }
    Ok(())
}

/// Decodes one key value of type `key_type` from the front of `input`,
/// returning it and the number of bytes it occupied.
pub fn decode_key_value(
    key_type: ScalarType,
    input: &[u8],
) -> Result<(AttributeValue, usize), ValueError> {
    match key_type {
        ScalarType::S => {
            let (bytes, used) = decode_bytes(input)?;
            let text = String::from_utf8(bytes)
                .map_err(|_| ValueError::Decode("encoded string key is not UTF-8".into()))?;
            Ok((AttributeValue::S(text), used))
        }
        ScalarType::B => {
            let (bytes, used) = decode_bytes(input)?;
            Ok((AttributeValue::B(bytes), used))
        }
        ScalarType::N => {
            let (number, used) = decode_number(input)?;
            Ok((AttributeValue::N(number), used))
        }
    }
}

fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() + 2);
    for &byte in bytes {
        out.push(byte);
        if byte == ESCAPE {
            out.push(ESCAPED_ZERO);
        }
    }
    out.extend_from_slice(&[ESCAPE, BYTES_TERMINATOR]);
}

fn decode_bytes(input: &[u8]) -> Result<(Vec<u8>, usize), ValueError> {
    let mut decoded = Vec::new();
    let mut position = 0;
    loop {
        // Copy the run up to the next escape byte in one go.
        let rest = input.get(position..).unwrap_or_default();
        let Some(run) = rest.iter().position(|&byte| byte == ESCAPE) else {
            return Err(truncated());
        };
        decoded.extend_from_slice(&rest[..run]);
        position += run + 1;
        match input.get(position) {
            Some(&ESCAPED_ZERO) => decoded.push(ESCAPE),
            Some(&BYTES_TERMINATOR) => return Ok((decoded, position + 1)),
            Some(other) => {
                return Err(ValueError::Decode(format!(
                    "invalid escape 0x00 0x{other:02x} in an encoded key"
                )));
            }
            None => return Err(truncated()),
        }
        position += 1;
    }
}

/// Appends the encoding of a number.
pub fn encode_number(number: &Number, out: &mut Vec<u8>) {
    let Some(leading_exponent) = number.leading_exponent() else {
        out.push(ZERO);
        return;
    };
    let negative = number.is_negative();
    out.push(if negative { NEGATIVE } else { POSITIVE });
    let exponent_byte = u8::try_from(leading_exponent - MIN_LEADING_EXPONENT)
        .unwrap_or_else(|_| unreachable!("a Number's exponent is within DynamoDB's range"));
    out.push(if negative {
        u8::MAX - exponent_byte
    } else {
        exponent_byte
    });
    let digits = number.digits();
    let mut pairs = digits.as_bytes().chunks(2);
    for pair in pairs.by_ref() {
        let tens = pair[0] - b'0';
        let units = pair.get(1).map_or(0, |digit| digit - b'0');
        let value = tens * 10 + units;
        out.push(if negative { 254 - value } else { value + 1 });
    }
    out.push(if negative {
        NEGATIVE_TERMINATOR
    } else {
        POSITIVE_TERMINATOR
    });
}

pub(crate) fn decode_number(input: &[u8]) -> Result<(Number, usize), ValueError> {
    let negative = match input.first() {
        Some(&ZERO) => return Ok((Number::ZERO, 1)),
        Some(&NEGATIVE) => true,
        Some(&POSITIVE) => false,
        Some(other) => {
            return Err(ValueError::Decode(format!(
                "invalid number sign byte 0x{other:02x}"
            )));
        }
        None => return Err(truncated()),
    };
    let exponent_byte = *input.get(1).ok_or_else(truncated)?;
    let exponent_byte = if negative {
        u8::MAX - exponent_byte
    } else {
        exponent_byte
    };
    let leading_exponent = i64::from(exponent_byte) + i64::from(MIN_LEADING_EXPONENT);
    let terminator = if negative {
        NEGATIVE_TERMINATOR
    } else {
        POSITIVE_TERMINATOR
    };

    let mut significand: u128 = 0;
    let mut digits: i64 = 0;
    let mut last_pair = 0;
    let mut position = 2;
    loop {
        let byte = *input.get(position).ok_or_else(truncated)?;
        position += 1;
        if byte == terminator {
            break;
        }
        let pair = if negative {
            254u8.checked_sub(byte)
        } else {
            byte.checked_sub(1)
        }
        .filter(|pair| *pair < 100)
        .ok_or_else(|| ValueError::Decode(format!("invalid digit pair byte 0x{byte:02x}")))?;
        if digits >= 38 {
            return Err(ValueError::Decode(
                "encoded number has too many digits".into(),
            ));
        }
        if digits == 0 && pair < 10 {
            // Only the canonical encoding decodes: a leading zero digit, or a
            // trailing zero pair, would spell a number a second way and break
            // the uniqueness byte order relies on.
            return Err(not_canonical());
        }
        significand = significand * 100 + u128::from(pair);
        digits += 2;
        last_pair = pair;
    }
    if digits == 0 || last_pair == 0 {
        return Err(not_canonical());
    }
    let exponent = leading_exponent - digits + 1;
    let number = Number::from_parts(negative, significand, exponent)
        .map_err(|_| ValueError::Decode("encoded number is out of range".into()))?;
    Ok((number, position))
}

fn not_canonical() -> ValueError {
    ValueError::Decode("encoded number is not canonical".into())
}

fn truncated() -> ValueError {
    ValueError::Decode("encoded key value is truncated".into())
}
