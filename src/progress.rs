//! What the command line shows while a pipeline operation runs: a spinner while resolving
//! and composing, a bytes-weighted bar while downloading RPMs; nothing at all unless stderr
//! is a terminal, so scripts and `--json` consumers see clean output.

use std::sync::Mutex;
use strata_pipeline::Event;

pub struct Bars {
    shown: bool,
    /// The spinner's text while resolving (`strata resolve` says more than compose does).
    resolving: &'static str,
    current: Mutex<Option<indicatif::ProgressBar>>,
}

impl Bars {
    pub fn new(wanted: bool, resolving: &'static str) -> Bars {
        Bars { shown: wanted && std::io::IsTerminal::is_terminal(&std::io::stderr()), resolving, current: Mutex::new(None) }
    }

    fn spin(&self, message: String) {
        let bar = indicatif::ProgressBar::new_spinner().with_message(message);
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        self.replace(Some(bar));
    }

    fn replace(&self, bar: Option<indicatif::ProgressBar>) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = std::mem::replace(&mut *current, bar) {
            old.finish_and_clear();
        }
    }
}

impl strata_pipeline::Progress for Bars {
    fn event(&self, e: &Event<'_>) {
        if !self.shown {
            return;
        }
        match *e {
            Event::ResolveStarted { .. } => self.spin(self.resolving.to_string()),
            Event::ComposeStarted { images } => self.spin(format!("composing {images} image(s)")),
            // Everything cached: nothing to show.
            Event::FetchStarted { packages, bytes } if bytes > 0 => {
                let bar = indicatif::ProgressBar::new(bytes).with_style(
                    indicatif::ProgressStyle::with_template("{msg:>14} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar.set_message(format!("{packages} RPMs"));
                self.replace(Some(bar));
            }
            Event::FetchAdvanced { bytes, .. } => {
                if let Some(bar) = &*self.current.lock().unwrap_or_else(|e| e.into_inner()) {
                    bar.inc(bytes);
                }
            }
            Event::ResolveFinished | Event::FetchFinished | Event::ComposeFinished => self.replace(None),
            _ => {}
        }
    }
}
