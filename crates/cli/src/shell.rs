//! `hotsync cli`: runs commands against a node's admin socket, or an
//! interactive shell (history, completion, VRP-style prompt).
//!
//! The view (`switch vsys NAME`, `quit`) is kept here and sent with each
//! command; `wait JOB` and `--wait` poll the node to show progress.

use std::borrow::Cow;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use hotsync_config::printable;

use crate::admin::{self, Client, Response};
use crate::display::JobView;
use crate::grammar;
use crate::progress::{self, Mode};

/// The longest a `wait` blocks.
const WAIT_TIMEOUT: Duration = Duration::from_secs(3600);

/// What a command did to the session.
enum Flow {
    Continue(u8),
    Exit,
    /// The connection to the node failed: stop, with a failure status.
    Lost,
}

/// Exit status when the node cannot be reached or the connection fails.
const CONNECTION_FAILED: u8 = 2;

struct Session {
    client: Client,
    vsys: String,
    sysname: String,
    vsys_names: Vec<String>,
    mode: Mode,
    /// `--json`: display commands are asked for as JSON.
    json: bool,
}

impl Session {
    fn refresh_info(&mut self) {
        if let Ok(r) = self.client.request("", "_info") {
            self.vsys_names.clear();
            for l in r.text.lines() {
                if let Some(n) = l.strip_prefix("sysname ") {
                    self.sysname = printable(n).into_owned();
                } else if let Some(v) = l.strip_prefix("vsys ") {
                    self.vsys_names.push(v.to_owned());
                }
            }
        }
    }

    fn prompt(&self) -> String {
        if self.vsys.is_empty() {
            format!("<{}>", self.sysname)
        } else {
            format!("[{}-{}]", self.sysname, self.vsys)
        }
    }

    fn print(r: &Response) {
        let text = terminal_safe(&r.text);
        if r.status == admin::OK {
            print!("{text}");
        } else {
            // Errors go to stderr so scripts can tell them apart.
            eprint!("{text}");
        }
    }

    fn run_line(&mut self, line: &str) -> Flow {
        let typed = line.trim();
        // Abbreviations spelled out; a line the grammar refuses goes to the
        // node as typed, which answers the error (or removes an opaque
        // line with `undo`).
        let full = if typed.ends_with('?') {
            None
        } else {
            grammar::expand(typed).ok()
        };
        let line = full.as_deref().unwrap_or(typed);
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            [] => Flow::Continue(0),
            ["switch", "vsys", name] => {
                self.refresh_info();
                if self.vsys_names.iter().any(|v| v == name) {
                    self.vsys = (*name).to_owned();
                    Flow::Continue(0)
                } else {
                    eprintln!("Error: virtual system `{name}` does not exist.");
                    Flow::Continue(admin::FAILED)
                }
            }
            ["switch", "vsys"] | ["switch", ..] => {
                eprintln!("Error: expected `switch vsys NAME`.");
                Flow::Continue(admin::UNKNOWN)
            }
            ["quit"] | ["return"] => {
                if self.vsys.is_empty() {
                    Flow::Exit
                } else {
                    self.vsys.clear();
                    Flow::Continue(0)
                }
            }
            ["system-view"] => Flow::Continue(0),
            ["wait", id] => match id.parse::<u64>() {
                Ok(id) => Flow::Continue(self.wait(id)),
                Err(_) => {
                    eprintln!("Error: expected a job number, found `{id}`.");
                    Flow::Continue(admin::UNKNOWN)
                }
            },
            _ => {
                let wait = w.last() == Some(&"--wait");
                let cmd = if wait {
                    w[..w.len() - 1].join(" ")
                } else if self.json {
                    format!("_json {line}")
                } else {
                    line.to_owned()
                };
                let r = match self.client.request(&self.vsys, &cmd) {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("Error: lost the connection to the node: {e}");
                        return Flow::Lost;
                    }
                };
                Self::print(&r);
                if r.status != admin::OK || !wait {
                    return Flow::Continue(r.status);
                }
                match job_id(&r.text) {
                    Some(id) => Flow::Continue(self.wait(id)),
                    None => {
                        eprintln!(
                            "Error: `--wait` applies to `hrp sync config|connection-status`."
                        );
                        Flow::Continue(admin::UNKNOWN)
                    }
                }
            }
        }
    }

    /// `wait JOB`: progress until the job ends.
    fn wait(&mut self, id: u64) -> u8 {
        let client = &mut self.client;
        let label = format!("job {id}");
        let r = progress::wait_job(&label, self.mode, WAIT_TIMEOUT, || {
            let r = client
                .request("", &format!("_job {id}"))
                .map_err(|e| e.to_string())?;
            if r.status != admin::OK {
                return Err(r.text.trim().to_owned());
            }
            JobView::from_wire(r.text.trim()).ok_or_else(|| "bad job status from the node".into())
        });
        match r {
            Ok(v) => {
                println!("{}", v.summary());
                if v.state == "done" { 0 } else { admin::FAILED }
            }
            Err(e) => {
                // Errors from the node already say `Error:`.
                if e.starts_with("Error:") {
                    eprintln!("{e}");
                } else {
                    eprintln!("Error: {e}");
                }
                admin::FAILED
            }
        }
    }
}

/// `text` with every character a terminal would act on escaped (ANSI
/// escapes, carriage returns, ...; see `hotsync_config::printable`), line
/// ends kept: output may quote what the peer sent.
pub fn terminal_safe(text: &str) -> String {
    text.split('\n')
        .map(printable)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The job id in `... started as job N; ...`.
pub fn job_id(text: &str) -> Option<u64> {
    let rest = &text[text.find("as job ")? + 7..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// `hotsync cli`.
pub fn run(admin: &Path, commands: Vec<String>, json: bool) -> ExitCode {
    let client = match Client::connect(admin) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "Error: cannot connect to the admin socket {}: {e}",
                admin.display()
            );
            return ExitCode::from(CONNECTION_FAILED);
        }
    };
    let interactive = commands.is_empty();
    let mut s = Session {
        client,
        vsys: String::new(),
        sysname: "hotsync".into(),
        vsys_names: Vec::new(),
        mode: Mode::detect(true),
        json,
    };
    s.refresh_info();
    if !interactive {
        for c in &commands {
            match s.run_line(c) {
                Flow::Continue(0) => {}
                Flow::Continue(status) => return ExitCode::from(status),
                Flow::Exit => break,
                Flow::Lost => return ExitCode::from(CONNECTION_FAILED),
            }
        }
        return ExitCode::SUCCESS;
    }
    interactive_loop(s)
}

fn interactive_loop(mut s: Session) -> ExitCode {
    let mut rl = match Editor::<ShellHelper, rustyline::history::DefaultHistory>::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot open the terminal: {e}");
            return ExitCode::from(2);
        }
    };
    rl.set_helper(Some(ShellHelper {
        vsys: s.vsys_names.clone(),
    }));
    let history = std::env::var_os("HOME").map(|h| Path::new(&h).join(".hotsync_history"));
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    println!(
        "Connected to {}. `quit` leaves a virtual system, then the shell; Tab completes.",
        s.sysname
    );
    let mut status = 0;
    loop {
        match rl.readline(&s.prompt()) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = rl.add_history_entry(line.as_str());
                }
                match s.run_line(&line) {
                    Flow::Continue(st) => status = st,
                    Flow::Exit => break,
                    Flow::Lost => {
                        status = CONNECTION_FAILED;
                        break;
                    }
                }
                if let Some(h) = rl.helper_mut() {
                    h.vsys.clone_from(&s.vsys_names);
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("Error: {e}");
                status = 2;
                break;
            }
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    ExitCode::from(status)
}

/// The words that may follow `words` (complete words typed so far), for
/// completion: the grammar's keywords, and the virtual systems after `vsys`.
pub fn next_words(words: &[&str], vsys: &[String]) -> Vec<String> {
    if matches!(words.last(), Some(&"vsys")) && words.len() >= 2 {
        return vsys.to_vec();
    }
    grammar::next_words(words)
        .into_iter()
        .filter(|w| !w.starts_with('<'))
        .map(str::to_owned)
        .collect()
}

struct ShellHelper {
    vsys: Vec<String>,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.rfind(' ').map_or(0, |i| i + 1);
        let partial = &before[start..];
        let words: Vec<&str> = before[..start].split_whitespace().collect();
        let cands = next_words(&words, &self.vsys)
            .into_iter()
            .filter(|w| w.starts_with(partial))
            .map(|w| Pair {
                display: w.clone(),
                replacement: format!("{w} "),
            })
            .collect();
        Ok((start, cands))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_and_job_ids() {
        assert_eq!(
            next_words(&["hrp", "sync"], &[]),
            vec!["config", "connection-status"]
        );
        assert_eq!(
            next_words(&["switch", "vsys"], &["a".into(), "b".into()]),
            vec!["a", "b"]
        );
        assert!(next_words(&[], &[]).contains(&"display".to_owned()));
        assert_eq!(
            job_id("Info: batch sync of configuration (5 items) started as job 12; see"),
            Some(12)
        );
        assert_eq!(job_id("nothing"), None);
    }

    #[test]
    fn output_is_escaped_for_the_terminal() {
        assert_eq!(
            terminal_safe("rule name a\u{1b}[2J\n description x\ry\n"),
            "rule name a\\u{1b}[2J\n description x\\ry\n"
        );
        assert_eq!(terminal_safe("plain\ttext\n"), "plain\ttext\n");
    }
}
