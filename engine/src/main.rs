//! The `etcdrill` binary: parses the command line, runs the command and maps the outcome to an
//! exit code: 0 success, 1 invalid input or a failed command, 2 a usage error (reported by clap),
//! and for `diagnose` 3, 4 or 5 when its worst finding is a warning, urgent or critical.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use etcdrill::cli::{self, Cli, CliError};
use etcdrill::shown;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    // Neither stream is locked for the whole program: progress is drawn from other threads
    // (a live terminal's ticker), and a lock held here would make them wait for ever.
    let result = cli::run(cli, &mut io::stdout(), &mut io::stderr());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stopped reading (`etcdrill plan ... | head`) is not a failure.
        Err(CliError::Output(error)) if error.kind() == io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(error) => {
            // Nothing is left to report a failure to write standard error on.
            let _ = io::stderr().write_all(error.render().as_bytes());
            ExitCode::from(error.exit_code())
        }
    }
}

/// Reports a command line clap refused. Its message quotes the offending argument, which is text
/// from input: clap reports the same command line with control and invisible characters escaped
/// instead (coloured on a terminal, as ever), or, should that parse, the first error without
/// styling and escaped. Help and version are clap's to print.
fn usage_error(error: clap::Error) -> ExitCode {
    if !error.use_stderr() {
        error.exit();
    }
    let shown_args: Vec<String> = std::env::args_os()
        .map(|arg| shown::escape(&arg.to_string_lossy()).into_owned())
        .collect();
    if let Err(shown_error) = Cli::try_parse_from(&shown_args) {
        if shown_error.kind() == error.kind() {
            shown_error.exit();
        }
    }
    let message = error.render().to_string();
    let _ = io::stderr().write_all(shown::escape(&message).as_bytes());
    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
}
