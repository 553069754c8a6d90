//! The check, before anything starts, that the registry asks for nothing the pool cannot
//! give. The limits themselves are defined in `app::limits`.

use crate::app::{App, Diagnostic, Diagnostics, LimitOverrides, Origin};

use super::config::NodeConfig;

/// Every entry or host whose limits ask for more than the node's pool can give.
pub fn check_against_pool(app: &App, config: &NodeConfig) -> Diagnostics {
    let mut problems = Diagnostics::default();
    let set = app
        .processes
        .values()
        .map(|e| (&e.id, &e.origin, &e.limits))
        .chain(app.hosts.values().map(|h| (&h.id, &h.origin, &h.limits)));
    for (id, origin, limits) in set {
        let problem = |message: String, hint: &str| {
            Diagnostic::new(&origin.file, message)
                .at(line(origin, limits))
                .entry(id.clone())
                .hint(hint)
        };
        for beyond in limits.beyond(&config.pool()) {
            problems.push(problem(
                format!("`{}`: {}", beyond.field, beyond.message),
                beyond.hint,
            ));
        }
    }
    problems
}

fn line(origin: &Origin, limits: &LimitOverrides) -> u64 {
    if limits.line > 0 {
        limits.line
    } else {
        origin.line
    }
}
