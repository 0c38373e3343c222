//! Reading messages from what a user points at: `.eml` files, mbox files, Maildir folders,
//! directories of them, or `-` for standard input.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// One message read from an input.
#[derive(Debug, Clone)]
pub struct Item {
    /// The file it came from (`-` for standard input).
    pub path: String,
    /// Position in an mbox (0-based); `None` for a single-message file.
    pub index: Option<usize>,
    pub raw: Vec<u8>,
}

/// An input that could not be read, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source} (check the path and its permissions)")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path}: larger than the {limit}-byte limit for one message; raise --max-message-bytes to scan it"
    )]
    TooLarge { path: String, limit: usize },
}

/// Messages from `paths` in order. Directories are walked in name order; a directory with
/// `cur/` and `new/` is read as a Maildir.
pub struct Messages {
    /// What is left to visit, last first.
    pending: Vec<Source>,
    max_message_bytes: usize,
}

enum Source {
    Path(PathBuf),
    Stdin,
    Mbox {
        path: String,
        next_index: usize,
        reader: Box<dyn BufRead>,
    },
}

impl Messages {
    pub fn new(paths: &[PathBuf], max_message_bytes: usize) -> Self {
        let pending = paths
            .iter()
            .rev()
            .map(|p| {
                if p.as_os_str() == "-" {
                    Source::Stdin
                } else {
                    Source::Path(p.clone())
                }
            })
            .collect();
        Messages {
            pending,
            max_message_bytes,
        }
    }

    fn open_stream(
        &mut self,
        path: String,
        reader: Box<dyn BufRead>,
    ) -> Option<Result<Item, InputError>> {
        let mut reader = reader;
        let is_mbox = match reader.fill_buf() {
            Ok(buf) => buf.starts_with(b"From "),
            Err(source) => return Some(Err(InputError::Io { path, source })),
        };
        if is_mbox {
            self.pending.push(Source::Mbox {
                path,
                next_index: 0,
                reader,
            });
            return self.next();
        }
        let mut raw = Vec::new();
        let limit = self.max_message_bytes;
        match reader.take(limit as u64 + 1).read_to_end(&mut raw) {
            Ok(_) if raw.len() > limit => Some(Err(InputError::TooLarge { path, limit })),
            Ok(_) => Some(Ok(Item {
                path,
                index: None,
                raw,
            })),
            Err(source) => Some(Err(InputError::Io { path, source })),
        }
    }
}

impl Iterator for Messages {
    type Item = Result<Item, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        let source = self.pending.pop()?;
        match source {
            Source::Stdin => {
                let reader: Box<dyn BufRead> = Box::new(BufReader::new(io::stdin()));
                self.open_stream("-".to_string(), reader)
            }
            Source::Path(path) => {
                let shown = path.display().to_string();
                let meta = match std::fs::metadata(&path) {
                    Ok(m) => m,
                    Err(source) => {
                        return Some(Err(InputError::Io {
                            path: shown,
                            source,
                        }));
                    }
                };
                if meta.is_dir() {
                    match dir_entries(&path) {
                        Ok(entries) => {
                            self.pending
                                .extend(entries.into_iter().rev().map(Source::Path));
                            self.next()
                        }
                        Err(source) => Some(Err(InputError::Io {
                            path: shown,
                            source,
                        })),
                    }
                } else {
                    match File::open(&path) {
                        Ok(f) => self.open_stream(shown, Box::new(BufReader::new(f))),
                        Err(source) => Some(Err(InputError::Io {
                            path: shown,
                            source,
                        })),
                    }
                }
            }
            Source::Mbox {
                path,
                next_index,
                mut reader,
            } => match read_mbox_message(&mut reader, self.max_message_bytes) {
                Ok(Some(raw)) => {
                    let item = Item {
                        path: path.clone(),
                        index: Some(next_index),
                        raw,
                    };
                    self.pending.push(Source::Mbox {
                        path,
                        next_index: next_index + 1,
                        reader,
                    });
                    Some(Ok(item))
                }
                Ok(None) => self.next(),
                Err(MboxError::Io(source)) => Some(Err(InputError::Io { path, source })),
                Err(MboxError::TooLarge) => {
                    self.pending.push(Source::Mbox {
                        path: path.clone(),
                        next_index: next_index + 1,
                        reader,
                    });
                    Some(Err(InputError::TooLarge {
                        path: format!("{path}#{next_index}"),
                        limit: self.max_message_bytes,
                    }))
                }
            },
        }
    }
}

/// The files to read in a directory: a Maildir's `cur/` and `new/`, or else every regular file
/// and sub-directory in name order (hidden files and Maildir's `tmp/` skipped).
fn dir_entries(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let is_maildir = dir.join("cur").is_dir() && dir.join("new").is_dir();
    let mut out = Vec::new();
    let subdirs: Vec<PathBuf> = if is_maildir {
        vec![dir.join("cur"), dir.join("new")]
    } else {
        vec![dir.to_path_buf()]
    };
    for sub in subdirs {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&sub)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
            })
            .filter(|p| !(is_maildir && p.ends_with("tmp")))
            .collect();
        entries.sort();
        out.extend(entries);
    }
    Ok(out)
}

enum MboxError {
    Io(io::Error),
    TooLarge,
}

/// Read the next message of an mbox stream positioned at a `From ` line (or at its end).
/// `>From ` quoting (mboxrd/mboxo) is undone. A message over `limit` bytes is skipped whole.
fn read_mbox_message(
    reader: &mut Box<dyn BufRead>,
    limit: usize,
) -> Result<Option<Vec<u8>>, MboxError> {
    let mut line = Vec::new();
    // Skip to the separator line.
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(MboxError::Io)?;
        if n == 0 {
            return Ok(None);
        }
        if line.starts_with(b"From ") {
            break;
        }
    }
    let mut raw = Vec::new();
    let mut too_large = false;
    loop {
        let buf = reader.fill_buf().map_err(MboxError::Io)?;
        if buf.is_empty() || buf.starts_with(b"From ") {
            break;
        }
        line.clear();
        reader.read_until(b'\n', &mut line).map_err(MboxError::Io)?;
        if too_large {
            continue;
        }
        let unquoted = if line.starts_with(b">")
            && line
                .iter()
                .skip_while(|&&b| b == b'>')
                .take(5)
                .eq(b"From ".iter())
        {
            &line[1..]
        } else {
            &line[..]
        };
        raw.extend_from_slice(unquoted);
        if raw.len() > limit {
            too_large = true;
            raw = Vec::new();
        }
    }
    if too_large {
        return Err(MboxError::TooLarge);
    }
    Ok(Some(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mbox_reader(data: &'static [u8]) -> Box<dyn BufRead> {
        Box::new(BufReader::new(data))
    }

    #[test]
    fn splits_mbox_and_unquotes_from() {
        let mut r = mbox_reader(
            b"From a@b Mon Jan 1 00:00:00 2024\nSubject: one\n\n>From here\nbody\nFrom c@d Mon Jan 1 00:00:00 2024\nSubject: two\n\nx\n",
        );
        let first = read_mbox_message(&mut r, 1 << 20).ok().flatten();
        assert_eq!(
            first.as_deref(),
            Some(&b"Subject: one\n\nFrom here\nbody\n"[..])
        );
        let second = read_mbox_message(&mut r, 1 << 20).ok().flatten();
        assert_eq!(second.as_deref(), Some(&b"Subject: two\n\nx\n"[..]));
        assert!(matches!(read_mbox_message(&mut r, 1 << 20), Ok(None)));
    }

    #[test]
    fn oversized_mbox_message_is_skipped_not_kept() {
        let mut r = mbox_reader(b"From a\nSubject: big\n\n0123456789\nFrom b\nSubject: s\n\n");
        assert!(matches!(
            read_mbox_message(&mut r, 8),
            Err(MboxError::TooLarge)
        ));
        let next = read_mbox_message(&mut r, 1 << 20).ok().flatten();
        assert_eq!(next.as_deref(), Some(&b"Subject: s\n\n"[..]));
    }
}
