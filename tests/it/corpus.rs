//! The corpus of bad runbooks and inventories: each must fail with a clear, located error.
//!
//! Every file in `tests/corpus/runbooks/` is compiled against `tests/corpus/inventory.yaml`, and
//! every file in `tests/corpus/inventories/` with `tests/corpus/runbook.yaml`. A file's first line
//! says what its error must contain (`# expect: ...`); a `# params: a=b c=d` line gives `-p`
//! values. The whole rendered error is pinned by a snapshot.

use etcdrill::inventory::Cluster;
use etcdrill::plan::{ParamInput, compile};
use etcdrill::runbook::Runbook;
use etcdrill::source::{Location, SourceFile};

use crate::support::repo;

/// Reads a corpus file under the path it is shown with: relative to the repository root.
fn source(relative: &str) -> SourceFile {
    let text = std::fs::read_to_string(repo().join(relative)).unwrap();
    SourceFile::new(relative, text)
}

fn header<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
}

/// `-p` values from the `# params:` line, located on a command line made of them.
fn params(text: &str) -> Vec<ParamInput> {
    let Some(line) = header(text, "params") else {
        return Vec::new();
    };
    let args: Vec<String> = line.split(' ').map(|a| format!("-p {a}")).collect();
    let command_line = SourceFile::new("command line", args.join(" "));
    let mut column = 1;
    args.iter()
        .map(|arg| {
            let (name, value) = arg[3..].split_once('=').unwrap();
            let input = ParamInput {
                name: name.into(),
                value: serde_yaml::Value::String(value.into()),
                source: command_line.clone(),
                location: Some(Location {
                    line: 1,
                    column: column + 3,
                }),
            };
            column += arg.chars().count() + 1;
            input
        })
        .collect()
}

/// Loads and compiles; returns the rendered error, or panics if everything was accepted.
fn error_of(runbook: &SourceFile, inventory: &SourceFile, params: &[ParamInput]) -> String {
    let runbook = Runbook::load(runbook.clone());
    let cluster = Cluster::load(inventory.clone());
    match (runbook, cluster) {
        (Err(err), _) | (_, Err(err)) => err.to_string(),
        (Ok(runbook), Ok(cluster)) => match compile(&runbook, &cluster, params) {
            Err(err) => err.to_string(),
            Ok(_) => panic!("accepted, but it is in the corpus of bad input"),
        },
    }
}

fn cases(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    names
}

fn check(kind: &str, name: &str, bad: &SourceFile, rendered: &str) {
    let expect = header(bad.text(), "expect").expect("a corpus file starts with `# expect:`");
    assert!(
        rendered.contains(expect),
        "{kind}/{name}: expected the error to contain {expect:?}, got:\n{rendered}"
    );
    assert!(
        rendered.contains(&format!("--> {}:", bad.path().display()))
            || rendered.contains("--> command line:1:")
            || rendered.contains("--> tests/corpus/"),
        "{kind}/{name}: the error names no file, line and column:\n{rendered}"
    );
    assert!(
        !rendered.contains("panicked"),
        "{kind}/{name}: a panic is not an error message"
    );
    let snapshot = format!("{kind}__{}", name.trim_end_matches(".yaml"));
    insta::assert_snapshot!(snapshot, rendered);
}

#[test]
fn bad_runbooks_fail_with_located_errors() {
    let inventory = source("tests/corpus/inventory.yaml");
    let names = cases("tests/corpus/runbooks");
    assert!(
        names.len() >= 20,
        "the corpus has shrunk to {}",
        names.len()
    );
    for name in names {
        let bad = source(&format!("tests/corpus/runbooks/{name}"));
        let rendered = error_of(&bad, &inventory, &params(bad.text()));
        check("runbook", &name, &bad, &rendered);
    }
}

#[test]
fn bad_inventories_fail_with_located_errors() {
    let runbook = source("tests/corpus/runbook.yaml");
    for name in cases("tests/corpus/inventories") {
        let bad = source(&format!("tests/corpus/inventories/{name}"));
        let rendered = error_of(&runbook, &bad, &[]);
        check("inventory", &name, &bad, &rendered);
    }
}

#[test]
fn the_good_pair_compiles() {
    let runbook = Runbook::load(source("tests/corpus/runbook.yaml")).unwrap();
    let cluster = Cluster::load(source("tests/corpus/inventory.yaml")).unwrap();
    assert_eq!(compile(&runbook, &cluster, &[]).unwrap().summary().steps, 3);
}
