//! Where the binaries under test and the shared corpus live.

use std::path::PathBuf;

/// The directory holding the built binaries: `target/<profile>/`, found from
/// the test executable, which cargo puts in `target/<profile>/deps/`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the running test executable");
    let deps = exe
        .parent()
        .expect("test executable has a parent directory");
    let profile_dir = if deps.ends_with("deps") {
        deps.parent().expect("deps/ has a parent directory")
    } else {
        deps
    };
    profile_dir.to_path_buf()
}

fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "binary {} not found: run `cargo build --workspace` (or \
         `cargo build --workspace --bins`) before the end-to-end tests",
        path.display()
    );
    path
}

/// The server and CLI binary, `loghound`.
pub fn loghound_bin() -> PathBuf {
    binary("loghound")
}

/// The agent binary, `loghound-agent`.
pub fn agent_bin() -> PathBuf {
    binary("loghound-agent")
}

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits inside the workspace")
        .to_path_buf()
}

/// The shared corpus of real logs, `<workspace root>/../shared/corpus`.
pub fn corpus_dir() -> PathBuf {
    let path = workspace_root().join("..").join("shared").join("corpus");
    assert!(
        path.is_dir(),
        "corpus directory {} is missing: the end-to-end tests need the shared \
         corpus (loghub/ and apache_access/) next to the workspace",
        path.display()
    );
    path
}

/// One loghub sample, e.g. `loghub_file("HDFS")` for `loghub/HDFS_2k.log`.
pub fn loghub_file(name: &str) -> PathBuf {
    let path = corpus_dir().join("loghub").join(format!("{name}_2k.log"));
    assert!(path.is_file(), "corpus file {} is missing", path.display());
    path
}
