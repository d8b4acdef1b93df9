//! "Did you mean": the known name closest to an unknown one, and lists of known names.
//!
//! Both are bounded so that a file with thousands of unknown names and thousands of states stays
//! linear to validate: every lookup spends from a fixed budget of comparisons, and a list of
//! names shows the first few and how many more there are (docs/performance.md).

/// Names shown in a "states are: .." list before "and N more".
const LISTED: usize = 8;

/// Edit distances computed per [`Names`] before suggestions stop being looked for.
const BUDGET: usize = 200_000;

/// The known names of one kind (states, variables), sorted, with a budget for suggestions.
#[derive(Debug, Default)]
pub(crate) struct Names {
    sorted: Vec<String>,
    budget: usize,
    remembered: std::collections::HashMap<String, Option<usize>>,
    /// Names by their look-alike form (`names::lookalike_key`), built on first use.
    lookalike: Option<std::collections::HashMap<String, usize>>,
}

impl Names {
    /// The names, in any order.
    pub(crate) fn new<'n>(names: impl IntoIterator<Item = &'n String>) -> Self {
        let mut sorted: Vec<String> = names.into_iter().cloned().collect();
        sorted.sort_unstable();
        Names {
            sorted,
            budget: BUDGET,
            remembered: std::collections::HashMap::new(),
            lookalike: None,
        }
    }

    /// The known name closest to `name` by edit distance, if close enough to be a likely
    /// typo. `None` also once the budget is spent.
    pub(crate) fn closest(&mut self, name: &str) -> Option<&str> {
        if let Some(found) = self.remembered.get(name) {
            return found.map(|i| self.sorted[i].as_str());
        }
        let len = name.chars().count();
        let mut best: Option<(usize, usize)> = None;
        for (i, candidate) in self.sorted.iter().enumerate() {
            let clen = candidate.chars().count();
            let allowed = 2.max(clen / 4);
            // The distance is at least the difference in length: no need to compute it.
            if len.abs_diff(clen) > allowed {
                continue;
            }
            if self.budget == 0 {
                return None;
            }
            self.budget -= 1;
            let d = edit_distance(name, candidate);
            if d <= allowed && best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, i));
            }
        }
        let found = best.map(|(_, i)| i);
        self.remembered.insert(name.to_owned(), found);
        found.map(|i| self.sorted[i].as_str())
    }

    /// The known name that looks the same as `name` but is written with other characters
    /// (another Unicode normalization of it).
    pub(crate) fn written_otherwise(&mut self, name: &str) -> Option<&str> {
        let sorted = &self.sorted;
        let index = self.lookalike.get_or_insert_with(|| {
            sorted
                .iter()
                .enumerate()
                .map(|(i, n)| (crate::validate::names::lookalike_key(n), i))
                .collect()
        });
        let i = *index.get(&crate::validate::names::lookalike_key(name))?;
        Some(self.sorted[i].as_str())
    }

    /// `a, b, c` or `a, b, .. h and 12 more`, each name in backticks.
    pub(crate) fn list(&self) -> String {
        let mut out = self
            .sorted
            .iter()
            .take(LISTED)
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if self.sorted.len() > LISTED {
            out.push_str(&format!(" and {} more", self.sorted.len() - LISTED));
        }
        out
    }
}

/// The candidate closest to `name`, for a short fixed list (a construct's fields, an enum's
/// values).
pub(crate) fn closest_of<'c>(name: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_a_close_name_and_lists_a_few() {
        let owned: Vec<String> = (0..20).map(|i| format!("state_{i}")).collect();
        let mut names = Names::new(&owned);
        assert_eq!(names.closest("stat_3"), Some("state_3"));
        assert_eq!(names.closest("zzzzzzzzzzzz"), None);
        assert!(names.list().ends_with(" and 12 more"), "{}", names.list());
    }

    #[test]
    fn a_spent_budget_stops_suggesting_instead_of_growing_with_every_name() {
        let owned: Vec<String> = (0..1000).map(|i| format!("s{i:04}")).collect();
        let mut names = Names::new(&owned);
        names.budget = 10;
        assert_eq!(names.closest("t0001"), None);
    }
}
