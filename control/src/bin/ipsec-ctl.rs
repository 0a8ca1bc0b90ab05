//! `ipsec-ctl`: the operator's CLI, IOS-style, over the ctl socket of `ipsec-control`.
//!
//! - `ipsec-ctl [--socket PATH] [--json] WORDS...` runs one command (`ipsec-ctl sh cr isa
//!   sa`) and exits with the server's exit code: 0, 1 for `% Invalid input` / `% Ambiguous
//!   command` / `% Incomplete command`, 2 when the command failed, 3 when the socket refused
//!   us, 4 for a protocol error, 5 when the daemon cannot be reached. A line ending in `?`
//!   prints the help for it. `ipsec-ctl debug crypto isakmp` stays connected and prints the
//!   trace until interrupted.
//! - Without words it is interactive: a `hostname#` prompt, line editing and history
//!   (`~/.ipsec-ctl_history`), `?` anywhere for help (the line is given back after it, as
//!   IOS does), Tab to complete a keyword, `exit` / `quit` / Ctrl-D to leave. Debug traces
//!   the session turned on are printed as they arrive.
//!
//! The line is parsed here too (the same `control::ctl::command` the server uses), so that
//! errors point their caret under the prompt's line and help needs no round trip.

use std::collections::HashSet;
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use clap::Parser;
use control::ctl::command::{self, Command, DebugFacility};
use control::ctl::protocol::{
    exit, read_frame, write_frame, Request, ServerMessage, DEFAULT_SOCKET, MAX_REPLY,
};
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Config, Context, Editor, Event, EventContext,
    EventHandler, ExternalPrinter, Helper, KeyEvent, RepeatCount,
};

#[derive(Parser)]
#[command(
    name = "ipsec-ctl",
    about = "Show, clear and debug the IPsec gateway the IOS way (sh cr isa sa, sh cr ipsec sa...)"
)]
struct Args {
    /// The ctl socket (`[ctl] socket` in the configuration).
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print show commands' views as JSON (the schema of control::ctl::view).
    #[arg(long)]
    json: bool,
    /// The command; none for an interactive session.
    #[arg(trailing_var_arg = true)]
    words: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let code = if args.words.is_empty() {
        interactive(&args)
    } else {
        one_shot(&args, &args.words.join(" "))
    };
    ExitCode::from(code as u8)
}

/// A connection whose hello was read.
struct Session {
    stream: UnixStream,
    hostname: String,
}

fn connect(path: &Path) -> Result<Session, i32> {
    let mut stream = UnixStream::connect(path).map_err(|e| {
        eprintln!(
            "% Cannot connect to ipsec-control at {}: {e}",
            path.display()
        );
        exit::UNREACHABLE
    })?;
    match read_frame::<ServerMessage>(&mut stream, MAX_REPLY) {
        Ok(ServerMessage::Hello { hostname, .. }) => Ok(Session { stream, hostname }),
        Ok(ServerMessage::Refused { reason }) => {
            eprintln!("{reason}");
            Err(exit::REFUSED)
        }
        Ok(other) => {
            eprintln!("% Unexpected message from ipsec-control: {other:?}");
            Err(exit::PROTOCOL)
        }
        Err(e) => {
            eprintln!("% ipsec-control closed the connection: {e}");
            Err(exit::PROTOCOL)
        }
    }
}

/// Runs the command of the arguments.
fn one_shot(args: &Args, line: &str) -> i32 {
    if let Some(before) = line.strip_suffix('?') {
        return match command::help(before) {
            Ok(text) => {
                print!("{text}");
                exit::OK
            }
            Err(e) => {
                eprint!("{}", e.render_with_line(before));
                exit::SYNTAX
            }
        };
    }
    let cmd = match command::parse(line) {
        Ok(Command::Exit) => return exit::OK,
        Ok(cmd) => cmd,
        Err(e) if args.json => {
            println!("{}", serde_json::json!({ "error": e.to_string() }));
            return exit::SYNTAX;
        }
        Err(e) => {
            eprint!("{}", e.render_with_line(line));
            return exit::SYNTAX;
        }
    };
    let mut session = match connect(&args.socket) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let request = Request {
        command: line.to_string(),
        json: args.json,
    };
    if let Err(e) = write_frame(&mut session.stream, &request) {
        eprintln!("% Sending to ipsec-control: {e}");
        return exit::PROTOCOL;
    }
    let mut code = None;
    loop {
        match read_frame::<ServerMessage>(&mut session.stream, MAX_REPLY) {
            Ok(ServerMessage::Reply { exit_code, output }) => {
                // JSON always goes to stdout, errors included (`{"error": ...}`).
                if exit_code == exit::OK || args.json {
                    print!("{output}");
                } else {
                    eprint!("{output}");
                }
                let _ = io::stdout().flush();
                // A debug command keeps the session open to print its trace.
                if exit_code != exit::OK || !matches!(cmd, Command::Debug(_)) {
                    return exit_code;
                }
                code = Some(exit_code);
            }
            Ok(ServerMessage::Monitor { line }) => {
                println!("{line}");
            }
            Ok(other) => {
                eprintln!("% Unexpected message from ipsec-control: {other:?}");
                return exit::PROTOCOL;
            }
            Err(e) => {
                return match code {
                    Some(c) => c,
                    None => {
                        eprintln!("% ipsec-control closed the connection: {e}");
                        exit::PROTOCOL
                    }
                };
            }
        }
    }
}

/// What the `?` key saw: the line and the cursor, for the help and to give the line back.
type PendingHelp = Arc<Mutex<Option<(String, usize)>>>;

/// `?` ends the line at once (like IOS, which answers without Enter) and records it.
struct HelpKey(PendingHelp);

impl ConditionalEventHandler for HelpKey {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        *self.0.lock().unwrap() = Some((ctx.line().to_string(), ctx.pos()));
        Some(Cmd::AcceptLine)
    }
}

/// Tab completion from the command tree.
struct CommandHelper;

impl Completer for CommandHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let (start, mut candidates) = command::complete(&line[..pos]);
        if let [only] = candidates.as_mut_slice() {
            only.push(' ');
        }
        Ok((start, candidates))
    }
}

impl Hinter for CommandHelper {
    type Hint = String;
}
impl Highlighter for CommandHelper {}
impl Validator for CommandHelper {}
impl Helper for CommandHelper {}

/// Keeps the external printer in step with the traces this session has on: created by the
/// first `debug`, dropped when none is left.
fn follow_debug(
    cmd: &Command,
    debugging: &mut HashSet<DebugFacility>,
    editor: &mut Editor<CommandHelper, DefaultHistory>,
    printer: &Mutex<Option<Box<dyn ExternalPrinter + Send>>>,
) {
    match cmd {
        Command::Debug(f) => {
            debugging.insert(*f);
        }
        Command::Undebug(Some(f)) => {
            debugging.remove(f);
        }
        Command::Undebug(None) => debugging.clear(),
        _ => return,
    }
    let mut slot = printer.lock().unwrap();
    if debugging.is_empty() {
        *slot = None;
    } else if slot.is_none() {
        *slot = editor
            .create_external_printer()
            .ok()
            .map(|p| Box::new(p) as Box<dyn ExternalPrinter + Send>);
    }
}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ipsec-ctl_history"))
}

/// The interactive session.
fn interactive(args: &Args) -> i32 {
    let session = match connect(&args.socket) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let prompt = format!("{}#", session.hostname);
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .max_history_size(1000)
        .map(|b| b.build())
        .unwrap_or_default();
    let mut editor: Editor<CommandHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("% Cannot start line editing: {e}");
            return exit::PROTOCOL;
        }
    };
    editor.set_helper(Some(CommandHelper));
    let pending: PendingHelp = Arc::default();
    editor.bind_sequence(
        KeyEvent::from('?'),
        EventHandler::Conditional(Box::new(HelpKey(pending.clone()))),
    );
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }

    // Frames from the server: replies go to this thread; debug lines are printed as they
    // come, above the prompt through rustyline's external printer. The printer exists only
    // while this session has a trace on: rustyline (15 and 17 alike) waits in select() while
    // one exists and then handles keys that arrive in one burst one key late.
    let (replies_tx, replies) = mpsc::channel::<Option<(i32, String)>>();
    let printer: Arc<Mutex<Option<Box<dyn ExternalPrinter + Send>>>> = Arc::default();
    let mut reader = match session.stream.try_clone() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("% {e}");
            return exit::PROTOCOL;
        }
    };
    let thread_printer = printer.clone();
    std::thread::spawn(move || loop {
        match read_frame::<ServerMessage>(&mut reader, MAX_REPLY) {
            Ok(ServerMessage::Reply { exit_code, output }) => {
                let _ = replies_tx.send(Some((exit_code, output)));
            }
            Ok(ServerMessage::Monitor { line }) => match &mut *thread_printer.lock().unwrap() {
                Some(p) => {
                    let _ = p.print(format!("{line}\n"));
                }
                None => println!("{line}"),
            },
            Ok(_) => {}
            Err(_) => {
                let _ = replies_tx.send(None);
                return;
            }
        }
    });
    let mut debugging = HashSet::new();

    let mut writer = session.stream;
    let mut initial = String::new();
    let mut last_code = exit::OK;
    loop {
        let read = editor.readline_with_initial(&prompt, (&initial, ""));
        initial.clear();
        let mut line = match read {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("% {e}");
                break;
            }
        };
        if let Some((text, pos)) = pending.lock().unwrap().take() {
            // `?` was pressed: help for the text before the cursor, then the line again.
            match command::help(&text[..pos]) {
                Ok(help) => print!("{help}"),
                Err(e) => print!("{}", e.render(prompt.len())),
            }
            initial = text;
            continue;
        }
        if let Some(before) = line.strip_suffix('?') {
            // A `?` that reached the line some other way (pasted text, no terminal).
            match command::help(before) {
                Ok(help) => print!("{help}"),
                Err(e) => print!("{}", e.render(prompt.len())),
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line.as_str());
        let cmd = match command::parse(&line) {
            Ok(Command::Exit) => break,
            Ok(cmd) => cmd,
            Err(e) => {
                print!("{}", e.render(prompt.len()));
                last_code = exit::SYNTAX;
                continue;
            }
        };
        line.truncate(line.trim_end().len());
        let request = Request {
            command: line,
            json: args.json,
        };
        if let Err(e) = write_frame(&mut writer, &request) {
            eprintln!("% ipsec-control closed the connection: {e}");
            last_code = exit::PROTOCOL;
            break;
        }
        match replies.recv() {
            Ok(Some((code, output))) => {
                print!("{output}");
                let _ = io::stdout().flush();
                last_code = code;
                if code == exit::OK {
                    follow_debug(&cmd, &mut debugging, &mut editor, &printer);
                }
            }
            _ => {
                eprintln!("% ipsec-control closed the connection");
                last_code = exit::PROTOCOL;
                break;
            }
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    last_code
}
