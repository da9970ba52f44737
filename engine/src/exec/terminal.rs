//! The person's terminal while a run is going: the one owner of standard error's live lines and of
//! standard input's answers. Progress and questions both go through it, so a question never fights a
//! spinner for the screen, no thread waits on a lock another holds for the whole program, and a
//! question waiting for an answer still gives way to Ctrl-C or SIGTERM.

use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressDrawTarget};
use tokio::sync::{oneshot, watch};

/// A handle on the terminal; clones share it.
#[derive(Clone)]
pub struct Terminal {
    inner: Arc<Inner>,
}

struct Inner {
    /// Live lines on standard error, when it is a terminal.
    bars: Option<MultiProgress>,
    /// A line being read from standard input that nobody waits for any more (its question was
    /// interrupted); the next question takes it over rather than starting a second reader.
    pending: Mutex<Option<oneshot::Receiver<io::Result<String>>>>,
}

/// What a person answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `y` or `yes`, in any case.
    Yes,
    /// Anything else typed.
    No,
    /// Standard input ended (Ctrl-D, or a closed pipe) before a line was typed.
    EndOfInput,
    /// Ctrl-C or SIGTERM came while waiting.
    Interrupted,
}

impl Terminal {
    /// Live lines when standard error is a terminal, plain lines otherwise.
    pub fn detect() -> Self {
        let bars = io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self {
            inner: Arc::new(Inner {
                bars,
                pending: Mutex::new(None),
            }),
        }
    }

    /// The live lines, when standard error is a terminal.
    pub(crate) fn bars(&self) -> Option<&MultiProgress> {
        self.inner.bars.as_ref()
    }

    /// Whether a person can answer: standard input and standard error are both terminals.
    pub fn interactive(&self) -> bool {
        io::stdin().is_terminal() && io::stderr().is_terminal()
    }

    /// Prints a line on standard error, above the live lines when there are any. Best effort: a
    /// closed standard error must not fail a run.
    pub fn println(&self, line: &str) {
        // Text from input (titles, node names, command output) never drives the terminal.
        let line = &*crate::shown::escape(line);
        match self.bars() {
            Some(bars) => {
                let _ = bars.println(line);
            }
            None => {
                let _ = writeln!(io::stderr(), "{line}");
            }
        }
    }

    /// Asks `question` and waits for one line on standard input, or for `stop` to count a signal.
    /// The live lines are hidden while the question is on the screen.
    pub async fn ask(&self, question: &str, stop: &mut watch::Receiver<u32>) -> Answer {
        if *stop.borrow_and_update() > 0 {
            return Answer::Interrupted;
        }
        if let Some(bars) = self.bars() {
            let _ = bars.clear();
            bars.set_draw_target(ProgressDrawTarget::hidden());
        }
        let mut stderr = io::stderr();
        // A question quotes the runbook: it must read as what it says.
        let question = crate::shown::escape(question);
        let shown = write!(stderr, "{question}\nGo on? [y/N] ").and_then(|()| stderr.flush());
        let answer = if shown.is_err() {
            // If the question cannot be shown, no answer can be trusted.
            Answer::No
        } else {
            let mut line = self.take_pending().unwrap_or_else(read_line_in_background);
            tokio::select! {
                read = &mut line => match read {
                    Ok(Ok(text)) if text.is_empty() => Answer::EndOfInput,
                    Ok(Ok(text)) if matches!(text.trim().to_ascii_lowercase().as_str(), "y" | "yes") => Answer::Yes,
                    Ok(Ok(_)) => Answer::No,
                    // A read error or a reader that died: nobody can answer.
                    Ok(Err(_)) | Err(_) => Answer::EndOfInput,
                },
                _ = stop.changed() => {
                    self.keep_pending(line);
                    Answer::Interrupted
                }
            }
        };
        match answer {
            Answer::EndOfInput => {
                let _ = writeln!(stderr, "\n(end of input: taken as no)");
            }
            Answer::Interrupted => {
                let _ = writeln!(
                    stderr,
                    "\n(interrupted: nothing more starts; resume asks again)"
                );
            }
            Answer::Yes | Answer::No => {}
        }
        if let Some(bars) = self.bars() {
            bars.set_draw_target(ProgressDrawTarget::stderr());
        }
        answer
    }

    fn take_pending(&self) -> Option<oneshot::Receiver<io::Result<String>>> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    fn keep_pending(&self, line: oneshot::Receiver<io::Result<String>>) {
        *self
            .inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(line);
    }
}

/// Reads one line of standard input on a thread of its own. Not a runtime's blocking task: a read
/// that nobody answers must not keep the runtime (and so the program) from ending.
fn read_line_in_background() -> oneshot::Receiver<io::Result<String>> {
    let (sender, receiver) = oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = io::stdin().lock().read_line(&mut line).map(|_| line);
        let _ = sender.send(read);
    });
    receiver
}
