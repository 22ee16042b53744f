//! Stop strings matched on decoded text, across token boundaries.

/// Watches the decoded text for stop strings. Text that might be the start
/// of a stop string is held back until it is known not to be one, so the
/// stop string itself is never emitted, even when it is split over tokens.
#[derive(Debug, Clone, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

/// What [`StopMatcher::push`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopCheck {
    /// Text that is safe to emit now.
    pub emit: String,
    /// The stop string that was found, if any (generation must end).
    pub stopped: Option<String>,
}

impl StopMatcher {
    /// A matcher for `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        StopMatcher {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Add decoded text.
    pub fn push(&mut self, text: &str) -> StopCheck {
        self.held.push_str(text);
        // Earliest occurrence of any stop string wins.
        let found = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()).map(|at| (at, s)))
            .min_by_key(|(at, _)| *at);
        if let Some((at, s)) = found {
            #[cfg(not(feature = "mutant-stop-emit-stop-string"))]
            let emit = self.held[..at].to_string();
            #[cfg(feature = "mutant-stop-emit-stop-string")]
            let emit = self.held[..at + s.len()].to_string();
            let stopped = Some(s.clone());
            self.held.clear();
            return StopCheck { emit, stopped };
        }
        // Hold back the longest suffix that is a proper prefix of a stop string.
        let mut keep = 0;
        for s in &self.stops {
            for (i, _) in self.held.char_indices() {
                let tail = &self.held[i..];
                if tail.len() < s.len() && s.starts_with(tail) {
                    keep = keep.max(tail.len());
                    break;
                }
            }
        }
        let cut = self.held.len() - keep;
        let emit = self.held[..cut].to_string();
        self.held.drain(..cut);
        StopCheck {
            emit,
            stopped: None,
        }
    }

    /// End of generation without a stop string: release the held text.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}
