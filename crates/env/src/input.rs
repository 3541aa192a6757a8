//! Reading input files safely: only regular files, only up to a size limit.
//!
//! A scenario file, a catalog or a checkpoint named by a user may be anything
//! the path leads to — a named pipe that never ends, `/dev/zero` behind a
//! symlink, a directory, a file of many gigabytes. [`read_regular_file`]
//! follows symlinks, refuses whatever is not a regular file before opening
//! it, refuses files over the limit, and reads with a bound, so no input
//! can hang the program or exhaust its memory.

use std::{fs, io::Read, path::Path};
use thiserror::Error;

/// Largest scenario file read, in bytes.
pub const MAX_SCENARIO_BYTES: u64 = 16 << 20;

/// Largest catalog or checkpoint file read, in bytes.
pub const MAX_DATA_BYTES: u64 = 1 << 30;

/// Why an input file was not read; the message starts with what the path is.
#[derive(Debug, Error)]
pub enum InputError {
    /// The path could not be inspected or opened.
    #[error("cannot be read: {0}")]
    Io(#[from] std::io::Error),
    /// The path is not a regular file.
    #[error("is {0}, not a regular file")]
    NotAFile(&'static str),
    /// The file is larger than the limit.
    #[error("is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The file's size, as far as it was read.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

/// What a path that is not a regular file is, for messages.
fn kind(file_type: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a named pipe";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Reads the regular file at `path` (symlinks followed), refusing anything
/// else at once and files over `limit` bytes.
pub fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, InputError> {
    let metadata = fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(InputError::NotAFile(kind(metadata.file_type())));
    }
    if metadata.len() > limit {
        return Err(InputError::TooLarge {
            size: metadata.len(),
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(InputError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// [`read_regular_file`] as UTF-8 text.
pub fn read_text_file(path: &Path, limit: u64) -> Result<String, InputError> {
    let bytes = read_regular_file(path, limit)?;
    String::from_utf8(bytes).map_err(|e| {
        InputError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text ({e})"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_under_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.toml");
        std::fs::write(&file, "x = 1\n").unwrap();
        assert_eq!(read_text_file(&file, 100).unwrap(), "x = 1\n");
        assert!(matches!(
            read_regular_file(&file, 3),
            Err(InputError::TooLarge { size: 6, limit: 3 })
        ));
        let e = read_regular_file(dir.path(), 100).unwrap_err();
        assert_eq!(e.to_string(), "is a directory, not a regular file");
        let e = read_regular_file(&dir.path().join("missing"), 100).unwrap_err();
        assert!(e.to_string().starts_with("cannot be read: "), "{e}");
        // A sparse file larger than the limit is refused by its size, unread.
        let big = dir.path().join("big.csv");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_DATA_BYTES + 1)
            .unwrap();
        assert!(matches!(
            read_regular_file(&big, MAX_DATA_BYTES),
            Err(InputError::TooLarge { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn devices_pipes_and_links_to_them_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        for device in ["/dev/zero", "/dev/urandom"] {
            let e = read_regular_file(Path::new(device), MAX_DATA_BYTES).unwrap_err();
            assert_eq!(e.to_string(), "is a device, not a regular file");
            let link = dir.path().join(format!("link-{}", &device[5..]));
            std::os::unix::fs::symlink(device, &link).unwrap();
            let e = read_regular_file(&link, MAX_DATA_BYTES).unwrap_err();
            assert_eq!(e.to_string(), "is a device, not a regular file");
        }
        let fifo = dir.path().join("pipe.toml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let e = read_regular_file(&fifo, MAX_SCENARIO_BYTES).unwrap_err();
            assert_eq!(e.to_string(), "is a named pipe, not a regular file");
        }
    }
}
