//! Which files are Git LFS files: git's `filter=lfs` attribute (from `.gitattributes` in the
//! tree, `info/attributes`, the user's attributes file), and which of them the user wants
//! (`lfs.fetchinclude` / `lfs.fetchexclude`-style patterns).

use std::path::Path;

/// Whether git's `filter` attribute of `path` (relative to the work tree) is `lfs`.
pub fn is_lfs(repo: &git2::Repository, path: &Path) -> bool {
    matches!(
        repo.get_attr(path, "filter", git2::AttrCheckFlags::FILE_THEN_INDEX),
        Ok(Some("lfs"))
    )
}

/// Include and exclude patterns, as git-lfs reads `lfs.fetchinclude` and `lfs.fetchexclude`:
/// comma-separated; a pattern without `/` matches a file name in any folder, one with `/`
/// matches from the top (`*` within a component, `**` across them), and a folder matches
/// everything under it.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl Filter {
    /// From comma-separated lists (the flags' values).
    pub fn new(include: &[String], exclude: &[String]) -> Filter {
        let split = |v: &[String]| {
            v.iter()
                .flat_map(|s| s.split(','))
                .map(|s| s.trim().trim_start_matches('/').to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Filter {
            include: split(include),
            exclude: split(exclude),
        }
    }

    /// Whether `path` (slash-separated, relative) is wanted.
    pub fn wants(&self, path: &str) -> bool {
        let hit = |pats: &[String]| pats.iter().any(|p| matches(p, path));
        (self.include.is_empty() || hit(&self.include)) && !hit(&self.exclude)
    }
}

fn matches(pattern: &str, path: &str) -> bool {
    let pattern = pattern.trim_end_matches('/');
    if !pattern.contains('/') {
        // A name anywhere, or a folder of that name anywhere.
        let parts: Vec<&str> = path.split('/').collect();
        return parts.iter().any(|c| glob(pattern, c));
    }
    let pat: Vec<&str> = pattern.split('/').collect();
    let parts: Vec<&str> = path.split('/').collect();
    components(&pat, &parts)
}

/// `pat` matches a prefix of `parts` (a folder matches what is under it).
fn components(pat: &[&str], parts: &[&str]) -> bool {
    match (pat.first(), parts.first()) {
        (None, _) => true,
        (Some(&"**"), _) => (0..=parts.len()).any(|i| components(&pat[1..], &parts[i..])),
        (Some(_), None) => false,
        (Some(p), Some(c)) => glob(p, c) && components(&pat[1..], &parts[1..]),
    }
}

/// `*` and `?` within one path component.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_patterns_want_everything() {
        assert!(Filter::default().wants("a/b/model.bin"));
    }

    #[test]
    fn include_and_exclude_work_like_git_lfs() {
        let f = Filter::new(&["data/,*.bin".into()], &["data/raw/**".into()]);
        assert!(f.wants("weights/model.bin"));
        assert!(f.wants("data/train.csv"));
        assert!(!f.wants("data/raw/huge.csv"));
        assert!(!f.wants("notes.txt"));
        let f = Filter::new(&[], &["*.ckpt".into()]);
        assert!(!f.wants("runs/a/last.ckpt"));
        assert!(f.wants("runs/a/last.bin"));
        let f = Filter::new(&["models/*/best.bin".into()], &[]);
        assert!(f.wants("models/a/best.bin"));
        assert!(!f.wants("models/a/b/best.bin"));
        assert!(!f.wants("best.bin"));
    }
}
