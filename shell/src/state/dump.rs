//! The end of a step's program, which writes the state the step left, and the reader of what
//! it wrote.
//!
//! The dump is a sequence of records, each three NUL-terminated fields: a tag, a name and a
//! payload (bash values cannot hold NUL bytes):
//!
//! | tag | name | payload |
//! |---|---|---|
//! | `v` | variable | its `declare -p` |
//! | `e` | exported variable | its value |
//! | `f` | function | its `declare -f` |
//! | `L` | function | `NAME LINE FILE`, where it was defined (`declare -F` with `extdebug`) |
//! | `F`, `a`, `o`, `t` | | `declare -Fx`, `alias -p`, `shopt -p` then `set +o`, `trap -p` |
//! | `-`, `u`, `c`, `s`, `_`, `P` | | `$-`, `umask`, `$PWD`, `$?`, `$_`, `PIPESTATUS` |
//! | `d`, `p` | | one entry of the directory stack, one positional parameter |
//! | `i` | | how many bytes of standard input the step read |
//! | `x` | descriptor | `MODE OFFSET PATH` of a file it has open (`exec 3< f`, `exec > log`), `>&1` or `>&2` |
//! | `z` | | (the end) |
//!
//! The dump's own variables are named `__shark_*` and never carried; it turns off `set -x`
//! before its first traced command, captures the traps before it removes DEBUG, ERR and
//! RETURN (which would run on its commands), and the options before it turns off those that
//! would break it (`errexit`, `nounset`, `noclobber`, `nocasematch`...).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use super::{ShellState, DUMP_NAME, NAMES_NAME};

/// Variables bash owns or that change on their own, and the dump's own: never carried.
const NOT_CARRIED: &str = "BASH|BASH_*|BASHOPTS|BASHPID|EUID|UID|PPID|SHELLOPTS|GROUPS|FUNCNAME\
|RANDOM|SRANDOM|SECONDS|LINENO|HISTCMD|EPOCHREALTIME|EPOCHSECONDS|PIPESTATUS|_|DIRSTACK|PWD\
|SHLVL|COMP_WORDBREAKS|COLUMNS|LINES|HOSTNAME|HOSTTYPE|MACHTYPE|OSTYPE|__shark_*";

/// The bash that follows a step's text (on a line of its own) and writes the state into the
/// folder `dir`. With `last`, the script's EXIT trap is left to fire when this bash exits; otherwise it is
/// removed first, since the script goes on in the next step.
///
/// With `stdin_at`, the offset of the step's standard input (a regular file, shared with
/// shark) when it started, the dump also says how much of it the step read.
pub fn postlude(last: bool, dir: &str, stdin_at: Option<u64>) -> String {
    let exit_trap = if last { "" } else { "builtin trap - EXIT\n" };
    let stdin = match stdin_at {
        Some(at) => format!(
            "  while builtin read -r -u 9 __shark_v __shark_n; do\n    \
             [[ $__shark_v == pos: ]] && builtin printf 'i\\0\\0%s\\0' \"$((__shark_n - {at}))\"\n  \
             done 9< /proc/self/fdinfo/0\n"
        ),
        None => String::new(),
    };
    format!(
        r#"{{ __shark_p=("${{PIPESTATUS[@]}}") __shark_s=$? __shark_a=$_ __shark_f=$-; builtin set +xv; }} 2>/dev/null
{{ builtin printf 't\0\0'; builtin trap -p; builtin printf '\0o\0\0'; builtin shopt -p; builtin set +o; builtin printf '\0'; }} >| {dir}/{DUMP_NAME} 2>/dev/null
builtin trap - DEBUG ERR RETURN
builtin set +euCfo pipefail
builtin shopt -u nocasematch nocaseglob failglob nullglob 2>/dev/null
__shark_x=()
for __shark_v in /proc/self/fd/*; do
  __shark_v=${{__shark_v##*/}}
  case $__shark_v in 0|255|*[!0-9]*) continue ;; esac
  [[ -e /proc/self/fd/$__shark_v ]] || continue
  if (( __shark_v <= 2 )) && [[ ! -f /proc/self/fd/$__shark_v ]]; then
    (( __shark_v == 2 )) && [[ ! -t 1 && /proc/self/fd/2 -ef /proc/self/fd/1 ]] && __shark_x+=("2" ">&1")
    continue
  fi
  builtin mapfile -t __shark_n < /proc/self/fdinfo/$__shark_v
  __shark_m=r __shark_o=0
  for __shark_l in "${{__shark_n[@]}}"; do
    case $__shark_l in
      pos:*) __shark_o=${{__shark_l##*[[:space:]]}} ;;
      flags:*)
        __shark_l=$(( 8#${{__shark_l##*[[:space:]]}} ))
        (( __shark_l & 1 )) && __shark_m=w
        (( __shark_l & 2 )) && __shark_m=rw
        (( __shark_l & 8#2000 )) && __shark_m=a
        # Close-on-exec: bash's own (the program it reads), not the script's.
        (( __shark_l & 8#2000000 )) && __shark_m=- ;;
    esac
  done
  [[ $__shark_m == - ]] && continue
  __shark_l=$(builtin command readlink -- /proc/$$/fd/$__shark_v 2>/dev/null)
  if [[ $__shark_l == pipe:* && $__shark_m == w ]]; then
    # A copy of the step's stdout or stderr (`exec 3>&1`), which the next step has too.
    if [[ ! -f /proc/self/fd/2 && /proc/self/fd/$__shark_v -ef /proc/self/fd/2 ]]; then
      __shark_x+=("$__shark_v" ">&2")
    else
      __shark_x+=("$__shark_v" ">&1")
    fi
    continue
  fi
  [[ $__shark_l == /* && $__shark_l != *" (deleted)" ]] || continue
  __shark_x+=("$__shark_v" "$__shark_m $__shark_o $__shark_l")
done
__shark_dump() {{
  local __shark_v
  local -a __shark_n=()
  # Every variable, set or only declared (`declare -A m`), from one listing; a line of a
  # value that looks like a declaration names nothing `declare -p` knows, and is skipped.
  builtin declare -p >| {dir}/{NAMES_NAME} 2>/dev/null
  builtin mapfile -t __shark_n < {dir}/{NAMES_NAME}
  for __shark_v in "${{__shark_n[@]}}"; do
    [[ $__shark_v == "declare -"* ]] || continue
    __shark_v=${{__shark_v#declare -* }}
    __shark_v=${{__shark_v%%=*}}
    case $__shark_v in
      {NOT_CARRIED}) ;;
      *)
        builtin printf 'v\0%s\0' "$__shark_v"; builtin declare -p -- "$__shark_v" 2>/dev/null; builtin printf '\0'
        case ${{!__shark_v@a}} in
          *[aA]*) ;;
          *x*) builtin printf 'e\0%s\0%s\0' "$__shark_v" "${{!__shark_v}}" ;;
        esac ;;
    esac
  done
  builtin declare -F >| {dir}/{NAMES_NAME} 2>/dev/null
  builtin mapfile -t __shark_n < {dir}/{NAMES_NAME}
  builtin shopt -s extdebug
  for __shark_v in "${{__shark_n[@]##* }}"; do
    case $__shark_v in
      __shark_*) ;;
      *)
        builtin printf 'f\0%s\0' "$__shark_v"; builtin declare -f -- "$__shark_v"; builtin printf '\0'
        builtin printf 'L\0%s\0' "$__shark_v"; builtin declare -F -- "$__shark_v"; builtin printf '\0' ;;
    esac
  done
  builtin shopt -u extdebug
  builtin printf 'F\0\0'; builtin declare -Fx; builtin printf '\0a\0\0'; builtin alias -p
  builtin printf '\0u\0\0'; builtin umask; builtin printf '\0'
  builtin printf 'c\0\0%s\0-\0\0%s\0s\0\0%s\0_\0\0%s\0P\0\0' "$PWD" "$__shark_f" "$__shark_s" "$__shark_a"
  builtin printf '%s ' "${{__shark_p[@]}}"; builtin printf '\0'

  for __shark_v in "${{DIRSTACK[@]:1}}"; do builtin printf 'd\0\0%s\0' "$__shark_v"; done
  (( ${{#__shark_x[@]}} )) && builtin printf 'x\0%s\0%s\0' "${{__shark_x[@]}}"
{stdin}}}
{{ __shark_dump; for __shark_v; do builtin printf 'p\0\0%s\0' "$__shark_v"; done; builtin printf 'z\0\0\0'; }} >> {dir}/{DUMP_NAME} 2>/dev/null
{exit_trap}builtin exit "$__shark_s"
"#
    )
}

/// Reads a dump; `None` if it is cut short or malformed.
pub fn parse(dump: &[u8]) -> Option<ShellState> {
    let mut fields = dump.split(|&b| b == 0);
    let mut state = ShellState {
        dumped: true,
        ..ShellState::default()
    };
    let mut cwd = None;
    loop {
        let (tag, name, payload) = (fields.next()?, fields.next()?, fields.next()?);
        let text = || trim_newline(payload).to_vec();
        match tag {
            b"z" => break,
            b"v" if !payload.is_empty() => {
                state.vars.insert(name.to_vec(), text());
            }
            b"v" => {}
            b"e" => state.env.push((
                OsString::from_vec(name.to_vec()),
                OsString::from_vec(payload.to_vec()),
            )),
            b"f" => {
                state.functions.insert(name.to_vec(), text());
            }
            b"L" => {
                // `NAME LINE FILE`: where the function was defined.
                let rest = payload
                    .strip_prefix(name)
                    .and_then(|r| r.strip_prefix(b" "));
                let mut parts = trim_newline(rest?).splitn(2, |&b| b == b' ');
                let line = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
                let file = parts.next().unwrap_or_default().to_vec();
                state.function_lines.insert(name.to_vec(), (line, file));
            }
            b"F" => state.exported_functions = text(),
            b"a" => state.aliases = text(),
            b"o" => state.options = text(),
            b"t" => state.traps = text(),
            b"-" => state.flags = payload.to_vec(),
            b"u" => state.umask = text(),
            b"c" => cwd = Some(PathBuf::from(OsString::from_vec(payload.to_vec()))),
            b"s" => state.status = std::str::from_utf8(payload).ok()?.parse().ok()?,
            b"_" => state.lastarg = payload.to_vec(),
            b"P" => {
                state.pipestatus = std::str::from_utf8(payload)
                    .ok()?
                    .split_ascii_whitespace()
                    .filter_map(|s| s.parse().ok())
                    .collect()
            }
            b"d" => state.dirstack.push(payload.to_vec()),
            b"p" => state.args.push(OsString::from_vec(payload.to_vec())),
            b"x" => state.fds.push((name.to_vec(), payload.to_vec())),
            b"i" => state.stdin_read = std::str::from_utf8(payload).ok()?.parse().ok()?,
            _ => return None,
        }
    }
    state.cwd = cwd?;
    Some(state)
}

fn trim_newline(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\n").unwrap_or(b)
}
