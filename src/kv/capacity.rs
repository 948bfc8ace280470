//! Capacity units as DynamoDB charges them: a read unit per 4 KB read
//! (half for eventually consistent reads), a write unit per 1 KB written,
//! rounded up per item, at least one; transactions cost double.

use super::request::{ConsumedCapacity, ReturnConsumedCapacity};

/// Bytes per read capacity unit.
pub const READ_UNIT_BYTES: usize = 4 * 1024;
/// Bytes per write capacity unit.
pub const WRITE_UNIT_BYTES: usize = 1024;

/// Read units for reading one item (or one page) of `bytes`.
pub(crate) fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(READ_UNIT_BYTES).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// Write units for writing an item whose larger image is `bytes`.
pub(crate) fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(WRITE_UNIT_BYTES).max(1) as f64
}

/// The report for a request, if it asked for one.
pub(crate) fn report(
    wanted: ReturnConsumedCapacity,
    table: &str,
    read: f64,
    write: f64,
) -> Option<ConsumedCapacity> {
    (wanted != ReturnConsumedCapacity::None).then(|| ConsumedCapacity {
        table_name: table.to_owned(),
        capacity_units: read + write,
        read_capacity_units: read,
        write_capacity_units: write,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_round_up_per_item_and_halve_for_eventual_reads() {
        assert_eq!(write_units(0), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(4097, false), 1.0);
    }
}
