//! The local terminal: raw mode for `-t` (restored on drop) and its size.

use std::os::fd::AsFd;

use rustix::termios::{self, OptionalActions, Termios};

/// True when stdin is a terminal.
pub fn stdin_is_tty() -> bool {
    termios::isatty(std::io::stdin().as_fd())
}

/// True when stdout is a terminal.
pub fn stdout_is_tty() -> bool {
    termios::isatty(std::io::stdout().as_fd())
}

/// (rows, cols) of the terminal on stdout (or stdin), if any.
pub fn size() -> Option<(u16, u16)> {
    let ws = termios::tcgetwinsize(std::io::stdout().as_fd())
        .or_else(|_| termios::tcgetwinsize(std::io::stdin().as_fd()))
        .ok()?;
    if ws.ws_row == 0 || ws.ws_col == 0 {
        return None;
    }
    Some((ws.ws_row, ws.ws_col))
}

/// Reads a line from the terminal on stdin with echo off (a password prompt); echo is
/// restored before returning, and a newline is printed in place of the hidden input.
pub fn read_secret_line() -> std::io::Result<String> {
    use std::io::BufRead;
    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(stdin.as_fd()).map_err(std::io::Error::from)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(termios::LocalModes::ECHO);
    termios::tcsetattr(stdin.as_fd(), OptionalActions::Now, &quiet)
        .map_err(std::io::Error::from)?;
    let mut line = String::new();
    let res = stdin.lock().read_line(&mut line);
    let _ = termios::tcsetattr(stdin.as_fd(), OptionalActions::Now, &saved);
    println!();
    res.map(|_| line)
}

/// Puts stdin in raw mode until dropped.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    pub fn enable() -> Option<RawMode> {
        let fd = std::io::stdin();
        let saved = termios::tcgetattr(fd.as_fd()).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(fd.as_fd(), OptionalActions::Now, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), OptionalActions::Now, &self.saved);
    }
}
