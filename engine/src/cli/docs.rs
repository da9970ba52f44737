//! `etcdrill completions SHELL` and `etcdrill man`: the shell completion scripts and the man pages,
//! generated from the same command definitions as `--help`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::output::print;
use super::{Cli, CliError};

/// Arguments of `etcdrill completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Arguments of `etcdrill man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `etcdrill.1` and one `etcdrill-COMMAND.1` per command into this directory instead of
    /// printing `etcdrill.1`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `etcdrill completions SHELL`.
pub(super) fn completions(args: &CompletionsArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "etcdrill", &mut script);
    out.write_all(&script).map_err(CliError::Output)
}

/// `etcdrill man [--out DIR]`.
pub(super) fn man(args: &ManArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let command = Cli::command();
    match &args.out {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .map_err(CliError::Output)?;
            out.write_all(&page).map_err(CliError::Output)
        }
        Some(dir) => {
            let failed = |source| CliError::Write {
                path: dir.clone(),
                source,
            };
            std::fs::create_dir_all(dir).map_err(failed)?;
            clap_mangen::generate_to(command, dir).map_err(failed)?;
            let mut pages: Vec<String> = std::fs::read_dir(dir)
                .map_err(failed)?
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with("etcdrill") && name.ends_with(".1"))
                .collect();
            pages.sort();
            let text: String = pages
                .iter()
                .map(|name| format!("wrote {}\n", dir.join(name).display()))
                .collect();
            print(out, &text)
        }
    }
}
