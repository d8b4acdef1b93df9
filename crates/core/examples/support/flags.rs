//! The command line the store examples share (`commit_rate`, `make_store`): `--dir DIR` and
//! `--flag value` pairs, no other syntax, since `bench/compare` is their only regular caller.

use std::collections::HashMap;
use std::path::PathBuf;

/// `--dir` and the values of the example's own flags.
pub struct Flags {
    /// The store directory (`--dir`, required).
    pub dir: PathBuf,
    values: HashMap<String, String>,
}

impl Flags {
    /// Reads `--dir DIR` and each of `known` (every flag takes a value) from the process's
    /// arguments.
    pub fn parse(known: &[&str]) -> Result<Flags, String> {
        let mut dir = PathBuf::new();
        let mut values = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let value = it.next().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--dir" => dir = PathBuf::from(value?),
                known_flag if known.contains(&known_flag) => {
                    values.insert(flag.clone(), value?);
                }
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if dir.as_os_str().is_empty() {
            return Err("--dir DIR is required".into());
        }
        Ok(Flags { dir, values })
    }

    /// `flag`'s value as a number, or `default` when it was not given.
    pub fn number(&self, flag: &str, default: u64) -> Result<u64, String> {
        self.values.get(flag).map_or(Ok(default), |v| {
            v.parse().map_err(|e| format!("{flag}: {e}"))
        })
    }

    /// `flag`'s value as given, if it was.
    #[allow(dead_code)] // Each example compiles its own copy; `make_store` has no text flag.
    pub fn text(&self, flag: &str) -> Option<&str> {
        self.values.get(flag).map(String::as_str)
    }

    /// Refuses a `--dir` that holds anything: it becomes the store.
    pub fn dir_is_empty(&self) -> Result<(), String> {
        if std::fs::read_dir(&self.dir).is_ok_and(|mut d| d.next().is_some()) {
            return Err(format!("{} is not empty", self.dir.display()));
        }
        Ok(())
    }
}
