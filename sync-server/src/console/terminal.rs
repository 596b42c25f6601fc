//! The console's terminal: on a real terminal a line editor (rustyline: arrow keys, history of
//! this session, completion of commands and argument names, Ctrl-C to drop the line), and
//! announcements printed above the line being typed; on a pipe plain lines, prompts written
//! as they are.
//!
//! History is kept in memory only: a line may hold a plate, and a file of them on an
//! operator's machine would outlive the records' retention.
use super::client::{Input, Session, Typed};
use crate::commands::spec::SPECS;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::{Context, ExternalPrinter, Helper, Highlighter, Hinter, Validator};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// Where the console reads lines and writes prompts.
pub struct Terminal {
    typed: UnboundedReceiver<Typed>,
    /// The terminal's width in columns, as the editor last saw it (0: unknown).
    columns: Arc<AtomicUsize>,
    /// A line editor: each prompt goes to its thread, which reads one line with it.
    editor: Option<Editor>,
}

struct Editor {
    prompts: std::sync::mpsc::Sender<String>,
    printer: Option<Box<dyn ExternalPrinter + Send>>,
    /// A line is being read (its prompt shown): another prompt waits for it.
    pending: bool,
}

impl Terminal {
    /// Lines from `typed` (a pipe, or a test), prompts written to the output.
    pub fn plain(typed: UnboundedReceiver<Typed>) -> Terminal {
        let columns = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(0);
        Terminal { typed, columns: Arc::new(AtomicUsize::new(columns)), editor: None }
    }

    /// How wide a table may be: the terminal's width, or any width when unknown (a pipe).
    pub fn width(&self) -> usize {
        match self.columns.load(Ordering::Relaxed) {
            0 => usize::MAX,
            n => n,
        }
    }

    /// The process's standard input: a line editor when it is a terminal, plain lines when not.
    pub fn stdin() -> Terminal {
        use std::io::IsTerminal;
        let (tx, typed) = unbounded_channel();
        if !std::io::stdin().is_terminal() {
            std::thread::spawn(move || {
                for line in std::io::stdin().lines().map_while(Result::ok) {
                    if tx.send(Typed::Line(line)).is_err() {
                        break;
                    }
                }
            });
            return Terminal::plain(typed);
        }
        let (prompts, asked) = std::sync::mpsc::channel::<String>();
        let (printer_tx, printer_rx) = std::sync::mpsc::channel();
        let columns = Arc::new(AtomicUsize::new(0));
        let seen = columns.clone();
        std::thread::spawn(move || edit(asked, tx, printer_tx, seen));
        let printer = printer_rx.recv().ok().flatten();
        Terminal { typed, columns, editor: Some(Editor { prompts, printer, pending: false }) }
    }

    /// Shows `prompt` and starts reading a line (on a line editor, once per line).
    pub fn prompt(&mut self, out: &mut (dyn Write + Send), prompt: &str) -> std::io::Result<()> {
        match &mut self.editor {
            Some(e) if e.pending => Ok(()),
            Some(e) => {
                e.pending = e.prompts.send(prompt.to_string()).is_ok();
                Ok(())
            }
            None => {
                write!(out, "{prompt}")?;
                out.flush()
            }
        }
    }

    /// Prints `text` above the line being typed (an announcement while a prompt waits).
    pub fn above(&mut self, out: &mut (dyn Write + Send), text: &str) -> std::io::Result<()> {
        if let Some(Editor { printer: Some(p), pending: true, .. }) = &mut self.editor {
            return p.print(format!("{text}\n")).map_err(std::io::Error::other);
        }
        writeln!(out)?;
        writeln!(out, "{text}")
    }

    /// The next thing typed, or news from the session meanwhile.
    pub async fn next(&mut self, session: &mut Session) -> Option<Input> {
        let input = session.wait_input(&mut self.typed).await;
        if matches!(input, None | Some(Input::Line(_)) | Some(Input::Cancel))
            && let Some(e) = &mut self.editor
        {
            e.pending = false;
        }
        input
    }

    /// The answer to a question (`prompt`); `None` when cancelled (Ctrl-C) or the input ended.
    pub async fn ask(
        &mut self,
        session: &mut Session,
        out: &mut (dyn Write + Send),
        prompt: &str,
    ) -> std::io::Result<Option<String>> {
        self.prompt(out, prompt)?;
        let typed = session.wait_line(&mut self.typed).await;
        if let Some(e) = &mut self.editor {
            e.pending = false;
        }
        Ok(match typed {
            Some(Typed::Line(l)) => Some(l),
            _ => None,
        })
    }
}

/// The editor's thread: one line per prompt asked for, until the console is done.
fn edit(
    asked: std::sync::mpsc::Receiver<String>,
    typed: UnboundedSender<Typed>,
    printer: std::sync::mpsc::Sender<Option<Box<dyn ExternalPrinter + Send>>>,
    columns: Arc<AtomicUsize>,
) {
    let config = rustyline::Config::builder().auto_add_history(true).max_history_size(500);
    let mut rl = match config.map(|c| c.build()).map(rustyline::Editor::with_config) {
        Ok(Ok(rl)) => rl,
        _ => {
            let _ = printer.send(None);
            return;
        }
    };
    rl.set_helper(Some(Completion));
    let _ = printer.send(
        rl.create_external_printer().ok().map(|p| Box::new(p) as Box<dyn ExternalPrinter + Send>),
    );
    while let Ok(prompt) = asked.recv() {
        let read = rl.readline(&prompt);
        if let Some((width, _)) = rl.dimensions() {
            columns.store(width as usize, Ordering::Relaxed);
        }
        let item = match read {
            Ok(line) => Typed::Line(line),
            Err(ReadlineError::Interrupted) => Typed::Cancel,
            Err(_) => break,
        };
        if typed.send(item).is_err() {
            break;
        }
    }
}

/// Completes the first word from the commands, later words from the command's argument names.
#[derive(Helper, Highlighter, Hinter, Validator)]
struct Completion;

impl Completer for Completion {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, candidates) = candidates(&line[..pos]);
        Ok((
            start,
            candidates.into_iter().map(|c| Pair { display: c.clone(), replacement: c }).collect(),
        ))
    }
}

/// Where the word being typed starts, and what it may become.
pub fn candidates(before: &str) -> (usize, Vec<String>) {
    let start = before.rfind(' ').map_or(0, |i| i + 1);
    let word = &before[start..];
    let first = before[..start].split_whitespace().next();
    let words: Vec<String> = match first {
        None => SPECS
            .iter()
            .map(|s| s.command)
            .chain(["help", "live", "quit"])
            .filter(|c| c.starts_with(word))
            .map(str::to_string)
            .collect(),
        Some("help") => SPECS
            .iter()
            .map(|s| s.command)
            .filter(|c| c.starts_with(word))
            .map(str::to_string)
            .collect(),
        Some(command) => crate::commands::spec::of(command)
            .map(|s| s.args.iter().map(|a| format!("{}=", a.name)).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain(
                (command == "hotlists.upload")
                    .then(|| ["file=".to_string(), "purpose=".into(), "case=".into()])
                    .into_iter()
                    .flatten(),
            )
            .filter(|a| a.starts_with(word) && !before.contains(&format!(" {a}")))
            .collect(),
    };
    (start, words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_their_argument_names_complete() {
        assert_eq!(candidates("plates.s"), (0, vec!["plates.search".to_string()]));
        let (start, args) = candidates("alerts.ack trailer=t1 al");
        assert_eq!((start, args), (22, vec!["alert_id=".to_string()]));
        let (_, args) = candidates("alerts.ack trailer=t1 ");
        assert_eq!(
            args,
            vec![
                "alert_id=".to_string(),
                "outcome=".to_string(),
                "check=".to_string(),
                "note=".to_string()
            ],
            "trailer= is given"
        );
        assert_eq!(candidates("help rel").1.len(), 7, "release.request ... release.download");
    }
}
