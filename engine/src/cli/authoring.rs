//! The commands that touch no network and no node: `plan` (a dry run whose only side effect is the
//! file named by `--out`), `validate` and `schema`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::CliError;
use super::load::{load_all, read};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::document::Document;
use crate::format::Format;
use crate::inventory::Cluster;
use crate::plan::compile;
use crate::runbook::Runbook;
use crate::schema;

/// Arguments of `etcdrill plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The runbook file.
    pub runbook: PathBuf,
    /// The inventory file of the cluster to plan for.
    #[arg(short, long, value_name = "FILE")]
    pub inventory: PathBuf,
    /// A parameter value; repeat for several.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Output format (`-o`/`--output` mean the same here as on every command).
    #[arg(
        long,
        short = 'o',
        visible_alias = "output",
        visible_short_alias = 'w',
        value_enum,
        default_value_t = Format::Text
    )]
    pub format: Format,
    /// Write the plan to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Arguments of `etcdrill validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Runbook and inventory files; the kind of each is told from its top-level keys.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Arguments of `etcdrill schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The directory to write the schemas into.
    #[arg(long, value_name = "DIR", default_value = "schemas")]
    pub out: PathBuf,
}

pub(super) fn plan(args: &PlanArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let (runbook, cluster, inputs) = load_all(&args.runbook, &args.inventory, &args.params)?;
    let plan = compile(&runbook, &cluster, &inputs)?;
    let rendered = args.format.render(&plan);
    match &args.out {
        Some(path) => std::fs::write(path, rendered).map_err(|source| CliError::Write {
            path: path.clone(),
            source,
        }),
        None => out.write_all(rendered.as_bytes()).map_err(CliError::Output),
    }
}

/// What a file given to `validate` turned out to be.
enum Checked {
    Runbook {
        name: String,
        steps: usize,
    },
    Inventory {
        name: String,
        nodes: usize,
    },
    Drill {
        name: String,
        runbook: String,
        inventory: String,
        steps: usize,
    },
}

pub(super) fn validate(
    args: &ValidateArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let mut failed = 0;
    for path in &args.files {
        let shown = path.display();
        let line = match check(path) {
            Ok(Checked::Runbook { name, steps }) => {
                format!("ok: {shown} (runbook {name}, {steps} steps)")
            }
            Ok(Checked::Inventory { name, nodes }) => {
                format!("ok: {shown} (inventory {name}, {nodes} nodes)")
            }
            Ok(Checked::Drill {
                name,
                runbook,
                inventory,
                steps,
            }) => {
                format!(
                    "ok: {shown} (drill {name}: runbook {runbook} on inventory {inventory}, {steps} plan steps)"
                )
            }
            Err(error) => {
                failed += 1;
                // A blank line keeps one file's problems apart from the next one's.
                writeln!(err, "{}", error.render()).map_err(CliError::Output)?;
                continue;
            }
        };
        writeln!(out, "{line}").map_err(CliError::Output)?;
    }
    match failed {
        0 => Ok(()),
        failed => Err(CliError::ValidationFailed {
            failed,
            total: args.files.len(),
        }),
    }
}

/// Loads a file as whatever its top-level keys say it is.
fn check(path: &Path) -> Result<Checked, CliError> {
    let source = read(path)?;
    let document = Document::<serde_yaml::Value>::parse(source.clone())?;
    let has = |key: &str| document.value.get(key).is_some();
    if has("steps") {
        let runbook = Runbook::load(source)?.value;
        Ok(Checked::Runbook {
            steps: runbook.steps.len(),
            name: runbook.name,
        })
    } else if has("nodes") {
        let cluster = Cluster::load(source)?;
        Ok(Checked::Inventory {
            name: cluster.inventory().name.clone(),
            nodes: cluster.nodes.len(),
        })
    } else if has("runbook") && has("inventory") {
        // A drill is checked whole: its inventory and runbook load and compile together.
        let prepared = crate::drill::prepare(path, None)?;
        Ok(Checked::Drill {
            name: prepared.drill.value.name.clone(),
            runbook: prepared.runbook.value.name.clone(),
            inventory: prepared.cluster.inventory().name.clone(),
            steps: prepared.plan.graph.node_count(),
        })
    } else {
        Err(Diagnostics::from(
            Diagnostic::at(&source, None, "cannot tell what kind of file this is").expected(
                "a runbook (a mapping with `steps`), an inventory (with `nodes`) or a drill (with `runbook` and `inventory`)",
            ),
        )
        .into())
    }
}

pub(super) fn write_schemas(args: &SchemaArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let failed = |path: &Path| {
        let path = path.to_owned();
        move |source| CliError::Write { path, source }
    };
    std::fs::create_dir_all(&args.out).map_err(failed(&args.out))?;
    for file in schema::files() {
        let path = args.out.join(file.name);
        std::fs::write(&path, file.content).map_err(failed(&path))?;
        writeln!(out, "wrote {}", path.display()).map_err(CliError::Output)?;
    }
    Ok(())
}
