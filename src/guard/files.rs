//! Reading files named by settings, safely: never blocking, never more
//! than a stated number of bytes, and only from regular files.
//!
//! A setting can name anything: a FIFO with no writer (opening or reading
//! it blocks forever), `/dev/zero` (reading it never ends), a directory, a
//! symlink loop. The file is opened with `O_NONBLOCK`, so opening a FIFO
//! returns at once, and then judged by `fstat` on the open handle, so it
//! cannot be swapped between the look and the read. Only a regular file is
//! read, and only up to `limit + 1` bytes, which is enough to tell "too
//! large" without buffering the rest.

use std::fs;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// What stands at a path that is not a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAFile {
    Directory,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    /// A chain of symlinks that never ends (`ELOOP`).
    SymlinkLoop,
}

impl NotAFile {
    /// "a directory", "a FIFO", ... for messages.
    pub fn describe(self) -> &'static str {
        match self {
            NotAFile::Directory => "a directory",
            NotAFile::Fifo => "a FIFO (named pipe)",
            NotAFile::Socket => "a Unix socket",
            NotAFile::CharDevice => "a character device",
            NotAFile::BlockDevice => "a block device",
            NotAFile::SymlinkLoop => "a symlink loop",
        }
    }
}

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadProblem {
    /// Nothing there, or a symlink that points nowhere.
    Missing,
    /// There is something, but not a regular file.
    NotAFile(NotAFile),
    /// Permission denied. `file` is `(mode, uid, gid)` where `stat` worked.
    Denied {
        detail: String,
        file: Option<(u32, u32, u32)>,
    },
    /// Larger than the limit.
    TooLarge { limit: usize },
    /// Any other I/O error.
    Failed(String),
}

impl ReadProblem {
    /// One lowercase phrase, for messages: "it is a FIFO (named pipe)".
    pub fn describe(&self) -> String {
        match self {
            ReadProblem::Missing => "it does not exist".to_owned(),
            ReadProblem::NotAFile(kind) => {
                format!("it is {}, not a regular file", kind.describe())
            }
            ReadProblem::Denied { detail, .. } => format!("permission denied ({detail})"),
            ReadProblem::TooLarge { limit } => {
                format!("it is larger than {limit} bytes, the most irsa-doctor reads")
            }
            ReadProblem::Failed(detail) => detail.clone(),
        }
    }
}

/// Reads at most `limit` bytes of the regular file at `path`, following
/// symlinks, without ever blocking on what the path names.
pub fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>, ReadProblem> {
    let (file, meta) = open_regular(path, limit)?;
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0).min(limit) + 1);
    file.take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| match e.kind() {
            ErrorKind::PermissionDenied => ReadProblem::Denied {
                detail: format!("read failed: {e}"),
                file: Some(mode_uid_gid(&meta)),
            },
            _ => ReadProblem::Failed(format!("read failed: {e}")),
        })?;
    // A regular file can still grow under us (or be a procfs file whose
    // size says 0): the read stopped at limit + 1.
    if buf.len() > limit {
        return Err(ReadProblem::TooLarge { limit });
    }
    Ok(buf)
}

/// Checks, without reading it, that `path` is a regular file of at most
/// `limit` bytes: for files another library will read.
pub fn check_bounded(path: &Path, limit: usize) -> Result<(), ReadProblem> {
    open_regular(path, limit).map(drop)
}

/// Opens `path` without blocking and judges the open handle: a regular
/// file of at most `limit` bytes, by `fstat`.
fn open_regular(path: &Path, limit: usize) -> Result<(fs::File, fs::Metadata), ReadProblem> {
    let file = open(path)?;
    let meta = file
        .metadata()
        .map_err(|e| ReadProblem::Failed(format!("stat failed: {e}")))?;
    if let Some(kind) = not_a_file(&meta.file_type()) {
        return Err(ReadProblem::NotAFile(kind));
    }
    if meta.len() > limit as u64 {
        return Err(ReadProblem::TooLarge { limit });
    }
    Ok((file, meta))
}

fn open(path: &Path) -> Result<fs::File, ReadProblem> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| open_problem(path, &e))
}

/// `(mode, uid, gid)` of a file's metadata.
pub fn mode_uid_gid(meta: &fs::Metadata) -> (u32, u32, u32) {
    (meta.permissions().mode() & 0o7777, meta.uid(), meta.gid())
}

fn not_a_file(t: &fs::FileType) -> Option<NotAFile> {
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some(NotAFile::Directory)
    } else if t.is_fifo() {
        Some(NotAFile::Fifo)
    } else if t.is_socket() {
        Some(NotAFile::Socket)
    } else if t.is_block_device() {
        Some(NotAFile::BlockDevice)
    } else {
        Some(NotAFile::CharDevice)
    }
}

fn open_problem(path: &Path, e: &std::io::Error) -> ReadProblem {
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR) => ReadProblem::Missing,
        Some(libc::ELOOP) => ReadProblem::NotAFile(NotAFile::SymlinkLoop),
        // Opening a Unix socket fails with ENXIO.
        Some(libc::ENXIO) => ReadProblem::NotAFile(NotAFile::Socket),
        Some(libc::EACCES | libc::EPERM) => ReadProblem::Denied {
            detail: format!("open failed: {e}"),
            file: fs::metadata(path).ok().as_ref().map(mode_uid_gid),
        },
        _ => ReadProblem::Failed(format!("open failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_without_a_writer_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            read_bounded(&fifo, 10),
            Err(ReadProblem::NotAFile(NotAFile::Fifo))
        );
    }

    #[test]
    fn devices_directories_and_loops_are_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            read_bounded(Path::new("/dev/zero"), 10),
            Err(ReadProblem::NotAFile(NotAFile::CharDevice))
        );
        assert_eq!(
            read_bounded(dir.path(), 10),
            Err(ReadProblem::NotAFile(NotAFile::Directory))
        );
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        assert_eq!(
            read_bounded(&a, 10),
            Err(ReadProblem::NotAFile(NotAFile::SymlinkLoop))
        );
        assert_eq!(
            read_bounded(&dir.path().join("none"), 10),
            Err(ReadProblem::Missing)
        );
    }

    #[test]
    fn a_file_is_read_up_to_the_limit_and_no_further() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_bounded(&path, 10).unwrap(), b"0123456789");
        assert_eq!(
            read_bounded(&path, 9),
            Err(ReadProblem::TooLarge { limit: 9 })
        );
    }
}
