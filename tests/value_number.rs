//! DynamoDB number rules: canonical form, precision, range, ordering and
//! arithmetic.

// A test fails by panicking; unwrapping an unexpected error is how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use nimbus::{Number, ValueError};
use proptest::prelude::*;

fn n(text: &str) -> Number {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

fn message(text: &str) -> String {
    match text.parse::<Number>() {
        Ok(number) => panic!("{text:?} should be rejected, parsed as {number}"),
        Err(error) => error.message().to_owned(),
    }
}

#[test]
fn equal_spellings_are_one_canonical_number() {
    for spelling in [
        "1e3", "1000", "1000.0", "01000", "1E3", "1e+3", "10e2", "0.1e4", "+1000",
    ] {
        assert_eq!(n(spelling), n("1000"), "{spelling}");
        assert_eq!(n(spelling).to_string(), "1000", "{spelling}");
    }
}

#[test]
fn canonical_text_matches_dynamodb() {
    let cases = [
        ("007", "7"),
        ("+3", "3"),
        ("1.10", "1.1"),
        ("1e-3", "0.001"),
        ("-0", "0"),
        ("-0.000", "0"),
        (".5", "0.5"),
        ("5.", "5"),
        ("-12.50e1", "-125"),
        ("123.456", "123.456"),
        ("0.000120", "0.00012"),
        ("-1E-130", &format!("-0.{}1", "0".repeat(129))),
        ("1e125", &format!("1{}", "0".repeat(125))),
    ];
    for (input, canonical) in cases {
        assert_eq!(n(input).to_string(), canonical, "{input}");
        assert_eq!(n(canonical), n(input), "{canonical} parses back");
    }
}

#[test]
fn negative_zero_is_zero() {
    assert_eq!(n("-0"), Number::ZERO);
    assert!(!n("-0").is_negative());
    assert_eq!(n("-0").to_string(), "0");
}

#[test]
fn thirty_eight_digits_are_allowed_and_thirty_nine_are_not() {
    let max = "9".repeat(38);
    assert_eq!(n(&max).to_string(), max);
    assert_eq!(
        message(&"9".repeat(39)),
        "Attempting to store more than 38 significant digits in a Number"
    );
    // Zeros that are not significant do not count.
    let padded = format!("000{}000.000", "1".repeat(38));
    assert_eq!(n(&padded).significant_digits(), 38);
    assert_eq!(
        message(&format!("1{}1", "0".repeat(37))),
        "Attempting to store more than 38 significant digits in a Number"
    );
}

#[test]
fn range_limits_are_enforced_without_rounding() {
    let largest = format!("9.{}E+125", "9".repeat(37));
    assert_eq!(n(&largest).significant_digits(), 38);
    assert_eq!(n("1E-130").leading_exponent(), Some(-130));
    assert_eq!(n("-1E-130").leading_exponent(), Some(-130));
    let overflow =
        "Number overflow. Attempting to store a number with magnitude larger than supported range";
    let underflow = "Number underflow. Attempting to store a number with magnitude smaller than supported range";
    assert_eq!(message("1E126"), overflow);
    assert_eq!(message("-1E126"), overflow);
    assert_eq!(message("10E125"), overflow);
    assert_eq!(message("1E-131"), underflow);
    assert_eq!(message("0.1E-130"), underflow);
    assert_eq!(message("-9.9E-131"), underflow);
    // Zero is zero whatever its exponent.
    assert_eq!(n("0.0e126"), Number::ZERO);
    assert_eq!(n("0e-999"), Number::ZERO);
}

#[test]
fn malformed_numbers_are_rejected_with_the_input_echoed() {
    for input in [
        "abc",
        "NaN",
        "Infinity",
        "-Infinity",
        " 1",
        "1 ",
        "1e",
        "1e+",
        "--1",
        "1.2.3",
        ".",
        "-",
        "0x10",
        "1_000",
        "1,5",
        "e5",
        "+-1",
    ] {
        assert_eq!(
            message(input),
            format!("The parameter cannot be converted to a numeric value: {input}"),
            "{input:?}"
        );
    }
    assert_eq!(
        message(""),
        "The parameter cannot be converted to a numeric value"
    );
    // DynamoDB reads the exponent as a 32-bit integer.
    assert_eq!(
        message("1e99999999999"),
        "The parameter cannot be converted to a numeric value: 1e99999999999"
    );
}

#[test]
fn huge_inputs_fail_fast_without_overflow() {
    let many_zeros = format!("1{}", "0".repeat(100_000));
    assert!(matches!(
        many_zeros.parse::<Number>(),
        Err(ValueError::Validation(_))
    ));
    let tiny = format!("0.{}1", "0".repeat(100_000));
    assert!(tiny.parse::<Number>().is_err());
    assert!("1e-2147483647".parse::<Number>().is_err());
}

#[test]
fn order_is_numeric() {
    let ascending = [
        "-1e125", "-100", "-99.5", "-1", "-0.5", "-1e-130", "0", "1e-130", "0.001", "0.5", "1",
        "1.05", "1.5", "1.55", "2", "10", "99.99", "100", "1e125",
    ];
    for pair in ascending.windows(2) {
        assert!(n(pair[0]) < n(pair[1]), "{} < {}", pair[0], pair[1]);
    }
}

#[test]
fn addition_and_subtraction_are_exact() {
    assert_eq!(n("0.1").checked_add(&n("0.2")).unwrap(), n("0.3"));
    assert_eq!(n("1").checked_sub(&n("1")).unwrap(), Number::ZERO);
    assert_eq!(n("-5").checked_add(&n("3")).unwrap(), n("-2"));
    assert_eq!(n("1e125").checked_sub(&n("1e125")).unwrap(), Number::ZERO);
    let near = format!("{}e2", "9".repeat(38));
    assert_eq!(n("1e40").checked_sub(&n(&near)).unwrap(), n("100"));
    assert_eq!(n(&"9".repeat(37)).checked_add(&n("1")).unwrap(), n("1e37"));
}

#[test]
fn arithmetic_beyond_the_limits_fails_with_dynamodbs_message() {
    let overflow =
        "Number overflow. Attempting to store a number with magnitude larger than supported range";
    let error = n("9e125").checked_add(&n("9e125")).unwrap_err();
    assert_eq!(error.message(), overflow);
    // DynamoDB reports a result needing more than 38 digits as an overflow too.
    let error = n("1e50").checked_add(&n("1")).unwrap_err();
    assert_eq!(error.message(), overflow);
    let error = n("1e125").checked_add(&n("1e-130")).unwrap_err();
    assert_eq!(error.message(), overflow);
    let underflow = n("2e-130").checked_sub(&n("1.5e-130")).unwrap_err();
    assert!(underflow.message().starts_with("Number underflow"));
}

#[test]
fn conversions_from_rust_numbers() {
    assert_eq!(Number::from(i64::MIN).to_string(), i64::MIN.to_string());
    assert_eq!(Number::from(u64::MAX).to_string(), u64::MAX.to_string());
    assert_eq!(Number::from(i64::MIN).to_i64(), Some(i64::MIN));
    assert_eq!(Number::from(u64::MAX).to_u64(), Some(u64::MAX));
    assert_eq!(n("1.5").to_i64(), None);
    assert_eq!(n("1e30").to_i64(), None);
    assert_eq!(n("-1").to_u64(), None);
    assert_eq!(Number::try_from(0.1f64).unwrap(), n("0.1"));
    assert_eq!(Number::try_from(-2.5e-7f64).unwrap(), n("-0.00000025"));
    assert!(Number::try_from(f64::NAN).is_err());
    assert!(Number::try_from(f64::INFINITY).is_err());
    assert!(Number::try_from(1e300f64).is_err());
    assert_eq!(n("0.1").to_f64(), 0.1);
    assert!(Number::try_from(u128::MAX).is_err());
    assert_eq!(Number::try_from(10u128.pow(37)).unwrap(), n("1e37"));
}

#[test]
fn scientific_text_parses_back() {
    for text in ["1", "-1.5", "1e125", "-1e-130", "123.456", "0"] {
        assert_eq!(n(&n(text).to_scientific()), n(text), "{text}");
    }
}

/// A random valid number: up to 38 digits, any sign, any exponent in range.
pub fn any_number() -> impl Strategy<Value = Number> {
    (any::<bool>(), 1u32..=38, any::<u128>(), -130i32..=125).prop_filter_map(
        "in range",
        |(negative, digits, raw, leading)| {
            let significand = raw % 10u128.pow(digits);
            let text = format!(
                "{}{}e{}",
                if negative { "-" } else { "" },
                significand,
                leading - digits as i32 + 1
            );
            text.parse().ok()
        },
    )
}

proptest! {
    #[test]
    fn display_parses_back_to_the_same_number(number in any_number()) {
        let text = number.to_string();
        prop_assert_eq!(text.parse::<Number>().unwrap(), number);
    }

    #[test]
    fn order_agrees_with_subtraction(a in any_number(), b in any_number()) {
        if let Ok(difference) = a.checked_sub(&b) {
            prop_assert_eq!(a.cmp(&b), difference.cmp(&Number::ZERO));
        }
    }

    #[test]
    fn order_agrees_with_f64_when_far_apart(a in any_number(), b in any_number()) {
        let (x, y) = (a.to_f64(), b.to_f64());
        if x < y * (1.0 - 1e-9) && x.is_finite() && y.is_finite() && y > 0.0 {
            prop_assert!(a < b);
        }
    }

    #[test]
    fn add_then_subtract_is_identity(a in any_number(), b in any_number()) {
        if let Ok(sum) = a.checked_add(&b) {
            prop_assert_eq!(sum.checked_sub(&b).unwrap(), a);
        }
    }

    #[test]
    fn parse_never_panics(text in "[-+0-9.eE ]{0,60}") {
        let _ = text.parse::<Number>();
    }
}
