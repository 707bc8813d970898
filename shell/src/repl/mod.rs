//! The interactive shell: `shark` with no arguments on a terminal (or `shark -i`).
//!
//! Each line the user enters is classified ([`input`]), then acted on: a shark builtin
//! (`help`), a command run outside the sandbox (`host: CMD`), or a bash line run (or reused)
//! through a [`Session`], which carries the shell state from line to line. The line editor is
//! reedline, with a history file ([`files`]), completion of commands and paths ([`complete`]),
//! multi-line input for unfinished commands ([`script::is_complete`]) and a prompt showing the
//! cwd, the last status and whether the last line ran or was reused ([`prompt`]).
//!
//! Signals: at the prompt the terminal is raw, so Ctrl-C is a key that clears the line. While a
//! command runs, the terminal's Ctrl-C sends SIGINT to the whole foreground process group, which
//! holds the sandboxed command as well as shark; shark only notes it ([`signals`]), the command
//! (whose dispositions the sandbox resets) is interrupted.

mod complete;
pub(crate) mod files;
mod input;
mod prompt;
mod signals;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reedline::{
    default_emacs_keybindings, ColumnarMenu, Emacs, FileBackedHistory, KeyCode, KeyModifiers,
    MenuBuilder, Reedline, ReedlineEvent, ReedlineMenu, Signal, ValidationResult, Validator,
};

use crate::error::CliError;
use crate::home::Home;
use crate::script;
use crate::session::{LineOptions, Session};
use input::Action;
use prompt::{Last, SharkPrompt};

/// How many lines the history file keeps.
const HISTORY_SIZE: usize = 10_000;

/// Runs the interactive shell; `login` when started as a login shell (`-l`, or argv[0]
/// starting with `-`). Returns the status to exit with.
pub(crate) fn run(home: &Home, login: bool) -> Result<i32, CliError> {
    let interrupted = signals::install()?;
    let session = Session::open(home, Vec::new())?;
    let context = Arc::new(Mutex::new(complete::Context::of(&session.state)));
    let mut shell = Shell {
        session,
        context: context.clone(),
        last: Last::default(),
        interrupted,
    };
    for file in files::startup(login) {
        let line = format!(
            "source {}",
            crate::state::single_quote(&file.to_string_lossy())
        );
        if let Some(code) = shell.line(&line, LineOptions::default()) {
            return Ok(code);
        }
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Ok(shell.piped());
    }
    let mut editor = editor(home, context)?;
    loop {
        let prompt = SharkPrompt::new(&shell.session.state, shell.last);
        match editor.read_line(&prompt) {
            Ok(Signal::Success(text)) => {
                // Written before the line runs, so it is kept even if shark is killed meanwhile.
                let _ = editor.sync_history();
                if let Some(code) = shell.act(input::classify(&text)) {
                    return Ok(code);
                }
            }
            // The line is cleared; bash also sets $? to 130, but nothing ran.
            Ok(Signal::CtrlC) => {}
            Ok(Signal::CtrlD) => return Ok(shell.last.code),
            Ok(_) => {}
            Err(e) => return Err(CliError::failed("cannot read from the terminal", e)),
        }
    }
}

/// The shell between two prompts.
struct Shell {
    session: Session,
    context: Arc<Mutex<complete::Context>>,
    last: Last,
    interrupted: Arc<std::sync::atomic::AtomicBool>,
}

impl Shell {
    /// Acts on one entered line; `Some(code)` when the shell is to exit.
    fn act(&mut self, action: Action) -> Option<i32> {
        match action {
            Action::Nothing => None,
            Action::Help => {
                print!("{}", input::HELP);
                self.last = Last::default();
                None
            }
            Action::Host(command) => {
                let code = input::run_host(&command, &self.session.state);
                self.last = Last {
                    code,
                    ..Last::default()
                };
                None
            }
            Action::Line {
                text,
                fresh,
                network,
            } => self.line(&text, LineOptions { fresh, network }),
        }
    }

    /// `shark -i` with stdin not a terminal: no editor or prompt; each complete command read
    /// from stdin is classified and acted on as if typed. The commands read `/dev/null`: all
    /// of stdin is the shell's input. Returns the status to exit with.
    fn piped(&mut self) -> i32 {
        let text = std::io::read_to_string(std::io::stdin()).unwrap_or_default();
        if let Ok(null) = std::fs::File::open("/dev/null") {
            let _ = nix::unistd::dup2_stdin(null);
        }
        let mut pending = String::new();
        for line in text.lines() {
            pending.push_str(line);
            if !script::is_complete(&pending) {
                pending.push('\n');
                continue;
            }
            let text = std::mem::take(&mut pending);
            if let Some(code) = self.act(input::classify(&text)) {
                return code;
            }
        }
        self.last.code
    }

    /// Runs one line in the session; `Some(code)` when it ended the shell.
    fn line(&mut self, text: &str, opts: LineOptions) -> Option<i32> {
        self.interrupted
            .store(false, std::sync::atomic::Ordering::SeqCst);
        match self.session.run_line(text, opts) {
            Ok(result) => {
                let interrupted = self.interrupted.load(std::sync::atomic::Ordering::SeqCst);
                if interrupted {
                    // The terminal echoed ^C; start the next prompt on a line of its own.
                    println!();
                }
                self.last = Last {
                    code: result.code,
                    ran: Some(
                        result
                            .reused
                            .map_or(Ran::Ran(result.took), |(_, saved)| Ran::Reused(saved)),
                    ),
                };
                if let Ok(mut ctx) = self.context.lock() {
                    *ctx = complete::Context::of(&self.session.state);
                }
                // bash killed by Ctrl-C still runs its EXIT trap, which looks like `exit`; an
                // interactive shell survives its commands' interruptions.
                let killed = interrupted && result.code == 128 + libc::SIGINT;
                (result.exited && !killed).then_some(result.code)
            }
            Err(e) => {
                let code = e.report();
                self.last = Last {
                    code,
                    ..Last::default()
                };
                None
            }
        }
    }
}

/// How the last line was executed, for the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ran {
    /// It ran, taking this long.
    Ran(Duration),
    /// A recorded run was reused, which had taken this long.
    Reused(Duration),
}

/// The line editor: emacs keys, Tab completion menu, Ctrl-R history search, history file,
/// multi-line input while the command is incomplete.
fn editor(home: &Home, context: Arc<Mutex<complete::Context>>) -> Result<Reedline, CliError> {
    let path = files::history(home);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let history = FileBackedHistory::with_file(HISTORY_SIZE, path.clone()).map_err(|e| {
        CliError::failed(
            format!("cannot open the history file {}", path.display()),
            e,
        )
    })?;
    let mut keys = default_emacs_keybindings();
    keys.add_binding(
        KeyModifiers::NONE,
        KeyCode::Tab,
        ReedlineEvent::UntilFound(vec![
            ReedlineEvent::Menu("completion_menu".into()),
            ReedlineEvent::MenuNext,
        ]),
    );
    let menu = ColumnarMenu::default().with_name("completion_menu");
    Ok(Reedline::create()
        .with_history(Box::new(history))
        .with_history_exclusion_prefix(Some(" ".into()))
        .with_completer(Box::new(complete::ShellCompleter::new(context)))
        .with_quick_completions(true)
        .with_partial_completions(true)
        .with_menu(ReedlineMenu::EngineCompleter(Box::new(menu)))
        .with_edit_mode(Box::new(Emacs::new(keys)))
        .with_validator(Box::new(BashValidator)))
}

/// Asks for another line while the input is not a complete bash command.
struct BashValidator;

impl Validator for BashValidator {
    fn validate(&self, line: &str) -> ValidationResult {
        if script::is_complete(line) {
            ValidationResult::Complete
        } else {
            ValidationResult::Incomplete
        }
    }
}
