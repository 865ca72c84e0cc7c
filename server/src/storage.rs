//! Recognising a full disk among I/O errors. A full data directory is a
//! state the server waits out (ingest answers 507, the indexer retries),
//! unlike other storage failures, which stop it.

use std::io;

/// `ENOSPC` and `EDQUOT` on Linux.
const DISK_FULL_CODES: [i32; 2] = [28, 122];

/// Whether `error` says the file system (or the quota) is full.
pub fn is_disk_full_io(error: &io::Error) -> bool {
    if error
        .raw_os_error()
        .is_some_and(|code| DISK_FULL_CODES.contains(&code))
        || matches!(
            error.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        )
    {
        return true;
    }
    // An io::Error may wrap another error that carries the cause.
    error
        .get_ref()
        .is_some_and(|inner| is_disk_full_dyn(inner as &(dyn std::error::Error + 'static)))
}

fn is_disk_full_dyn(error: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(io) = error.downcast_ref::<io::Error>() {
        return is_disk_full_io(io);
    }
    if let Some(tantivy) = error.downcast_ref::<tantivy::TantivyError>() {
        use tantivy::directory::error::{OpenDirectoryError, OpenWriteError};
        use tantivy::TantivyError;
        let io = match tantivy {
            TantivyError::IoError(io) => Some(io.as_ref()),
            TantivyError::OpenWriteError(OpenWriteError::IoError { io_error, .. }) => {
                Some(io_error.as_ref())
            }
            TantivyError::OpenDirectoryError(OpenDirectoryError::IoError { io_error, .. }) => {
                Some(io_error.as_ref())
            }
            _ => None,
        };
        if io.is_some_and(is_disk_full_io) {
            return true;
        }
        // A failed indexing thread reaches the caller as text only.
        return mentions_disk_full(&format!("{tantivy:?}"));
    }
    error.source().is_some_and(is_disk_full_dyn)
}

/// Whether `error` or any error in its chain of sources is a full disk.
pub fn is_disk_full(error: &(dyn std::error::Error + 'static)) -> bool {
    is_disk_full_dyn(error)
}

fn mentions_disk_full(text: &str) -> bool {
    DISK_FULL_CODES.iter().any(|code| {
        text.contains(&format!("os error {code})")) || text.contains(&format!("code: {code}, "))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// An error with a context line in front of its cause, as callers wrap
    /// them.
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Wrapped(
        &'static str,
        #[source] Box<dyn std::error::Error + Send + Sync>,
    );

    #[test]
    fn full_disk_is_recognised_through_wrappers() {
        let enospc = || io::Error::from_raw_os_error(28);
        assert!(is_disk_full_io(&enospc()));
        assert!(is_disk_full_io(&io::Error::from_raw_os_error(122)));
        assert!(!is_disk_full_io(&io::Error::from_raw_os_error(5)));
        assert!(is_disk_full_io(&io::Error::other(enospc())));

        let tantivy = tantivy::TantivyError::IoError(Arc::new(enospc()));
        assert!(is_disk_full(&Wrapped("commit", Box::new(tantivy))));
        let in_thread = tantivy::TantivyError::ErrorInThread(format!("{:?}", enospc()));
        assert!(is_disk_full(&in_thread));
        let eio = Wrapped("checkpoint", Box::new(io::Error::from_raw_os_error(5)));
        assert!(!is_disk_full(&eio));
        let eio = tantivy::TantivyError::IoError(Arc::new(io::Error::from_raw_os_error(5)));
        assert!(!is_disk_full(&eio));
    }
}
