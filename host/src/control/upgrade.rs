//! What `wasmhost upgrade` asks the node and what it answers: the entry, its new component,
//! and how each of its processes moved (`runtime::UpgradeReport`), as JSON.

use serde::{Deserialize, Serialize};

use crate::runtime::{Moved, UpgradeReport};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpgradeAnswer {
    pub entry: String,
    /// The component's `sha256:…`, and its file.
    pub component: String,
    pub source: String,
    /// Each live process of the entry, in the order they moved.
    pub processes: Vec<MovedRow>,
    /// The entry runs its old component again: a new instance failed before it received.
    pub rolled_back: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MovedRow {
    pub pid: String,
    /// `handed over`, `started`, `hibernated`, `killed`, `ended`, `failed`, `moved back`.
    pub moved: String,
    /// Why a `failed` one failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl UpgradeAnswer {
    pub fn of(report: UpgradeReport, source: String) -> UpgradeAnswer {
        let processes = report
            .processes
            .into_iter()
            .map(|(pid, moved)| {
                let (moved, reason) = match moved {
                    Moved::HandedOver => ("handed over", None),
                    Moved::Started => ("started", None),
                    Moved::Hibernated => ("hibernated", None),
                    Moved::Killed => ("killed", None),
                    Moved::Ended => ("ended", None),
                    Moved::Failed(reason) => ("failed", Some(reason.to_string())),
                    Moved::MovedBack => ("moved back", None),
                };
                MovedRow {
                    pid: pid.to_string(),
                    moved: moved.into(),
                    reason,
                }
            })
            .collect();
        UpgradeAnswer {
            entry: report.entry,
            component: report.component,
            source,
            processes,
            rolled_back: report.rolled_back,
        }
    }

    /// The answer for people: a line per process, and what became of the upgrade.
    pub fn render(&self) -> String {
        let mut text = format!("{} → {} ({})\n", self.entry, self.component, self.source);
        for row in &self.processes {
            let meaning = match row.moved.as_str() {
                "handed over" => "handed over; its new instance runs",
                "started" => "handed over; its new instance has not received yet",
                "hibernated" => "hibernates; wakes into the new component",
                "killed" => "did not hand over in time: killed",
                "ended" => "ended during the upgrade",
                "moved back" => "went back to the old component",
                other => other,
            };
            match &row.reason {
                Some(reason) => text.push_str(&format!("  {}  {meaning}: {reason}\n", row.pid)),
                None => text.push_str(&format!("  {}  {meaning}\n", row.pid)),
            }
        }
        if self.rolled_back {
            let failed = self.processes.iter().find(|r| r.moved == "failed");
            text.push_str(&match failed {
                Some(row) => format!(
                    "rolled back: the new component failed in {} before it received ({}); {} runs its old component\n",
                    row.pid,
                    row.reason.as_deref().unwrap_or("no reason"),
                    self.entry
                ),
                None => format!("rolled back: {} runs its old component\n", self.entry),
            });
        } else {
            let n = self.processes.len();
            text.push_str(&format!(
                "upgraded: {n} process{} of {}; new ones start the new component\n",
                if n == 1 { "" } else { "es" },
                self.entry
            ));
        }
        text
    }
}
