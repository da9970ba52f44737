//! The runbooks built into the binary. The day-2 commands (`etcdrill defrag`, `move-leader`,
//! `alarm disarm`) compile and run one of these exactly as `etcdrill run` runs a file: a plan, the
//! guards, a run directory, a journal and a report. The files live in `runbooks/builtin/`, where
//! they are read and reviewed like any other runbook.

use std::path::{Path, PathBuf};

use crate::source::SourceFile;

/// How a built-in runbook is named where a file path would be (`run.json`, diagnostics).
const PREFIX: &str = "builtin:";

/// One built-in runbook.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// Its name, the runbook's own `name`.
    pub name: &'static str,
    /// Its YAML text.
    pub text: &'static str,
}

/// Every built-in runbook.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "defrag",
        text: include_str!("../../../runbooks/builtin/defrag.yaml"),
    },
    Builtin {
        name: "move-leader",
        text: include_str!("../../../runbooks/builtin/move-leader.yaml"),
    },
    Builtin {
        name: "alarm-disarm",
        text: include_str!("../../../runbooks/builtin/alarm-disarm.yaml"),
    },
];

impl Builtin {
    /// The built-in runbook called `name`.
    pub fn named(name: &str) -> Option<Builtin> {
        BUILTINS.iter().copied().find(|b| b.name == name)
    }

    /// The built-in runbook a recorded path names (`builtin:defrag`), if it names one.
    pub fn at(path: &Path) -> Option<Builtin> {
        Self::named(path.to_str()?.strip_prefix(PREFIX)?)
    }

    /// The path recorded for a run of it: `builtin:NAME`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("{PREFIX}{}", self.name))
    }

    /// Its text as a source file named by [`Builtin::path`].
    pub fn source(&self) -> SourceFile {
        SourceFile::new(self.path(), self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::Runbook;

    #[test]
    fn every_builtin_loads_and_is_named_after_its_runbook() {
        for builtin in BUILTINS {
            let runbook =
                Runbook::load(builtin.source()).unwrap_or_else(|e| panic!("{}: {e}", builtin.name));
            assert_eq!(runbook.value.name, builtin.name);
            assert_eq!(
                Builtin::at(&builtin.path()).map(|b| b.name),
                Some(builtin.name)
            );
        }
        assert!(Builtin::at(Path::new("runbooks/defrag.yaml")).is_none());
        assert!(Builtin::at(Path::new("builtin:nope")).is_none());
    }
}
