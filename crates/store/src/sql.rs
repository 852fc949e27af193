//! Building blocks of the SQL both backends share: numbered placeholders and
//! the sizes statements are cut into.

/// Parameters per `IN (…)` list.
pub(crate) const IN_CHUNK: usize = 500;

/// Rows per multi-row INSERT through sqlx: its cost per statement grows
/// faster than the statement, and about 20 rows was the fastest.
pub(crate) const INSERT_ROWS: usize = 20;

/// `$start, $start+1, …` (`n` placeholders).
pub(crate) fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, …, $k), ($k+1, …), …`: the VALUES of `rows` rows of `columns` each.
pub(crate) fn value_rows(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(r * columns + 1, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_rows_number_every_parameter_once() {
        assert_eq!(placeholders(3, 2), "$3, $4");
        assert_eq!(value_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
}
