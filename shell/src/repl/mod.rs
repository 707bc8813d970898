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
//! (whose dispositions the sandbox resets, but for those shark itself was started with
//! ignored) is interrupted.

mod complete;
pub(crate) mod files;
mod history;
mod input;
mod prompt;
mod search;
mod signals;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reedline::{
    default_emacs_keybindings, ColumnarMenu, EditCommand, Emacs, FileBackedHistory, History,
    HistoryItem, KeyCode, KeyModifiers, MenuBuilder, Reedline, ReedlineEvent, ReedlineMenu,
    SearchDirection, SearchQuery, Signal, ValidationResult, Validator,
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
    let mut session = Session::open(home, Vec::new())?;
    let history = files::history(home);
    // The history file is read in the sandbox only where it is left out of what a run
    // reads: in the shark home.
    session.mode = crate::session::Mode::Interactive {
        history: history.starts_with(home.root()).then_some(history),
    };
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
        return shell.piped(home);
    }
    let mut editor = editor(home, context)?;
    let mut ahead: Vec<String> = Vec::new();
    loop {
        let prompt = SharkPrompt::new(&shell.session.state, shell.last);
        // Lines typed while the last command ran come first, as in bash.
        if !ahead.is_empty() {
            let line = ahead.remove(0);
            println!("{}{line}", prompt.text());
            let _ = editor
                .history_mut()
                .save(HistoryItem::from_command_line(line.clone()));
            if let Some(text) = history::expand_entered(editor.history_mut(), &line) {
                if let Some(code) = shell.act(input::classify(&text)) {
                    return Ok(code);
                }
            }
            ahead.extend(typed_ahead(&mut editor));
            continue;
        }
        let read = editor.read_line(&prompt);
        match read {
            Ok(Signal::Success(text)) => {
                let Some(text) = history::expand_entered(editor.history_mut(), &text) else {
                    continue;
                };
                if let Some(code) = shell.act(input::classify(&text)) {
                    return Ok(code);
                }
                ahead.extend(typed_ahead(&mut editor));
            }
            Ok(Signal::HostCommand(command)) if command == SEARCH => {
                if let Some(code) = shell.search(&mut editor, &prompt) {
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

/// What Ctrl-R asks of the loop around the line editor.
const SEARCH: &str = "\u{1}shark-history-search";

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

    /// `shark -i` with stdin not a terminal, as `bash -i`: each complete command read from
    /// stdin is echoed after the prompt on stderr, expanded, recorded in the history and run;
    /// the commands read what follows them on stdin. At the end, `exit` on stderr.
    fn piped(&mut self, home: &Home) -> Result<i32, CliError> {
        let scratch = home.root().join("tmp");
        crate::exec::stdio::shared_stdin_offset(&scratch)
            .map_err(|e| CliError::failed("cannot read standard input", e))?;
        let path = files::history(home);
        let file = FileBackedHistory::with_file(HISTORY_SIZE, path.clone()).map_err(|e| {
            CliError::failed(
                format!("cannot open the history file {}", path.display()),
                e,
            )
        })?;
        let mut history = history::ShellHistory::new(file);
        let mut pending = String::new();
        loop {
            let prompt = match pending.is_empty() {
                true => SharkPrompt::new(&self.session.state, self.last).text(),
                false => "> ".to_owned(),
            };
            eprint!("{prompt}");
            let Some(line) = read_stdin_line() else {
                eprintln!("exit");
                return Ok(self.last.code);
            };
            eprintln!("{line}");
            pending.push_str(&line);
            if !script::is_complete(&pending) {
                pending.push('\n');
                continue;
            }
            let text = std::mem::take(&mut pending);
            if text.trim().is_empty() {
                continue;
            }
            let _ = history.save(HistoryItem::from_command_line(text.clone()));
            let Some(text) = history::expand_entered(&mut history, &text) else {
                continue;
            };
            if let Some(code) = self.act(input::classify(&text)) {
                return Ok(code);
            }
        }
    }

    /// What completion knows: the session's state and the latest runs.
    fn refresh_context(&self) {
        let mut fresh = complete::Context::of(&self.session.state);
        let recent = self.session.executor().db().recent(50).unwrap_or_default();
        fresh.runs = recent
            .into_iter()
            .map(|r| (r.id.0.to_string(), r.command))
            .collect();
        if let Ok(mut ctx) = self.context.lock() {
            *ctx = fresh;
        }
    }

    /// Ctrl-R: searches the history; runs the match (recording it in the history) or puts it
    /// in the editor. `Some(code)` when the line ran ended the shell.
    fn search(&mut self, editor: &mut Reedline, prompt: &SharkPrompt) -> Option<i32> {
        let query = SearchQuery::everything(SearchDirection::Forward, None);
        let items = editor.history().search(query).unwrap_or_default();
        let entries: Vec<String> = items.into_iter().map(|i| i.command_line).collect();
        match search::run(&entries) {
            Ok(search::Outcome::Run(line)) => {
                println!("{}{line}", prompt.text());
                let _ = editor
                    .history_mut()
                    .save(HistoryItem::from_command_line(line.clone()));
                let _ = editor.sync_history();
                self.act(input::classify(&line))
            }
            Ok(search::Outcome::Edit(line)) => {
                editor.run_edit_commands(&[EditCommand::Clear, EditCommand::InsertString(line)]);
                None
            }
            Ok(search::Outcome::Cancel) | Err(_) => None,
        }
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
                self.refresh_context();
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

/// The lines typed while the last command ran and not read by it; a last unfinished one goes
/// into the editor, to be finished.
fn typed_ahead(editor: &mut Reedline) -> Vec<String> {
    let typed = crate::exec::stdio::take_typed_ahead();
    if typed.is_empty() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&typed).replace('\r', "\n");
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let partial = lines.pop().unwrap_or_default();
    if !partial.is_empty() {
        editor.run_edit_commands(&[EditCommand::InsertString(partial)]);
    }
    lines.retain(|l| !l.trim().is_empty());
    lines
}

/// One line of stdin (a regular file, shared with the commands), without its newline; the
/// file is left just after it. `None` at the end.
fn read_stdin_line() -> Option<String> {
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match nix::unistd::read(stdin.as_fd(), &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(nl) = buf[..n].iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&buf[..nl]);
            let back = i64::try_from(n - nl - 1).unwrap_or(0);
            let _ = nix::unistd::lseek(stdin.as_fd(), -back, nix::unistd::Whence::SeekCur);
            return Some(String::from_utf8_lossy(&line).into_owned());
        }
        line.extend_from_slice(&buf[..n]);
    }
    (!line.is_empty()).then(|| String::from_utf8_lossy(&line).into_owned())
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
        KeyModifiers::CONTROL,
        KeyCode::Char('r'),
        ReedlineEvent::ExecuteHostCommand(SEARCH.into()),
    );
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
        .with_history(Box::new(history::ShellHistory::new(history)))
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
