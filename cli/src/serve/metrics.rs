//! `GET /metrics`: the server's counters in Prometheus's text format, the
//! numbers `/health` gives as JSON, for a monitoring system to scrape.

use super::engine::Load;

/// The content type of Prometheus's text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

// ANCHOR: metrics
/// One of the server's counters: its key in `/health`'s JSON, its
/// Prometheus name and type, what it counts, and its value.
pub struct Counter {
    /// The key in `/health`.
    pub key: &'static str,
    /// The Prometheus name (a counter's ends in `_total`).
    pub name: &'static str,
    /// `gauge` or `counter`.
    pub kind: &'static str,
    /// What it counts.
    pub help: &'static str,
    /// Its value now.
    pub value: u64,
}

/// `load` and the server's `slots`, the numbers `/health` and `/metrics`
/// both give.
pub fn counters(load: &Load, slots: usize) -> [Counter; 8] {
    let c = |key, name, kind, help, value| Counter {
        key,
        name,
        kind,
        help,
        value,
    };
    [
        c(
            "slots",
            "infer_slots",
            "gauge",
            "Sequence slots (--max-batch).",
            slots as u64,
        ),
        c(
            "running",
            "infer_requests_running",
            "gauge",
            "Requests holding a slot.",
            load.running as u64,
        ),
        c(
            "waiting",
            "infer_requests_waiting",
            "gauge",
            "Requests waiting for a slot.",
            load.waiting as u64,
        ),
        c(
            "steps",
            "infer_steps_total",
            "counter",
            "Forward passes.",
            load.steps,
        ),
        c(
            "generated_tokens",
            "infer_generated_tokens_total",
            "counter",
            "Tokens generated.",
            load.generated,
        ),
        c(
            "prompt_tokens",
            "infer_prompt_tokens_total",
            "counter",
            "Prompt tokens read.",
            load.prompt_tokens,
        ),
        c(
            "cached_prompt_tokens",
            "infer_cached_prompt_tokens_total",
            "counter",
            "Prompt tokens taken from a slot's cache instead of read.",
            load.cached_prompt_tokens,
        ),
        c(
            "cancelled",
            "infer_cancelled_requests_total",
            "counter",
            "Requests cancelled because their client went away.",
            load.cancelled,
        ),
    ]
}

/// `counters` as Prometheus metrics, each with its `# HELP` and `# TYPE`
/// lines.
pub fn prometheus(counters: &[Counter]) -> String {
    counters
        .iter()
        .map(|c| {
            let Counter {
                name,
                kind,
                help,
                value,
                ..
            } = c;
            format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n")
        })
        .collect()
}
// ANCHOR_END: metrics

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_has_its_help_type_and_value() {
        let load = Load {
            running: 2,
            waiting: 1,
            steps: 40,
            generated: 70,
            prompt_tokens: 30,
            cached_prompt_tokens: 16,
            cancelled: 3,
        };
        let text = prometheus(&counters(&load, 4));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 24, "{text}");
        for chunk in lines.chunks(3) {
            let name = chunk[2].split(' ').next().unwrap();
            assert!(
                chunk[0].starts_with(&format!("# HELP {name} ")),
                "{chunk:?}"
            );
            let kind = chunk[1].strip_prefix(&format!("# TYPE {name} ")).unwrap();
            assert_eq!(kind == "counter", name.ends_with("_total"), "{chunk:?}");
        }
        for want in [
            "infer_slots 4",
            "infer_requests_running 2",
            "infer_requests_waiting 1",
            "infer_steps_total 40",
            "infer_generated_tokens_total 70",
            "infer_prompt_tokens_total 30",
            "infer_cached_prompt_tokens_total 16",
            "infer_cancelled_requests_total 3",
        ] {
            assert!(lines.contains(&want), "{want} not in {text}");
        }
    }
}
