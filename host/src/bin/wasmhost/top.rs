//! `wasmhost top`: the running node, live — its supervision tree and its processes sorted by
//! CPU, memory or mailbox, refreshed from the control socket (as `ps` asks it) every
//! interval, in the terminal's alternate screen until `q`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Table};
use ratatui::{DefaultTerminal, Frame};
use wasmhost::app::AppRoot;
use wasmhost::app::values::show_size;
use wasmhost::control::{Snapshot, show_ms};

/// What the process table is sorted by, largest first.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Cpu,
    Memory,
    Mailbox,
}

impl SortBy {
    fn name(self) -> &'static str {
        match self {
            SortBy::Cpu => "cpu",
            SortBy::Memory => "memory",
            SortBy::Mailbox => "mailbox",
        }
    }
}

/// The last snapshot, and each process's share of a core since the one before.
struct View {
    snapshot: Option<Snapshot>,
    /// Why the last ask failed (the node stopped, …), shown until one succeeds.
    error: Option<String>,
    cpu_share: HashMap<String, f64>,
    /// CPU time by pid at the last snapshot, and when it was taken.
    last_cpu: (HashMap<String, u64>, Instant),
    sort: SortBy,
}

pub fn top(app: Option<&Path>, node: Option<&str>, interval: Duration) -> Result<ExitCode> {
    let root = AppRoot::locate(app)?;
    if !std::io::stdout().is_terminal() {
        bail!(
            "`wasmhost top` needs a terminal; `wasmhost ps` (or `ps --json`) prints one snapshot"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut view = View {
        snapshot: None,
        error: None,
        cpu_share: HashMap::new(),
        last_cpu: (HashMap::new(), Instant::now()),
        sort: SortBy::Cpu,
    };
    let mut terminal = ratatui::try_init().context("taking over the terminal")?;
    let shown = run(&mut terminal, &mut view, interval, || {
        runtime.block_on(wasmhost::control::ps(&root.dir, node))
    });
    ratatui::restore();
    shown?;
    Ok(ExitCode::SUCCESS)
}

/// Asks and draws every `interval`, and at once on a key that changes the view, until `q`,
/// Esc or Ctrl+C.
fn run(
    terminal: &mut DefaultTerminal,
    view: &mut View,
    interval: Duration,
    mut ask: impl FnMut() -> Result<Snapshot>,
) -> Result<()> {
    let mut next = Instant::now();
    loop {
        if Instant::now() >= next {
            view.take(ask());
            next = Instant::now() + interval;
        }
        terminal.draw(|frame| view.draw(frame))?;
        if !event::poll(next.saturating_duration_since(Instant::now()))? {
            continue;
        }
        if let Event::Key(key) = event::read()?
            && key.kind == KeyEventKind::Press
        {
            match key.code {
                KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                    return Ok(());
                }
                KeyCode::Char('c') => view.sort = SortBy::Cpu,
                KeyCode::Char('m') => view.sort = SortBy::Memory,
                KeyCode::Char('b') => view.sort = SortBy::Mailbox,
                _ => continue,
            }
            // Every row may move: drawn again whole.
            redraw_whole(terminal)?;
        }
    }
}

/// Makes the next draw write every cell. (`Terminal::clear` also asks the terminal where its
/// cursor is, and fails after a wait when it does not answer; a full-screen view keeps no
/// cursor.)
fn redraw_whole(terminal: &mut DefaultTerminal) -> Result<()> {
    use ratatui::backend::Backend;
    terminal.backend_mut().clear()?;
    // The buffer the next draw is compared with, made blank.
    terminal.swap_buffers();
    terminal.current_buffer_mut().reset();
    terminal.swap_buffers();
    Ok(())
}

impl View {
    /// A new answer: each process's CPU share since the last one.
    fn take(&mut self, answer: Result<Snapshot>) {
        let snapshot = match answer {
            Ok(snapshot) => snapshot,
            Err(err) => {
                self.error = Some(format!("{err:#}"));
                return;
            }
        };
        let now = Instant::now();
        let (last, at) = &self.last_cpu;
        let elapsed_us = now.duration_since(*at).as_micros().max(1) as f64;
        self.cpu_share = snapshot
            .processes
            .iter()
            .map(|p| {
                let before = last.get(&p.pid).copied().unwrap_or(p.cpu_us);
                let used = p.cpu_us.saturating_sub(before) as f64;
                (p.pid.clone(), 100.0 * used / elapsed_us)
            })
            .collect();
        let cpu = snapshot.processes.iter().map(|p| (p.pid.clone(), p.cpu_us));
        self.last_cpu = (cpu.collect(), now);
        self.snapshot = Some(snapshot);
        self.error = None;
    }

    fn draw(&self, frame: &mut Frame) {
        let help = format!(
            "sorted by {} · c cpu · m memory · b mailbox · q quit",
            self.sort.name()
        );
        let Some(snapshot) = &self.snapshot else {
            let waiting = self.error.as_deref().unwrap_or("asking the node…");
            frame.render_widget(
                Paragraph::new(vec![Line::from(waiting), Line::from(help)]),
                frame.area(),
            );
            return;
        };
        let tree = snapshot.tree_table();
        let tree_lines: Vec<Line> = tree.lines().map(Line::from).collect();
        let [head, tree_area, table_area] = Layout::vertical([
            Constraint::Length(2),
            Constraint::Length(u16::try_from(tree_lines.len() + 1).unwrap_or(u16::MAX)),
            Constraint::Min(3),
        ])
        .areas(frame.area());
        let status = match &self.error {
            Some(err) => format!("{help} · {err}"),
            None => help,
        };
        frame.render_widget(
            Paragraph::new(vec![Line::from(snapshot.headline()), Line::from(status)]),
            head,
        );
        frame.render_widget(Paragraph::new(tree_lines), tree_area);
        frame.render_widget(self.table(snapshot), table_area);
    }

    /// The processes, largest first by the sort key.
    fn table(&self, snapshot: &Snapshot) -> Table<'static> {
        let share = |pid: &str| self.cpu_share.get(pid).copied().unwrap_or(0.0);
        let mut processes: Vec<_> = snapshot.processes.iter().collect();
        match self.sort {
            SortBy::Cpu => processes.sort_by(|a, b| share(&b.pid).total_cmp(&share(&a.pid))),
            SortBy::Memory => processes.sort_by_key(|p| std::cmp::Reverse(p.memory)),
            SortBy::Mailbox => processes.sort_by_key(|p| std::cmp::Reverse(p.mailbox)),
        }
        let rows = processes.into_iter().map(|p| {
            Row::new(vec![
                p.pid.clone(),
                p.entry.clone(),
                p.service.clone().unwrap_or_else(|| "-".into()),
                p.state.clone(),
                format!("{:.1}%", share(&p.pid)),
                show_size(p.memory),
                p.mailbox.to_string(),
                show_size(p.held),
                show_ms(p.uptime_ms),
            ])
        });
        let header = Row::new(vec![
            "PID", "ENTRY", "SERVICE", "STATE", "CPU", "MEMORY", "MAILBOX", "HELD", "UPTIME",
        ])
        .style(Style::default().add_modifier(Modifier::BOLD));
        let widths = [
            Constraint::Min(24),
            Constraint::Min(12),
            Constraint::Min(12),
            Constraint::Length(10),
            Constraint::Length(7),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(10),
            Constraint::Length(8),
        ];
        Table::new(rows, widths).header(header)
    }
}
