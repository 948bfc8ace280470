//! Parses arbitrary bytes as every kind of DynamoDB expression and
//! evaluates or applies whatever parses to a fixed item. No input may
//! panic; a failed update must leave the item unchanged, and a parsed
//! expression must print back to text that parses to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nimbus::kv::expr::fuzz_expression(data);
});
