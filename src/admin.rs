//! `strata audit` and `strata policy`: the service's audit log and its policy file.

use crate::client::ServerArgs;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Entries at or after this time: RFC 3339 (2026-12-06T10:00:00Z) or Unix seconds.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 1000)]
    limit: u32,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

pub fn audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let entries = args.server.client()?.audit(since, args.limit)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    for e in &entries {
        let target = e.target.as_deref().map(|t| format!(" {t}")).unwrap_or_default();
        let detail = e.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
        println!("{}  {} ({}) from {}  {}{target}  {} {}{detail}", e.at, e.actor, e.role, e.address, e.action, e.status, e.outcome);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--since`: RFC 3339 (`2026-12-06T10:00:00Z`, fractions allowed) or Unix seconds.
fn parse_since(s: &str) -> anyhow::Result<i64> {
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    let t = humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).map_err(|_| anyhow::anyhow!("--since {s}: RFC 3339 (2026-12-06T10:00:00Z) or Unix seconds"))?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64)
}

#[derive(Args, Debug)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Validate a policy file here, as the server would load it (errors name line and key).
    Check { file: PathBuf },
    /// Make the server read its --policy file again (SIGHUP does too); on an error the old
    /// policy stays in force.
    Reload {
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub fn policy(args: PolicyArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PolicyCommand::Check { file } => {
            let p = strata_policy::Policy::load(&file)?;
            eprintln!("{}: valid ({} image rules)", file.display(), p.image_rules());
        }
        PolicyCommand::Reload { server } => {
            let r = server.client()?.reload_policy()?;
            eprintln!("policy reloaded: {} ({} image rules)", r.file.as_deref().unwrap_or("built-in default"), r.image_rules);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn since_takes_rfc3339_or_seconds() {
        assert_eq!(super::parse_since("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(super::parse_since("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000);
        assert!(super::parse_since("yesterday").is_err());
    }
}
