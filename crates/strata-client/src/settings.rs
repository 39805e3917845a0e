//! Which service to talk to, with which token: flags, then `$STRATA_SERVER` /
//! `$STRATA_TOKEN`, then `~/.config/strata/client.toml` (`server = "..."`, `token = "..."`).

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Settings {
    pub server: String,
    pub token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("no server: give --server URL, set $STRATA_SERVER, or write server = \"URL\" in {0}")]
    NoServer(String),
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    server: Option<String>,
    token: Option<String>,
}

impl Settings {
    /// The config file's place: `$XDG_CONFIG_HOME/strata/client.toml`, else
    /// `~/.config/strata/client.toml`.
    pub fn default_file() -> PathBuf {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".config"));
        base.join("strata/client.toml")
    }

    /// Each value from the first place that has it.
    pub fn resolve(server: Option<String>, token: Option<String>) -> Result<Settings, SettingsError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let path = Settings::default_file();
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str::<FileSettings>(&text)
                .map_err(|e| SettingsError::File { path: path.display().to_string(), message: e.to_string() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileSettings::default(),
            Err(e) => return Err(SettingsError::File { path: path.display().to_string(), message: e.to_string() }),
        };
        let server = server.or_else(|| env("STRATA_SERVER")).or(file.server).ok_or_else(|| SettingsError::NoServer(path.display().to_string()))?;
        let token = token.or_else(|| env("STRATA_TOKEN")).or(file.token);
        Ok(Settings { server, token })
    }
}
