//! Which files to follow: globs (with `**`) minus exclusions.
//!
//! Each glob is walked from its literal base directory (the components
//! before the first wildcard), only as deep as the glob can match unless it
//! contains `**`. `*` never crosses a `/`. Exclusions without a `/` match
//! the file name, others the whole path; `*.gz` is always excluded.

use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use walkdir::WalkDir;

use super::container::ContainerFormat;
use super::multiline::MultilineSettings;
use crate::config::Input;

/// What the configuration attaches to every line of one input's files.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct InputLabels {
    /// Tags such as `app = "api"`.
    pub(crate) tags: BTreeMap<String, String>,
    /// The parsing hint for the server, if configured.
    pub(crate) format: Option<String>,
    /// How lines are joined into multi-line events, if configured.
    pub(crate) multiline: Option<Arc<MultilineSettings>>,
    /// The container log format the input names (`docker`, `cri`).
    pub(crate) container: Option<ContainerFormat>,
}

/// Labels shared by every file of one input.
pub(crate) type Tags = Arc<InputLabels>;

/// Exclusion applied to every input.
const ALWAYS_EXCLUDED: &str = "*.gz";

/// A file that matches the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Discovered {
    pub(crate) path: PathBuf,
    pub(crate) tags: Tags,
}

#[derive(Debug)]
struct CompiledGlob {
    base: PathBuf,
    max_depth: usize,
    matcher: GlobMatcher,
    tags: Tags,
}

/// Compiled globs; see the module docs.
#[derive(Debug)]
pub(crate) struct PathsProvider {
    globs: Vec<CompiledGlob>,
    exclude_by_name: GlobSet,
    exclude_by_path: GlobSet,
}

fn build_glob(pattern: &str) -> Result<Glob, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|error| error.to_string())
}

/// Checks that `pattern` is a valid glob, for config validation.
pub(crate) fn check_glob(pattern: &str) -> Result<(), String> {
    if pattern.trim().is_empty() {
        return Err("empty glob".into());
    }
    build_glob(pattern).map(drop)
}

fn is_wild(component: &str) -> bool {
    component.contains(['*', '?', '[', '{'])
}

/// Splits an absolute glob into its literal base directory and how many
/// levels below it a match can be (`usize::MAX` with `**`).
fn base_and_depth(pattern: &Path) -> (PathBuf, usize) {
    let mut base = PathBuf::new();
    let mut rest = Vec::new();
    for component in pattern.components() {
        let text = component.as_os_str().to_string_lossy();
        if rest.is_empty() && !is_wild(&text) {
            base.push(component);
        } else {
            rest.push(text.into_owned());
        }
    }
    if rest.is_empty() {
        // A plain file path: its parent is the base.
        let depth = 1;
        return match base.parent() {
            Some(parent) => (parent.to_path_buf(), depth),
            None => (base, depth),
        };
    }
    let depth = if rest.iter().any(|c| c.contains("**")) {
        usize::MAX
    } else {
        rest.len()
    };
    (base, depth)
}

fn absolute(pattern: &str) -> PathBuf {
    let path = Path::new(pattern);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let mut joined = cwd;
    for component in path.components() {
        match component {
            Component::CurDir => {}
            other => joined.push(other),
        }
    }
    joined
}

impl PathsProvider {
    /// Compiles the inputs and exclusions (already validated).
    pub(crate) fn new(inputs: &[Input], exclude: &[String]) -> Result<Self, String> {
        let mut globs = Vec::new();
        for input in inputs {
            let container = input
                .format
                .as_deref()
                .and_then(ContainerFormat::from_config);
            let tags = Arc::new(InputLabels {
                tags: input.tags.clone(),
                // A container format is decoded here; the server parses
                // the lines inside with its automatic detection.
                format: input.format.clone().filter(|_| container.is_none()),
                multiline: input.multiline.clone(),
                container,
            });
            for pattern in &input.globs {
                let path = absolute(pattern);
                let (base, max_depth) = base_and_depth(&path);
                let matcher = build_glob(&path.to_string_lossy())
                    .map_err(|error| format!("{pattern}: {error}"))?
                    .compile_matcher();
                globs.push(CompiledGlob {
                    base,
                    max_depth,
                    matcher,
                    tags: tags.clone(),
                });
            }
        }
        let mut by_name = GlobSetBuilder::new();
        let mut by_path = GlobSetBuilder::new();
        for pattern in exclude.iter().map(String::as_str).chain([ALWAYS_EXCLUDED]) {
            let glob = build_glob(pattern).map_err(|error| format!("{pattern}: {error}"))?;
            if pattern.contains('/') {
                by_path.add(glob);
            } else {
                by_name.add(glob);
            }
        }
        Ok(Self {
            globs,
            exclude_by_name: by_name.build().map_err(|error| error.to_string())?,
            exclude_by_path: by_path.build().map_err(|error| error.to_string())?,
        })
    }

    /// Directories to watch: the base of every glob, and whether matches
    /// can lie deeper than directly inside it.
    pub(crate) fn roots(&self) -> Vec<(PathBuf, bool)> {
        let mut roots: BTreeMap<PathBuf, bool> = BTreeMap::new();
        for glob in &self.globs {
            *roots.entry(glob.base.clone()).or_default() |= glob.max_depth > 1;
        }
        roots.into_iter().collect()
    }

    fn excluded(&self, path: &Path) -> bool {
        let by_name = path
            .file_name()
            .is_some_and(|name| self.exclude_by_name.is_match(Path::new(name)));
        by_name || self.exclude_by_path.is_match(path)
    }

    /// The tags of `path` if it is to be followed (not checking that it exists).
    pub(crate) fn matches(&self, path: &Path) -> Option<Tags> {
        if self.excluded(path) {
            return None;
        }
        self.globs
            .iter()
            .find(|glob| glob.matcher.is_match(path))
            .map(|glob| glob.tags.clone())
    }

    /// Every regular file currently matching; the first matching input's
    /// tags win.
    pub(crate) fn discover(&self) -> Vec<Discovered> {
        let mut seen = HashSet::new();
        let mut found = Vec::new();
        for glob in &self.globs {
            let walk = WalkDir::new(&glob.base)
                .min_depth(1)
                .max_depth(glob.max_depth)
                .follow_links(false);
            for entry in walk.into_iter().filter_map(Result::ok) {
                let path = entry.path();
                if !glob.matcher.is_match(path) || self.excluded(path) || !path.is_file() {
                    continue;
                }
                if seen.insert(path.to_path_buf()) {
                    found.push(Discovered {
                        path: path.to_path_buf(),
                        tags: glob.tags.clone(),
                    });
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn input(globs: &[String]) -> Input {
        Input {
            kind: crate::config::InputKind::File,
            globs: globs.to_vec(),
            tags: BTreeMap::from([("app".into(), "x".into())]),
            format: Some("json".into()),
            multiline: None,
            journald: None,
        }
    }

    fn names(found: &[Discovered], root: &Path) -> Vec<String> {
        let mut names: Vec<String> = found
            .iter()
            .map(|d| d.path.strip_prefix(root).unwrap().display().to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn star_stays_in_one_directory_and_double_star_recurses() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        for file in [
            "top.log",
            "top.log.gz",
            "skip.txt",
            "a/mid.log",
            "a/b/deep.log",
        ] {
            fs::write(root.join(file), "x\n").unwrap();
        }
        let star = format!("{}/*.log", root.display());
        let provider = PathsProvider::new(&[input(&[star])], &[]).unwrap();
        assert_eq!(names(&provider.discover(), root), vec!["top.log"]);

        let deep = format!("{}/**/*.log*", root.display());
        let provider = PathsProvider::new(&[input(&[deep])], &["mid.*".into()]).unwrap();
        assert_eq!(
            names(&provider.discover(), root),
            vec!["a/b/deep.log", "top.log"]
        );
        assert!(provider.matches(&root.join("new.log")).is_some());
        assert!(
            provider.matches(&root.join("new.log.gz")).is_none(),
            "*.gz is excluded"
        );
        assert_eq!(provider.roots(), vec![(root.to_path_buf(), true)]);
    }

    #[test]
    fn base_directory_is_the_literal_prefix() {
        assert_eq!(
            base_and_depth(Path::new("/var/log/*.log")),
            ("/var/log".into(), 1)
        );
        assert_eq!(
            base_and_depth(Path::new("/var/log/**/x/*.log")),
            ("/var/log".into(), usize::MAX)
        );
        assert_eq!(
            base_and_depth(Path::new("/var/log/syslog")),
            ("/var/log".into(), 1)
        );
        assert_eq!(
            base_and_depth(Path::new("/srv/*/logs/*.log")),
            ("/srv".into(), 3)
        );
    }
}
