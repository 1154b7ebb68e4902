//! Docker's table output: Go's `tabwriter` with min width 10, tab width 1, padding 3, spaces.
//! A cell is padded to its column's widest cell + 3 (at least 10); the last cell of each
//! row is not padded (so a row whose last cell is empty ends in spaces, as docker's do).

/// Formats rows (the header is the first row).
pub fn render(rows: &[Vec<String>]) -> String {
    render_min(rows, 10)
}

/// [`render`] with another minimum cell width (`docker top` uses 20).
pub fn render_min(rows: &[Vec<String>], min_width: usize) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                widths[i] = widths[i].max(c.chars().count() + 3).max(min_width);
            }
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                let pad = widths[i] - c.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        // Not trimmed: a cell before an empty last cell keeps its padding, as in Go.
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Prints rows to stdout.
pub fn print(rows: &[Vec<String>]) {
    print!("{}", render(rows));
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_go_tabwriter() {
        let rows = vec![
            vec!["CONTAINER ID".to_string(), "IMAGE".into(), "NAMES".into()],
            vec!["0123456789ab".to_string(), "busybox".into(), "web".into()],
        ];
        assert_eq!(
            super::render(&rows),
            "CONTAINER ID   IMAGE     NAMES\n0123456789ab   busybox   web\n"
        );
        let rows = vec![
            vec!["SIZE".to_string(), "COMMENT".into()],
            vec!["0B".to_string(), String::new()],
        ];
        assert_eq!(super::render(&rows), "SIZE      COMMENT\n0B        \n");
    }
}
