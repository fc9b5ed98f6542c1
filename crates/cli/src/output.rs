//! Standard output, as Unix tools write it: a reader that goes away (`tarem … | head`) ends the
//! command quietly instead of a panic; counts read as English.

use std::io::Write;

/// Writes one line to standard output. A closed pipe ends the process with success: the reader
/// has what it wanted. Any other write failure ends it with the problems code.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{args}").and_then(|()| stdout.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("tarem: cannot write to standard output: {error}");
        std::process::exit(1);
    }
}

/// `println!` for the CLI: see [`line`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}

/// "1 mapping", "2 mappings", "0 mappings".
pub fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// A progress line on standard error, only when it is a terminal (never in a pipe or a log).
pub fn progress(message: &str) {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K{message}");
    }
}

/// Clears the progress line.
pub fn progress_done() {
    progress("");
}

/// Rows under a header, each column as wide as its widest cell (the last one left ragged).
pub fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if i == last {
                    cell.to_string()
                } else {
                    format!("{cell:<width$}", width = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    std::iter::once(line(header.to_vec()))
        .chain(
            rows.iter()
                .map(|row| line(row.iter().map(String::as_str).collect())),
        )
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_read_as_english() {
        assert_eq!(super::plural(1, "mapping"), "1 mapping");
        assert_eq!(super::plural(0, "mapping"), "0 mappings");
        assert_eq!(super::plural(3, "message"), "3 messages");
    }
}
