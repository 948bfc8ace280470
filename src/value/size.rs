//! Item size exactly as DynamoDB counts it for the 400 KB limit and for
//! capacity units.
//!
//! An item's size is the sum, over its attributes, of the name's UTF-8
//! length and the value's size:
//! - S: UTF-8 length; B: raw length (not base64); BOOL and NULL: 1;
//! - N: 1 byte of exponent, one byte per pair of significant digits (pairs
//!   aligned to even powers of ten), and one more for negatives — the
//!   empirically exact formula dynalite found against DynamoDB; zero is 1;
//! - SS, NS, BS: the sum of the elements' sizes;
//! - L: 3 + for each element (1 + its size);
//! - M: 3 + for each entry (1 + name length + value size).

use super::{AttributeValue, Item, Number};

/// The size DynamoDB counts for a number.
pub fn number_size(number: &Number) -> usize {
    let Some(leading_exponent) = number.leading_exponent() else {
        return 1;
    };
    let digits = number.significant_digits() as usize;
    let aligned_pair_padding = usize::from(digits.is_multiple_of(2) && leading_exponent % 2 == 0);
    1 + digits.div_ceil(2) + aligned_pair_padding + usize::from(number.is_negative())
}

/// The size DynamoDB counts for a value (without its attribute name).
pub fn attribute_value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.len(),
        AttributeValue::Bool(_) | AttributeValue::Null => 1,
        AttributeValue::L(list) => {
            3 + list
                .iter()
                .map(|element| 1 + attribute_value_size(element))
                .sum::<usize>()
        }
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(name, element)| 1 + name.len() + attribute_value_size(element))
                .sum::<usize>()
        }
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(number_size).sum(),
        AttributeValue::Bs(set) => set.iter().map(Vec::len).sum(),
    }
}

/// The size DynamoDB counts for an item.
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + attribute_value_size(value))
        .sum()
}
