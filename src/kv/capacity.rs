//! Capacity units as DynamoDB charges them: a read unit per 4 KB read
//! (half for eventually consistent reads), a write unit per 1 KB written,
//! rounded up per item, at least one; transactions cost double.

use super::request::{Capacity, ConsumedCapacity, ReturnConsumedCapacity};
use crate::index::IndexKind;

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

/// The report for a request on a table alone, if it asked for one.
pub(crate) fn report(
    wanted: ReturnConsumedCapacity,
    table: &str,
    read: f64,
    write: f64,
) -> Option<ConsumedCapacity> {
    report_with_indexes(wanted, table, (read, write), [])
}

/// One index's share of a request: kind, name, read and write units.
pub(crate) type IndexUnits<'a> = (IndexKind, &'a str, f64, f64);

/// The report for a request that also read or wrote indexes: the total
/// covers the table and every index; `Indexes` breaks it down.
pub(crate) fn report_with_indexes<'a>(
    wanted: ReturnConsumedCapacity,
    table: &str,
    (read, write): (f64, f64),
    indexes: impl IntoIterator<Item = IndexUnits<'a>>,
) -> Option<ConsumedCapacity> {
    if wanted == ReturnConsumedCapacity::None {
        return None;
    }
    let mut report = ConsumedCapacity {
        table_name: table.to_owned(),
        ..ConsumedCapacity::default()
    };
    let (mut total_read, mut total_write) = (read, write);
    for (kind, name, index_read, index_write) in indexes {
        total_read += index_read;
        total_write += index_write;
        let map = match kind {
            IndexKind::Local => &mut report.local_secondary_indexes,
            IndexKind::Global => &mut report.global_secondary_indexes,
        };
        let entry = map.entry(name.to_owned()).or_default();
        *entry = Capacity::new(
            entry.read_capacity_units + index_read,
            entry.write_capacity_units + index_write,
        );
    }
    report.capacity_units = total_read + total_write;
    report.read_capacity_units = total_read;
    report.write_capacity_units = total_write;
    if wanted == ReturnConsumedCapacity::Indexes {
        report.table = Some(Capacity::new(read, write));
    } else {
        report.local_secondary_indexes.clear();
        report.global_secondary_indexes.clear();
    }
    Some(report)
}

/// The capacity a multi-item request (BatchWriteItem, TransactWriteItems)
/// consumed, gathered per table and per index in the order tables first
/// appear.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    tables: Vec<TableTally>,
}

#[derive(Debug)]
struct TableTally {
    table: String,
    read: f64,
    write: f64,
    indexes: Vec<(IndexKind, String, f64, f64)>,
}

impl Tally {
    /// Adds units consumed on `table` and its indexes.
    pub(crate) fn add<'a>(
        &mut self,
        table: &str,
        (read, write): (f64, f64),
        indexes: impl IntoIterator<Item = IndexUnits<'a>>,
    ) {
        let at = match self.tables.iter().position(|t| t.table == table) {
            Some(at) => at,
            None => {
                self.tables.push(TableTally {
                    table: table.to_owned(),
                    read: 0.0,
                    write: 0.0,
                    indexes: Vec::new(),
                });
                self.tables.len() - 1
            }
        };
        let entry = &mut self.tables[at];
        entry.read += read;
        entry.write += write;
        for (kind, name, index_read, index_write) in indexes {
            match entry
                .indexes
                .iter_mut()
                .find(|i| i.0 == kind && i.1 == name)
            {
                Some(index) => {
                    index.2 += index_read;
                    index.3 += index_write;
                }
                None => entry
                    .indexes
                    .push((kind, name.to_owned(), index_read, index_write)),
            }
        }
    }

    /// One report per table, if the request asked for them.
    pub(crate) fn report(&self, wanted: ReturnConsumedCapacity) -> Vec<ConsumedCapacity> {
        self.tables
            .iter()
            .filter_map(|t| {
                let indexes = t
                    .indexes
                    .iter()
                    .map(|(kind, name, read, write)| (*kind, name.as_str(), *read, *write));
                report_with_indexes(wanted, &t.table, (t.read, t.write), indexes)
            })
            .collect()
    }
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

    #[test]
    fn a_tally_sums_per_table_and_index() {
        let mut tally = Tally::default();
        tally.add("A", (0.0, 2.0), [(IndexKind::Global, "G", 0.0, 1.0)]);
        tally.add("B", (0.0, 1.0), []);
        tally.add("A", (0.0, 2.0), [(IndexKind::Global, "G", 0.0, 2.0)]);
        assert!(tally.report(ReturnConsumedCapacity::None).is_empty());
        let reports = tally.report(ReturnConsumedCapacity::Indexes);
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0].table_name, "A");
        assert_eq!(reports[0].capacity_units, 7.0);
        assert_eq!(reports[0].table, Some(Capacity::new(0.0, 4.0)));
        assert_eq!(
            reports[0].global_secondary_indexes["G"],
            Capacity::new(0.0, 3.0)
        );
        assert_eq!(reports[1].capacity_units, 1.0);
        let total = tally.report(ReturnConsumedCapacity::Total);
        assert!(total[0].global_secondary_indexes.is_empty() && total[0].table.is_none());
    }
}
