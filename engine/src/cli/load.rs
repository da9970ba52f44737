//! Loading a command's inputs: the runbook, the inventory and the `-p` parameter values, with
//! the problems of all of them reported together.

use std::io;
use std::path::Path;

use super::CliError;
use super::param_source;
use crate::diagnostic::{Diagnostic, DiagnosticSink, Diagnostics};
use crate::document::Document;
use crate::inventory::Cluster;
use crate::plan::ParamInput;
use crate::runbook::Runbook;
use crate::source::{Location, SourceFile};

/// Loads a runbook, an inventory and `-p` values, reporting the problems of all three together,
/// as the compiler does.
pub(crate) fn load_all(
    runbook: &Path,
    inventory: &Path,
    params: &[String],
) -> Result<(Document<Runbook>, Cluster, Vec<ParamInput>), CliError> {
    load_with(read(runbook)?, inventory, params)
}

/// Like [`load_all`], with the runbook's text already at hand (a built-in runbook).
pub(crate) fn load_with(
    runbook: SourceFile,
    inventory: &Path,
    params: &[String],
) -> Result<(Document<Runbook>, Cluster, Vec<ParamInput>), CliError> {
    let runbook = Runbook::load(runbook);
    let declared: Vec<&str> = match &runbook {
        Ok(runbook) => runbook.value.params.keys().map(String::as_str).collect(),
        Err(_) => Vec::new(),
    };
    let inputs = param_inputs(params, &declared);
    let cluster = Cluster::load(read_inventory(inventory)?);
    match (runbook, cluster, inputs) {
        (Ok(runbook), Ok(cluster), Ok(inputs)) => {
            let names = runbook.value.params.keys().map(String::as_str);
            let inputs = param_source::with_environment(names, inputs, param_source::process_env);
            Ok((runbook, cluster, inputs))
        }
        (runbook, cluster, inputs) => {
            let problems = [runbook.err(), cluster.err(), inputs.err()];
            let all = problems
                .into_iter()
                .flatten()
                .flat_map(|d| d.iter().cloned().collect::<Vec<_>>());
            Err(Diagnostics::new(all.collect()).into())
        }
    }
}

/// Turns `-p NAME=VALUE` arguments into parameter inputs, each located on its own synthetic
/// "command line" source (`-p NAME=VALUE`), so a bad value gets a caret under its argument.
///
/// No error shows the whole command line, nor an argument that may hold a secret: an argument
/// without a name, or without `=` unless it is one of the `declared` parameter names. The
/// compiler shows an argument's line only for a parameter it knows is not secret.
pub(crate) fn param_inputs(
    params: &[String],
    declared: &[&str],
) -> Result<Vec<ParamInput>, Diagnostics> {
    let mut sink = DiagnosticSink::default();
    let mut inputs = Vec::new();
    let mut stdin_taken = false;
    for (index, param) in params.iter().enumerate() {
        // Control characters are shown escaped so the line stays one line and columns stay true.
        let shown: String = param
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        let source = SourceFile::new("command line", format!("-p {shown}"));
        let location = Some(Location {
            line: 1,
            column: "-p ".len() + 1,
        });
        let argument = format!("`-p` argument {} of {}", index + 1, params.len());
        match param.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                let from = param_source::ValueSource::of(value);
                if matches!(from, param_source::ValueSource::Stdin) {
                    if stdin_taken {
                        sink.push(
                            Diagnostic::at(&source, location, "standard input is read once")
                                .hint("give one parameter with `@-`; the others with `@FILE` or `ETCDRILL_PARAM_<NAME>`"),
                        );
                        continue;
                    }
                    stdin_taken = true;
                }
                match from.read(&mut io::stdin().lock()) {
                    Ok(value) => inputs.push(ParamInput {
                        name: name.to_string(),
                        value: serde_yaml::Value::String(value),
                        source: source.clone(),
                        location,
                    }),
                    // Only `@FILE` and `@-` fail here, so the line shows a path, not a value.
                    Err(problem) => sink.push(
                        Diagnostic::at(&source, location, format!("parameter `{name}`: {problem}"))
                            .hint("`-p NAME=@FILE` reads the value from FILE, `-p NAME=@-` from standard input; write `@@` for a value that begins with `@`"),
                    ),
                }
            }
            Some(_) => sink.push(
                Diagnostic::at_unshown(&source, None, format!("{argument} has no name"))
                    .expected("NAME=VALUE")
                    .hint("the argument is not shown, as its value may be a secret"),
            ),
            None if declared.contains(&param.as_str()) => sink.push(
                Diagnostic::at(
                    &source,
                    location,
                    format!("parameter `{shown}` has no value"),
                )
                .expected("NAME=VALUE")
                .hint(format!("write `-p {shown}=VALUE`")),
            ),
            None => sink.push(
                Diagnostic::at_unshown(&source, None, format!("{argument} has no `=`"))
                    .expected("NAME=VALUE")
                    .hint(
                        "the argument is not shown, as it may be a secret given without its name",
                    ),
            ),
        }
    }
    sink.finish(inputs)
}

/// Reads a file given on the command line.
pub(super) fn read(path: &Path) -> Result<SourceFile, CliError> {
    SourceFile::read(path).map_err(|source| CliError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Reads the inventory file given with `-i`.
pub(crate) fn read_inventory(path: &Path) -> Result<SourceFile, CliError> {
    SourceFile::read(path).map_err(|source| CliError::ReadInventory {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(args: &[&str]) -> Result<Vec<ParamInput>, Diagnostics> {
        param_inputs(
            &args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            &["a"],
        )
    }

    #[test]
    fn params_are_located_at_their_argument() {
        let inputs = params(&["a=1", "snapshot=/x=y", "empty="]).unwrap();
        let cases = [
            ("a", "1", "-p a=1"),
            ("snapshot", "/x=y", "-p snapshot=/x=y"),
            ("empty", "", "-p empty="),
        ];
        assert_eq!(inputs.len(), cases.len());
        for (input, (name, value, line)) in inputs.iter().zip(cases) {
            assert_eq!(input.name, name);
            assert_eq!(input.value, serde_yaml::Value::String(value.into()));
            assert_eq!(input.location, Some(Location { line: 1, column: 4 }));
            assert_eq!(input.source.text(), line);
        }
    }

    #[test]
    fn malformed_params_show_no_argument_that_may_be_a_secret() {
        let cases = [
            (
                &["token=hunter2", "a"][..],
                "parameter `a` has no value",
                Some("-p a\n  |    ^"),
            ),
            (
                &["token=hunter2", "hunter3"][..],
                "`-p` argument 2 of 2 has no `=`",
                None,
            ),
            (&["=hunter2"][..], "`-p` argument 1 of 1 has no name", None),
        ];
        for (args, message, caret) in cases {
            let rendered = params(args).unwrap_err().to_string();
            assert!(rendered.contains(message), "{rendered}");
            assert!(rendered.contains("--> command line"), "{rendered}");
            if let Some(caret) = caret {
                assert!(rendered.contains(caret), "{rendered}");
            }
            assert!(!rendered.contains("hunter"), "{rendered}");
        }
    }

    #[test]
    fn control_characters_keep_the_line_one_line() {
        let inputs = params(&["a=x\ny", "b=2"]).unwrap();
        assert_eq!(inputs[0].value, serde_yaml::Value::String("x\ny".into()));
        assert_eq!(inputs[0].source.text(), "-p a=x\\ny");
    }
}
