//! Building blocks of the SQL both backends share: placeholders, multi-row
//! INSERTs, and the sizes statements are cut into.

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

/// How a statement names its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Params {
    /// `$1, $2, …`: sqlx, on both backends.
    Numbered,
    /// `?, ?, …`: rusqlite, bound by position (SQLite's batch writer).
    Anonymous,
}

/// `INSERT INTO {table} ({columns}) VALUES (…), … {tail}` for `rows` rows:
/// the one place a table's column list becomes a statement, for the sqlx
/// path and SQLite's batch writer alike.
pub(crate) fn multi_row_insert(
    table: &str,
    columns: &[&str],
    rows: usize,
    tail: &str,
    params: Params,
) -> String {
    let values = match params {
        Params::Numbered => value_rows(rows, columns.len()),
        Params::Anonymous => {
            let one = format!("({})", vec!["?"; columns.len()].join(", "));
            vec![one; rows].join(", ")
        }
    };
    format!(
        "INSERT INTO {table} ({}) VALUES {values} {tail}",
        columns.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_rows_number_every_parameter_once() {
        assert_eq!(placeholders(3, 2), "$3, $4");
        assert_eq!(value_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }

    #[test]
    fn both_writers_get_the_same_columns_with_their_own_placeholders() {
        let cols = ["id", "name"];
        assert_eq!(
            multi_row_insert(
                "t",
                &cols,
                2,
                "ON CONFLICT (id) DO NOTHING",
                Params::Numbered
            ),
            "INSERT INTO t (id, name) VALUES ($1, $2), ($3, $4) ON CONFLICT (id) DO NOTHING"
        );
        assert_eq!(
            multi_row_insert("t", &cols, 2, "", Params::Anonymous),
            "INSERT INTO t (id, name) VALUES (?, ?), (?, ?) "
        );
    }
}
