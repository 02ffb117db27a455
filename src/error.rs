//! The library's error type: every failure names the node path, and the line and column where known.

use std::io;

/// A failure that stops planning. Nothing is ever written when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read (missing, unreadable, not a regular file...).
    #[error("{path}: {cause}")]
    Io { path: String, cause: io::Error },
    /// The file exists but is not something the kubelet or systemd would accept.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A path could not be resolved inside `--root` (loop, escape attempt, special file).
    #[error("{path}: {message}")]
    Resolve { path: String, message: String },
    /// No unit for the kubelet was found in any systemd search directory. `also`: the other
    /// names tried when none was given with `--unit` (empty when one was).
    /// (Boxed: the error stays small, and the YAML reader's recursion carries it at every
    /// level.)
    #[error("{0}")]
    NoUnit(Box<NoUnit>),
    /// The layout is understood but cannot be evaluated (masked unit, no ExecStart...).
    #[error("{0}")]
    Unsupported(String),
}

impl Error {
    pub fn io(path: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause: source,
        }
    }

    pub fn parse(path: &str, line: usize, column: usize, message: impl Into<String>) -> Self {
        Error::Parse {
            path: path.to_string(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// No unit of that name in the directories searched.
#[derive(Debug)]
pub struct NoUnit {
    pub unit: String,
    pub searched: Vec<String>,
    pub also: Vec<String>,
}

impl std::fmt::Display for NoUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = &self.unit;
        if self.searched.is_empty() {
            return write!(
                f,
                "no unit {unit} found: none of systemd's unit directories exists under the root; is --root the node's file system?"
            );
        }
        let dirs = self.searched.join(", ");
        if self.also.is_empty() {
            write!(
                f,
                "no unit {unit} found (looked in {dirs}): check the name given with --unit"
            )
        } else {
            write!(
                f,
                "no kubelet unit found (looked for {unit}, {} in {dirs}); pass --unit if the kubelet runs under another name",
                self.also.join(", ")
            )
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
