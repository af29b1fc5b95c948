//! `git describe --tags --always`, computed as git 2.47 computes it (builtin/describe.c), with
//! every walk bounded by the deadline: libgit2's own describe walks the whole history.
//!
//! - **Names**: every `refs/tags/*` ref, by the commit it peels to; on one commit an annotated
//!   tag beats a lightweight one, the newer of two annotated ones wins, else the first by ref
//!   name. The peeled ids come from `packed-refs` where git recorded them.
//! - **Walk**: commits by committer date from HEAD (ties: first queued first); the first 10
//!   tags met are the candidates (git's `--candidates` default); the walk stops at the 11th,
//!   or when an annotated candidate covers the last queued path.
//! - **Depth**: the best candidate (fewest commits not reachable from it, then found first) is
//!   finished by walking on until every queued commit is reachable from it.
//! - **Abbreviation**: git's automatic length (from the number of packed objects, at least 7),
//!   lengthened until unique; `core.abbrev` as libgit2 reads it when it is set.
//!
//! A shallow repository's boundary commits have no parents (`.git/shallow`), as in git.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use git2::Oid;

use super::Deadline;
use super::abbrev::abbreviate;

const SEEN: u32 = 1;
const MAX_CANDIDATES: usize = 10;

/// Why there is no description: it ran out of time, or the repository could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Unknown {
    Deadline,
    Unreadable(String),
}

impl From<git2::Error> for Unknown {
    fn from(e: git2::Error) -> Self {
        Unknown::Unreadable(e.message().to_owned())
    }
}

struct Name {
    path: String,
    prio: u8,
    tag: Option<Oid>,
}

/// The tags by the commit (or other object) they peel to.
fn names(repo: &git2::Repository, deadline: &Deadline) -> Result<HashMap<Oid, Name>, Unknown> {
    let mut refs: Vec<(String, Oid, Option<Oid>)> = Vec::new();
    for (i, r) in repo.references_glob("refs/tags/*")?.enumerate() {
        if i % 1024 == 1023 && deadline.passed() {
            return Err(Unknown::Deadline);
        }
        let r = r?;
        let (Ok(name), Some(target)) = (r.name(), r.target()) else {
            continue;
        };
        let path = name.strip_prefix("refs/tags/").unwrap_or(name).to_owned();
        refs.push((path, target, r.target_peel()));
    }
    refs.sort_by(|a, b| a.0.cmp(&b.0));
    let odb = repo.odb()?;
    let mut out: HashMap<Oid, Name> = HashMap::with_capacity(refs.len());
    for (i, (path, target, peeled)) in refs.into_iter().enumerate() {
        if i % 1024 == 1023 && deadline.passed() {
            return Err(Unknown::Deadline);
        }
        let (peeled, prio) = match peeled {
            Some(p) => (p, 2),
            None => match odb.read_header(target) {
                Ok((_, git2::ObjectType::Tag)) => match peel_tag(repo, target) {
                    Some(p) => (p, 2),
                    None => continue,
                },
                Ok(_) => (target, 1),
                Err(_) => continue,
            },
        };
        let tag = (prio == 2).then_some(target);
        let replace = match out.get(&peeled) {
            None => true,
            Some(e) if e.prio < prio => true,
            Some(e) if e.prio == 2 && prio == 2 => match (
                e.tag.and_then(|t| tag_date(repo, t)),
                tag_date(repo, target),
            ) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(old), Some(new)) => old < new,
            },
            Some(_) => false,
        };
        if replace {
            out.insert(peeled, Name { path, prio, tag });
        }
    }
    Ok(out)
}

fn peel_tag(repo: &git2::Repository, mut id: Oid) -> Option<Oid> {
    for _ in 0..64 {
        let t = repo.find_tag(id).ok()?;
        if t.target_type() != Some(git2::ObjectType::Tag) {
            return Some(t.target_id());
        }
        id = t.target_id();
    }
    None
}

fn tag_date(repo: &git2::Repository, id: Oid) -> Option<i64> {
    Some(repo.find_tag(id).ok()?.tagger()?.when().seconds())
}

struct Node {
    date: i64,
    parents: Vec<Oid>,
    flags: u32,
    queued: bool,
}

/// Commits read straight from the object database (parents and committer date only), and
/// git's date-ordered list of the commits still to visit.
struct Walk<'r> {
    odb: git2::Odb<'r>,
    shallow: HashSet<Oid>,
    nodes: HashMap<Oid, Node>,
    deadline: &'r Deadline,
    queue: BinaryHeap<(i64, Reverse<u64>, Oid)>,
    seq: u64,
}

impl Walk<'_> {
    fn load(&mut self, id: Oid) -> Result<(), Unknown> {
        if self.nodes.contains_key(&id) {
            return Ok(());
        }
        if self.nodes.len() % 256 == 255 && self.deadline.passed() {
            return Err(Unknown::Deadline);
        }
        let (size, kind) = self.odb.read_header(id)?;
        if kind != git2::ObjectType::Commit {
            return Err(Unknown::Unreadable(format!("{id} is not a commit")));
        }
        if size > super::COMMIT_LIMIT {
            return Err(Unknown::Unreadable(format!(
                "commit {id} is larger than {} KiB, more than any git writes",
                super::COMMIT_LIMIT / 1024
            )));
        }
        let obj = self.odb.read(id)?;
        let (mut parents, date) = parse_commit(obj.data())
            .ok_or_else(|| Unknown::Unreadable(format!("commit {id} cannot be parsed")))?;
        if self.shallow.contains(&id) {
            parents.clear();
        }
        let node = Node {
            date,
            parents,
            flags: 0,
            queued: false,
        };
        self.nodes.insert(id, node);
        Ok(())
    }

    fn node(&mut self, id: Oid) -> &mut Node {
        self.nodes.get_mut(&id).expect("loaded before use")
    }

    /// `commit_list_insert_by_date`: newest first, equal dates in insertion order.
    fn push(&mut self, id: Oid) {
        self.seq += 1;
        let n = self.node(id);
        n.queued = true;
        let date = n.date;
        let seq = self.seq;
        self.queue.push((date, Reverse(seq), id));
    }

    fn pop(&mut self) -> Option<(Oid, u32)> {
        let (_, _, id) = self.queue.pop()?;
        let n = self.node(id);
        n.queued = false;
        Some((id, n.flags))
    }

    /// Queues `id`'s unseen parents and gives them its flags. `without`: the count of queued
    /// commits lacking that flag bit, kept up to date.
    fn propagate(
        &mut self,
        id: Oid,
        mut without: Option<(u32, &mut usize)>,
    ) -> Result<(), Unknown> {
        let (flags, parents) = {
            let n = &self.nodes[&id];
            (n.flags, n.parents.clone())
        };
        for p in parents {
            self.load(p)?;
            let node = self.node(p);
            let old = node.flags;
            node.flags |= flags;
            let (new, queued) = (node.flags, node.queued);
            if old & SEEN == 0 {
                self.push(p);
                if let Some((bit, count)) = without.as_mut()
                    && new & *bit == 0
                {
                    **count += 1;
                }
            } else if let Some((bit, count)) = without.as_mut()
                && queued
                && old & *bit == 0
                && new & *bit != 0
            {
                **count -= 1;
            }
        }
        Ok(())
    }
}

/// The parents and the committer timestamp of a raw commit.
fn parse_commit(data: &[u8]) -> Option<(Vec<Oid>, i64)> {
    let mut parents = Vec::new();
    let mut date = None;
    for line in data.split(|&b| b == b'\n') {
        if line.is_empty() {
            break;
        }
        if let Some(hex) = line.strip_prefix(b"parent ") {
            parents.push(Oid::from_str(std::str::from_utf8(hex).ok()?).ok()?);
        } else if let Some(rest) = line.strip_prefix(b"committer ") {
            let at = rest.iter().rposition(|&b| b == b'>')?;
            let ts = std::str::from_utf8(&rest[at + 1..]).ok()?;
            date = ts.split_whitespace().next()?.parse().ok();
        }
    }
    Some((parents, date.unwrap_or(0)))
}

struct Candidate {
    name: Oid,
    depth: usize,
    within: u32,
    found: usize,
}

/// `git describe --tags --always` of `head` (without `--dirty`).
pub(super) fn describe(
    repo: &git2::Repository,
    head: Oid,
    deadline: &Deadline,
) -> Result<String, Unknown> {
    let names = names(repo, deadline)?;
    if let Some(n) = names.get(&head) {
        return Ok(if misnamed(repo, n) {
            format!("{}-0-g{}", n.path, abbreviate(repo, head)?)
        } else {
            n.path.clone()
        });
    }
    let mut w = Walk {
        odb: repo.odb()?,
        shallow: shallow_commits(repo)?,
        nodes: HashMap::new(),
        deadline,
        queue: BinaryHeap::new(),
        seq: 0,
    };
    // `capture` turned off libgit2's re-hashing of every object read (a third of this walk).
    let (n, depth) = match walk(&mut w, &names, head)? {
        Some(found) => found,
        None => return abbreviate(repo, head),
    };
    Ok(format!(
        "{}-{depth}-g{}",
        names[&n].path,
        abbreviate(repo, head)?
    ))
}

/// The walk of `describe_commit`: the best candidate and its depth, `None` without one.
fn walk(
    w: &mut Walk<'_>,
    names: &HashMap<Oid, Name>,
    head: Oid,
) -> Result<Option<(Oid, usize)>, Unknown> {
    w.load(head)?;
    w.node(head).flags = SEEN;
    w.push(head);
    let mut matches: Vec<Candidate> = Vec::new();
    let mut annotated = 0usize;
    let mut seen = 0usize;
    let mut gave_up_on = None;
    while let Some((id, _)) = w.pop() {
        seen += 1;
        if let Some(n) = names.get(&id) {
            if matches.len() < MAX_CANDIDATES {
                let within = 1u32 << (matches.len() + 1);
                matches.push(Candidate {
                    name: id,
                    depth: seen - 1,
                    within,
                    found: matches.len() + 1,
                });
                w.node(id).flags |= within;
                if n.prio == 2 {
                    annotated += 1;
                }
            } else {
                gave_up_on = Some(id);
                break;
            }
        }
        let flags = w.nodes[&id].flags;
        for m in &mut matches {
            if flags & m.within == 0 {
                m.depth += 1;
            }
        }
        // Stop when the last queued path is already covered by the best candidate(s).
        if annotated > 0 && w.queue.is_empty() {
            let best = matches.iter().map(|m| m.depth).min().unwrap_or(usize::MAX);
            let best_within = matches
                .iter()
                .filter(|m| m.depth == best)
                .fold(0, |acc, m| acc | m.within);
            if flags & best_within == best_within {
                break;
            }
        }
        w.propagate(id, None)?;
    }
    if matches.is_empty() {
        return Ok(None);
    }
    matches.sort_by_key(|m| (m.depth, m.found));
    if let Some(g) = gave_up_on {
        w.push(g);
    }
    let best = &matches[0];
    let depth = best.depth + finish_depth(w, best.within)?;
    Ok(Some((best.name, depth)))
}

/// git's `finish_depth_computation`: walks on until every queued commit is reachable from the
/// best candidate; returns what that adds to its depth.
fn finish_depth(w: &mut Walk<'_>, within: u32) -> Result<usize, Unknown> {
    let mut extra = 0;
    let mut without = w
        .queue
        .iter()
        .filter(|(_, _, id)| w.nodes[id].flags & within == 0)
        .count();
    while let Some((id, flags)) = w.pop() {
        if flags & within != 0 {
            if without == 0 {
                break;
            }
        } else {
            without -= 1;
            extra += 1;
        }
        w.propagate(id, Some((within, &mut without)))?;
    }
    Ok(extra)
}

/// An annotated tag whose own name is not its ref's (git then adds the suffix even at 0).
fn misnamed(repo: &git2::Repository, n: &Name) -> bool {
    n.tag
        .and_then(|t| repo.find_tag(t).ok())
        .is_some_and(|t| t.name_bytes() != n.path.as_bytes())
}

/// The most read of `.git/shallow` (41 bytes a commit: 400,000 boundary commits).
const SHALLOW_LIMIT: u64 = 16 * 1024 * 1024;

/// The commits whose parents a shallow clone cut off (`.git/shallow`, read bounded: a FIFO,
/// a device or a huge file makes describe unknown).
fn shallow_commits(repo: &git2::Repository) -> Result<HashSet<Oid>, Unknown> {
    let path = repo.commondir().join("shallow");
    let read = crate::files::read_bounded_if_exists(&path, SHALLOW_LIMIT, "shallow file")
        .map_err(|e| Unknown::Unreadable(e.to_string()))?;
    Ok(read
        .map(|(b, _)| b)
        .unwrap_or_default()
        .split(|&c| c == b'\n')
        .filter_map(|l| Oid::from_str(std::str::from_utf8(l).ok()?.trim()).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_commit_gives_its_parents_and_committer_date() {
        let raw = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
parent 1111111111111111111111111111111111111111\n\
parent 2222222222222222222222222222222222222222\n\
author A <a@x> 100 +0000\n\
committer C <c@x> 1700000000 +0200\n\
\n\
parent 3333333333333333333333333333333333333333\n";
        let (parents, date) = parse_commit(raw).unwrap();
        assert_eq!(parents.len(), 2, "the message is not read");
        assert_eq!(parents[1].to_string(), "2".repeat(40));
        assert_eq!(date, 1_700_000_000, "committer, not author");
    }
}
