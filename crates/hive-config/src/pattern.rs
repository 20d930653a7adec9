//! Model-name patterns: `*` matches any run of characters (`/` included), every other
//! character itself.

/// A pattern's pieces: literal characters, and `None` for a `*` (runs of `*` are one).
fn pieces(pattern: &str) -> Vec<Option<char>> {
    let mut out: Vec<Option<char>> = Vec::with_capacity(pattern.len());
    for c in pattern.chars() {
        let piece = (c != '*').then_some(c);
        if piece.is_none() && out.last() == Some(&None) {
            continue;
        }
        out.push(piece);
    }
    out
}

/// Whether `pattern` (pieces) matches `subject` (pieces): a literal matches the same literal,
/// and a star in the pattern matches any run of subject pieces. A star in the subject stands
/// for "any text": only a pattern star can cover it. With a plain name as subject this is
/// ordinary matching; with a pattern as subject it says whether every name the subject
/// matches, the pattern matches too (so an earlier pattern that matches a later one leaves
/// the later one nothing).
fn covers(pattern: &[Option<char>], subject: &[Option<char>]) -> bool {
    // Classic dynamic programming over (pattern prefix, subject prefix).
    let (p, s) = (pattern.len(), subject.len());
    let mut row = vec![false; s + 1];
    row[0] = true;
    for i in 1..=p {
        let mut next = vec![false; s + 1];
        match pattern[i - 1] {
            None => {
                // A star: matches the empty run, or extends over one more subject piece.
                next[0] = row[0];
                for j in 1..=s {
                    next[j] = row[j] || next[j - 1];
                }
            }
            Some(c) => {
                for j in 1..=s {
                    next[j] = row[j - 1] && subject[j - 1] == Some(c);
                }
            }
        }
        row = next;
    }
    row[s]
}

/// Whether `name` matches `pattern`.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    let name: Vec<Option<char>> = name.chars().map(Some).collect();
    covers(&pieces(pattern), &name)
}

/// Whether every name `later` matches is matched by `earlier` too.
pub(crate) fn shadows(earlier: &str, later: &str) -> bool {
    covers(&pieces(earlier), &pieces(later))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_match_any_run() {
        assert!(matches("openai/*", "openai/gpt-4o"));
        assert!(matches("openai/*", "openai/"));
        assert!(matches("*", "anything/at/all"));
        assert!(matches("*-mini", "gpt-4o-mini"));
        assert!(matches("a*b*c", "abc"));
        assert!(matches("a**c", "abbc"));
        assert!(!matches("openai/*", "anthropic/claude"));
        assert!(!matches("a*b", "ab/c"));
        assert!(!matches("*-mini", "gpt-4o"));
    }

    #[test]
    fn shadowing_is_inclusion_of_the_matched_names() {
        assert!(shadows("*", "openai/*"));
        assert!(shadows("openai/*", "openai/gpt-*"));
        assert!(shadows("openai/*", "openai/*"));
        assert!(shadows("*/*", "openai/*"));
        assert!(shadows("a*", "a*b*"));
        assert!(!shadows("openai/gpt-*", "openai/*"));
        assert!(!shadows("openai/*", "*"));
        assert!(!shadows("*-mini", "openai/*"));
        assert!(!shadows("a*b", "a*"));
    }
}
