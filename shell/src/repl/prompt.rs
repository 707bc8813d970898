//! The prompt: the working directory (`~` for `$HOME`), then what the last line did —
//! `[reused, saved 2.1 s]` when a recorded run was reused, `[ran 3.4 s]` when it ran for a
//! second or more — and `[exit N]` when its status was not 0; `$ ` (or `# ` for root).

use std::borrow::Cow;
use std::path::Path;

use reedline::{Color, Prompt, PromptEditMode, PromptHistorySearch, PromptHistorySearchStatus};

use super::Ran;
use crate::commands::query::human_duration;
use crate::state::ShellState;

/// Runs shorter than this are not mentioned: every line runs, saying so adds nothing.
const MENTION_RUN: std::time::Duration = std::time::Duration::from_secs(1);

/// What the last line did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Last {
    /// Its exit status.
    pub(crate) code: i32,
    /// Whether it ran or was reused; `None` for builtins and `host:` lines.
    pub(crate) ran: Option<Ran>,
}

/// The prompt for one line.
#[derive(Debug)]
pub(crate) struct SharkPrompt {
    left: String,
    indicator: &'static str,
}

impl SharkPrompt {
    pub(crate) fn new(state: &ShellState, last: Last) -> SharkPrompt {
        let home = state
            .env
            .iter()
            .find(|(k, _)| k == "HOME")
            .map(|(_, v)| Path::new(v).to_path_buf());
        let mut left = tilde(&state.cwd, home.as_deref());
        match last.ran {
            Some(Ran::Reused(saved)) => {
                left.push_str(&format!(" [reused, saved {}]", human_duration(saved)))
            }
            Some(Ran::Ran(took)) if took >= MENTION_RUN => {
                left.push_str(&format!(" [ran {}]", human_duration(took)))
            }
            _ => {}
        }
        if last.code != 0 {
            left.push_str(&format!(" [exit {}]", last.code));
        }
        let indicator = if nix::unistd::geteuid().is_root() {
            " # "
        } else {
            " $ "
        };
        SharkPrompt { left, indicator }
    }
}

impl SharkPrompt {
    /// The prompt as plain text (for an interactive shell without a terminal).
    pub(crate) fn text(&self) -> String {
        format!("{}{}", self.left, self.indicator)
    }
}

/// `path` with a leading `home` written `~`.
pub(crate) fn tilde(path: &Path, home: Option<&Path>) -> String {
    match home.filter(|h| !h.as_os_str().is_empty() && *h != Path::new("/")) {
        Some(h) => match path.strip_prefix(h) {
            Ok(rest) if rest.as_os_str().is_empty() => "~".into(),
            Ok(rest) => format!("~/{}", rest.display()),
            Err(_) => path.display().to_string(),
        },
        None => path.display().to_string(),
    }
}

impl Prompt for SharkPrompt {
    fn render_prompt_left(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.left)
    }

    fn render_prompt_right(&self) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn render_prompt_indicator(&self, _mode: PromptEditMode) -> Cow<'_, str> {
        Cow::Borrowed(self.indicator)
    }

    fn render_prompt_multiline_indicator(&self) -> Cow<'_, str> {
        Cow::Borrowed("> ")
    }

    fn render_prompt_history_search_indicator(&self, search: PromptHistorySearch) -> Cow<'_, str> {
        let failing = match search.status {
            PromptHistorySearchStatus::Passing => "",
            PromptHistorySearchStatus::Failing => "failing ",
        };
        Cow::Owned(format!("({failing}reverse-search: {}) ", search.term))
    }

    fn get_prompt_color(&self) -> Color {
        Color::Cyan
    }

    fn get_indicator_color(&self) -> Color {
        Color::Default
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn state(cwd: &str) -> ShellState {
        ShellState {
            env: vec![("HOME".into(), "/home/u".into())],
            cwd: cwd.into(),
            ..ShellState::default()
        }
    }

    #[test]
    fn cwd_status_and_reuse() {
        let p = SharkPrompt::new(&state("/home/u/src"), Last::default());
        assert_eq!(p.left, "~/src");
        let last = Last {
            code: 3,
            ran: Some(Ran::Reused(Duration::from_millis(2100))),
        };
        let p = SharkPrompt::new(&state("/home/u"), last);
        assert_eq!(p.left, "~ [reused, saved 2.1 s] [exit 3]");
        let last = Last {
            code: 0,
            ran: Some(Ran::Ran(Duration::from_millis(20))),
        };
        assert_eq!(SharkPrompt::new(&state("/home/uu"), last).left, "/home/uu");
    }
}
