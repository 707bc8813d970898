//! The interactive shell, driven for real in a terminal: tmux runs `shark` in a detached
//! session of a fixed size; the tests type keys and read the screen, polling with a timeout.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::TestEnv;

/// How long to wait for the screen to show something before failing.
const TIMEOUT: Duration = Duration::from_secs(15);

/// `shark` in a tmux session; the server is killed on drop.
struct Term {
    env: TestEnv,
    socket: PathBuf,
}

impl Term {
    /// Starts `shark ARGS` in the work directory. When shark exits, the pane prints
    /// `EXIT=<status>` and stays open.
    fn start(args: &str) -> Term {
        Term::with(args, |_| {})
    }

    /// Like [`Term::start`], after `setup` has prepared the environment (`HOME` is the
    /// `user` directory beside the work directory).
    fn with(args: &str, setup: impl FnOnce(&TestEnv)) -> Term {
        let env = TestEnv::new();
        setup(&env);
        let socket = env.work.parent().unwrap().join("tmux.sock");
        let user = env.work.parent().unwrap().join("user");
        let shark = env!("CARGO_BIN_EXE_shark");
        let command = format!(
            "env -i SHARK_HOME='{}' HOME='{}' PATH=/usr/local/bin:/usr/bin:/bin TERM=xterm \
             LANG=C.UTF-8 '{shark}' {args}; echo EXIT=$?; sleep 600",
            env.home.display(),
            user.display(),
        );
        let status = Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args([
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "100",
            ])
            .args(["-y", "30", "-c"])
            .arg(&env.work)
            .arg(command)
            .status()
            .expect("tmux runs (test.sh installs it: apt-get install tmux)");
        assert!(status.success(), "tmux new-session failed");
        let term = Term { env, socket };
        term.wait_for(|s| s.lines().any(is_prompt));
        term
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` literally.
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", text]);
    }

    /// Sends named keys (`Enter`, `Left`, `C-c`, `Tab`, ...).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend(keys);
        self.tmux(&args);
    }

    /// Types a line, presses Enter and waits for the next prompt. (Keys typed while a command
    /// runs go to the command's terminal, as with ssh, so tests wait before typing on.)
    fn line(&self, text: &str) {
        self.type_text(text);
        self.enter();
    }

    /// Presses Enter and waits for the next prompt.
    fn enter(&self) {
        self.keys_then_prompt(&["Enter"]);
    }

    /// Sends `keys` and waits for the next prompt.
    fn keys_then_prompt(&self, keys: &[&str]) {
        let before = self.prompts();
        self.keys(keys);
        let start = Instant::now();
        while self.prompts() <= before || !self.at_prompt() {
            assert!(
                start.elapsed() < TIMEOUT,
                "no new prompt; the screen was:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many prompts the pane has shown, scrollback included.
    fn prompts(&self) -> usize {
        let all = self.tmux(&["capture-pane", "-p", "-t", "t", "-S", "-2000"]);
        let work = self.env.work.display().to_string();
        all.lines()
            .filter(|l| l.starts_with(&work) && (l.contains(" $") || l.contains(" #")))
            .count()
    }

    /// Whether the last line on the screen is an empty prompt.
    fn at_prompt(&self) -> bool {
        let screen = self.screen();
        screen
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .is_some_and(is_prompt)
    }

    /// The visible screen.
    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "t"])
    }

    /// Polls the screen until `ready` holds; panics with the screen after [`TIMEOUT`].
    fn wait_for(&self, ready: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "timed out; the screen was:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Ctrl-R until the search line shows: a Ctrl-R that arrives while the terminal is still
    /// in cooked mode, between a command and the editor, is the line discipline's (reprint).
    fn start_search(&self) {
        let start = Instant::now();
        while !self.screen().contains("reverse-search") {
            assert!(start.elapsed() < TIMEOUT, "no search:\n{}", self.screen());
            self.keys(&["C-r"]);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.env.work.join(rel)
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

/// Whether a screen line is an empty prompt (capture-pane drops trailing blanks).
fn is_prompt(line: &str) -> bool {
    let l = line.trim_end();
    l.ends_with(" $") || l.ends_with(" #")
}

/// The lines of `screen` that are exactly `text` (command output, not the echoed command).
fn output_lines(screen: &str, text: &str) -> usize {
    screen.lines().filter(|l| l.trim_end() == text).count()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn lines_run_and_state_carries() {
    let t = Term::start("");
    std::fs::create_dir(t.path("sub")).unwrap();
    t.line("x=41; cd sub");
    t.line("echo $((x + 1)) $PWD");
    t.wait_for(|s| s.contains(&format!("42 {}", t.path("sub").display())));
    // The prompt shows the new cwd.
    let prompt = t.path("sub").display().to_string();
    t.wait_for(|s| s.lines().any(|l| is_prompt(l) && l.starts_with(&prompt)));
}

#[test]
fn editing_and_history() {
    let t = Term::start("");
    // Left arrow then insert: `echo wrld` becomes `echo world`.
    t.type_text("echo wrld");
    t.keys(&["Left", "Left", "Left"]);
    t.type_text("o");
    t.enter();
    t.wait_for(|s| output_lines(s, "world") == 1);
    t.line("echo second-entry");
    t.wait_for(|s| output_lines(s, "second-entry") == 1);
    // Up twice recalls `echo world`.
    t.keys(&["Up", "Up"]);
    t.enter();
    t.wait_for(|s| output_lines(s, "world") == 2);
    // Ctrl-R searches the history; Enter runs the match.
    t.start_search();
    t.type_text("second-e");
    t.wait_for(|s| s.contains("reverse-search"));
    t.keys_then_prompt(&["Enter"]);
    t.wait_for(|s| output_lines(s, "second-entry") == 2);
    // The history is kept in the shark home.
    let history = read(&t.env.home.join("history"));
    assert!(history.contains("echo second-entry"), "{history}");
}

#[test]
fn tab_completes_a_path() {
    let t = Term::start("");
    std::fs::write(t.path("longname-data.txt"), "completed!\n").unwrap();
    t.type_text("cat longn");
    t.keys(&["Tab"]);
    t.wait_for(|s| s.contains("cat longname-data.txt"));
    t.enter();
    t.wait_for(|s| output_lines(s, "completed!") == 1);
}

#[test]
fn an_unfinished_quote_asks_for_more() {
    let t = Term::start("");
    t.type_text("echo \"abc");
    t.keys(&["Enter"]);
    t.wait_for(|s| s.lines().any(|l| l.trim_end() == ">"));
    t.type_text("def\"");
    t.enter();
    t.wait_for(|s| output_lines(s, "abc") == 1 && output_lines(s, "def") == 1);
}

#[test]
fn ctrl_c_interrupts_the_command_not_the_shell() {
    let t = Term::start("");
    t.type_text("echo started; sleep 100");
    t.keys(&["Enter"]);
    t.wait_for(|s| output_lines(s, "started") == 1);
    // The sandbox may still be starting the sleep: send Ctrl-C until it is gone.
    let start = Instant::now();
    while !t.screen().contains("[exit 130]") {
        assert!(
            start.elapsed() < TIMEOUT,
            "not interrupted:\n{}",
            t.screen()
        );
        t.keys(&["C-c"]);
        std::thread::sleep(Duration::from_millis(200));
    }
    t.line("echo still-here");
    t.wait_for(|s| output_lines(s, "still-here") == 1);
    // Ctrl-C at the prompt clears the line.
    t.type_text("echo never");
    t.wait_for(|s| s.contains("echo never"));
    t.keys(&["C-c"]);
    // The line editor abandons the line and draws a fresh prompt; type only once it has.
    t.wait_for(|s| {
        s.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .is_some_and(is_prompt)
    });
    t.line("echo cleared");
    t.wait_for(|s| output_lines(s, "cleared") == 1);
    assert_eq!(output_lines(&t.screen(), "never"), 0);
}

#[test]
fn a_reused_line_says_so_and_exit_leaves_with_its_status() {
    let t = Term::start("");
    std::fs::write(t.path("f.txt"), "content-of-f\n").unwrap();
    // The first line moves the session from the process's state to a dumped one.
    t.line("true");
    t.line("cat f.txt");
    t.wait_for(|s| output_lines(s, "content-of-f") == 1);
    t.line("cat f.txt");
    t.wait_for(|s| output_lines(s, "content-of-f") == 2);
    t.wait_for(|s| s.contains("[reused, saved "));
    t.type_text("exit 3");
    t.keys(&["Enter"]);
    t.wait_for(|s| s.contains("EXIT=3"));
}

#[test]
fn ctrl_d_leaves_with_the_last_status() {
    let t = Term::start("");
    t.line("false");
    t.wait_for(|s| s.contains("[exit 1]"));
    t.keys(&["C-d"]);
    t.wait_for(|s| s.contains("EXIT=1"));
}

#[test]
fn less_works_and_quits() {
    let t = Term::start("");
    let lines: String = (1..=200).map(|i| format!("line {i}\n")).collect();
    std::fs::write(t.path("nums.txt"), lines).unwrap();
    t.type_text("less nums.txt");
    t.keys(&["Enter"]);
    // A full screen of the file, and not all of it: less is paging, not cat-ing.
    t.wait_for(|s| s.contains("line 29") && !s.contains("line 31"));
    t.keys_then_prompt(&["q"]);
    t.line("echo after-less");
    t.wait_for(|s| output_lines(s, "after-less") == 1);
}

#[test]
fn a_line_that_read_the_terminal_is_never_reused() {
    let t = Term::start("");
    t.line("true");
    for (i, word) in ["first", "second"].iter().enumerate() {
        // `head` reads the terminal; the line sets no variable, so its state key is the same.
        t.type_text("head -n 1 > typed.txt; echo wrote");
        t.keys(&["Enter"]);
        // Wait for the command to start before typing its input.
        std::thread::sleep(Duration::from_millis(300));
        t.type_text(word);
        t.enter();
        t.wait_for(|s| output_lines(s, "wrote") == i + 1);
        t.wait_for(|_| read(&t.path("typed.txt")) == format!("{word}\n"));
    }
    let log = t.env.log();
    let last = log.last().unwrap();
    assert_eq!(last["cached"].as_bool(), Some(false), "{last}");
}

#[test]
fn escape_hatches_and_help() {
    let t = Term::start("");
    t.line("help");
    t.wait_for(|s| s.contains("host: LINE"));
    t.line("y=7");
    t.line("host: echo \"host-$y\" > host.txt");
    t.wait_for(|_| read(&t.path("host.txt")) == "host-7\n");
    let before = t.env.log().len();
    t.line("fresh: echo fresh-run");
    t.wait_for(|s| output_lines(s, "fresh-run") == 1);
    t.line("fresh: echo fresh-run");
    t.wait_for(|s| output_lines(s, "fresh-run") == 2);
    let log = t.env.log();
    // Two recorded runs for the two fresh lines, none for host:, and neither fresh one reused.
    assert_eq!(log.len(), before + 2, "{log:?}");
    assert!(log.iter().rev().take(2).all(|r| r["cached"] == false));
}

#[test]
fn a_login_shell_reads_the_profile_then_sharkrc() {
    let t = Term::with("-l", |env| {
        let config = env.work.parent().unwrap().join("user/.config/shark");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(config.join("profile"), "export FROM_PROFILE=p\n").unwrap();
        std::fs::write(
            config.join("sharkrc"),
            "from_rc() { echo \"rc:$FROM_PROFILE\"; }\n",
        )
        .unwrap();
    });
    t.line("from_rc");
    t.wait_for(|s| output_lines(s, "rc:p") == 1);
}

#[test]
fn history_expansion_and_the_history_builtin() {
    let t = Term::start("");
    t.line("echo first-entry");
    t.line("echo !!");
    // bash prints the expanded line, then runs it.
    t.wait_for(|s| output_lines(s, "echo echo first-entry") == 1);
    t.wait_for(|s| output_lines(s, "echo first-entry") == 1);
    t.line("history | tail -n 3");
    t.wait_for(|s| {
        s.lines()
            .any(|l| l.trim_end().ends_with("  echo echo first-entry"))
    });
    t.wait_for(|s| {
        s.lines()
            .any(|l| l.trim_end().ends_with("  history | tail -n 3"))
    });
}

#[test]
fn ctrl_r_then_enter_runs_the_match() {
    let t = Term::start("");
    t.line("echo searched-for");
    t.line("echo other");
    t.start_search();
    t.type_text("searched");
    t.wait_for(|s| s.contains("reverse-search: searched) echo searched-for"));
    t.keys_then_prompt(&["Enter"]);
    t.wait_for(|s| output_lines(s, "searched-for") == 2);
}

#[test]
fn lines_typed_while_a_command_runs_run_after_it() {
    let t = Term::start("");
    t.type_text("sleep 1; echo slept");
    t.keys(&["Enter"]);
    // Typed while `sleep` runs: a whole line, then the start of another.
    std::thread::sleep(Duration::from_millis(300));
    t.type_text("echo typed-ahead");
    t.keys(&["Enter"]);
    t.type_text("echo unfinis");
    t.wait_for(|s| output_lines(s, "typed-ahead") == 1);
    // The unfinished line waits in the editor.
    t.type_text("hed");
    t.enter();
    t.wait_for(|s| output_lines(s, "unfinished") == 1);
}

#[test]
fn completion_of_directories_and_of_nothing() {
    let t = Term::start("");
    std::fs::create_dir(t.path("subdir")).unwrap();
    std::fs::write(t.path("subfile"), "").unwrap();
    t.type_text("cd su");
    t.keys(&["Tab"]);
    t.wait_for(|s| s.contains("cd subdir/"));
    t.keys(&["C-u"]);
    t.type_text("cat zzz-nothing");
    t.keys(&["Tab"]);
    std::thread::sleep(Duration::from_millis(300));
    let screen = t.screen();
    assert!(!screen.contains("NO RECORDS"), "{screen}");
    assert!(screen.contains("cat zzz-nothing"), "{screen}");
}

#[test]
fn piped_input_runs_as_in_bash_i() {
    let env = TestEnv::new();
    let out = crate::common::with_stdin(
        env.shark().arg("-i"),
        b"echo one\nread x\nread by read\necho \"x=$x\"\necho !!\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "one\nx=read by read\necho x=read by read\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("# echo one\n") || err.contains("$ echo one\n"),
        "{err}"
    );
    assert!(err.contains("echo echo \"x=$x\"\n"), "{err}");
    assert!(err.ends_with("exit\n"), "{err}");
}
