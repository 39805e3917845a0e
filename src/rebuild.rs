//! `strata rebuild-plan`, `repos`, `events`, `tracked`, `promote`: the client side of the
//! service's automatic rebuilds.

use crate::client::ServerArgs;
use clap::{Args, Subcommand};
use std::process::ExitCode;
use strata_client::{PackageChange, PromoteRequest, RebuildPlan};

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(ExitCode::SUCCESS)
}

fn change(c: &PackageChange) -> String {
    format!("{} {} → {}", c.name, c.old.as_deref().unwrap_or("(new)"), c.new.as_deref().unwrap_or("(removed)"))
}

fn print_plan(plan: &RebuildPlan) {
    for r in &plan.repos {
        println!("changed: {} ({} → {})", r.url, r.old.as_deref().map_or("never seen", |o| &o[..o.len().min(19)]), &r.new[..r.new.len().min(19)]);
    }
    if plan.rebuilds.is_empty() {
        println!("nothing to rebuild");
    }
    for p in &plan.rebuilds {
        let parent = p.parent.as_deref().map(|x| format!(" after {x}")).unwrap_or_default();
        println!("{}{}  [{}, depth {}{parent}]  {}", "  ".repeat(p.depth as usize), p.image, p.kind, p.depth, p.reason);
        for c in p.changes.iter().take(if p.depth == 0 { usize::MAX } else { 0 }) {
            println!("{}    {}", "  ".repeat(p.depth as usize), change(c));
        }
    }
    if !plan.unchanged.is_empty() {
        println!("unchanged: {}", plan.unchanged.join(", "));
    }
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// The plan as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

pub fn plan(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let plan = args.server.client()?.rebuild_plan()?;
    if args.json {
        return print_json(&plan);
    }
    print_plan(&plan);
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct ReposArgs {
    #[command(subcommand)]
    command: ReposCommand,
}

#[derive(Subcommand, Debug)]
enum ReposCommand {
    /// The watched repositories and the images composed from them.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Check every watched repository now and rebuild what changed (the webhook
    /// POST /api/repos/refresh does the same).
    Refresh {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub fn repos(args: ReposArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ReposCommand::List { json, server } => {
            let repos = server.client()?.repos()?;
            if json {
                return print_json(&repos);
            }
            for r in &repos {
                let every = if r.interval_seconds > 0 { format!("every {} s", r.interval_seconds) } else { "on refresh".into() };
                println!("{}  {every}  checked {}  images {}", r.url, r.checked.as_deref().unwrap_or("never"), r.images.join(","));
            }
        }
        ReposCommand::Refresh { json, server } => {
            let r = server.client()?.refresh()?;
            if json {
                return print_json(&r);
            }
            println!("{} repositories checked", r.checked);
            print_plan(&r.plan);
            if let Some(e) = &r.event {
                println!("rebuild event {}: builds {}", e.id, e.builds.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

pub fn events(args: EventsArgs) -> anyhow::Result<ExitCode> {
    let events = args.server.client()?.events()?;
    if args.json {
        return print_json(&events);
    }
    println!("{:>5}  {:<8}  {:<24}  {:>9}  {:>8}  {:>9}  BY", "ID", "STATE", "NOTICED", "REBUILT", "SKIPPED", "SECONDS");
    for e in &events {
        let secs = e.latency_seconds.map_or("-".to_string(), |s| format!("{s:.1}"));
        println!("{:>5}  {:<8}  {:<24}  {:>9}  {:>8}  {:>9}  {} ({})", e.id, e.state, e.noticed, e.plan.rebuilds.len(), e.plan.unchanged.len(), secs, e.actor, e.trigger);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct TrackedArgs {
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

pub fn tracked(args: TrackedArgs) -> anyhow::Result<ExitCode> {
    let images = args.server.client()?.tracked()?;
    if args.json {
        return print_json(&images);
    }
    for i in &images {
        let tags: Vec<String> = i.tags.iter().map(|t| format!("{}→{}", t.tag, t.build_id)).collect();
        let parent = i.parent.as_deref().map(|p| format!(" FROM {p}")).unwrap_or_default();
        println!("{}  [{}{parent}]  build {}  {}  {}", i.name, i.kind, i.build_id, tags.join(" "), i.source.url);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct PromoteArgs {
    /// The image (its name in the service's registry).
    image: String,
    /// The tag to take it from.
    #[arg(long, default_value = "testing")]
    from: String,
    /// The tag to move.
    #[arg(long, default_value = "latest")]
    to: String,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

pub fn promote(args: PromoteArgs) -> anyhow::Result<ExitCode> {
    let p = args.server.client()?.promote(&args.image, &PromoteRequest { from: args.from, to: args.to })?;
    if args.json {
        return print_json(&p);
    }
    println!("{} (build {})", p.reference, p.build_id);
    Ok(ExitCode::SUCCESS)
}
