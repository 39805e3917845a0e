//! A private PostgreSQL for tests: initdb + pg_ctl in a temporary folder, listening on
//! a loopback port and a socket in that folder, stopped (by pg_ctl, then by its PID) when
//! dropped. Skipped (None) when PostgreSQL is not installed; CI installs it.

use std::path::PathBuf;
use std::process::Command;

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub url: String,
}

fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql").ok()?.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).filter(|p| p.join("initdb").exists()).collect();
    dirs.sort();
    dirs.pop()
}

/// initdb refuses to run as root; the cluster belongs to the `postgres` user then.
fn as_db_user(program: PathBuf) -> Command {
    if rustix::process::geteuid().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Postgres {
    pub fn start() -> Option<Postgres> {
        let Some(bin) = bin_dir() else {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL is not installed (apt package postgresql; scripts/install-deps.sh installs it)");
            }
            eprintln!("skipping PostgreSQL: not installed");
            return None;
        };
        let dir = tempfile::Builder::new().prefix("strata-pg-").tempdir().unwrap();
        let data = dir.path().join("data");
        if rustix::process::geteuid().is_root() {
            let ok = Command::new("chown").args(["postgres:postgres"]).arg(dir.path()).status().unwrap().success();
            assert!(ok, "chown postgres");
        }
        let out = as_db_user(bin.join("initdb")).args(["-A", "trust", "-U", "strata", "-E", "UTF8", "-D"]).arg(&data).output().unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let port = free_port();
        let opts = format!("-h 127.0.0.1 -p {port} -k {}", dir.path().display());
        let out = as_db_user(bin.join("pg_ctl"))
            .args(["-D"])
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(dir.path().join("log"))
            .args(["-w", "start"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start: {}{}", String::from_utf8_lossy(&out.stderr), std::fs::read_to_string(dir.path().join("log")).unwrap_or_default());
        Some(Postgres { url: format!("postgres://strata@127.0.0.1:{port}/postgres"), bin, dir })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let stopped = as_db_user(self.bin.join("pg_ctl")).arg("-D").arg(&data).args(["-m", "immediate", "-w", "stop"]).output().is_ok_and(|o| o.status.success());
        if !stopped {
            // Its PID, from the postmaster's own file.
            if let Some(pid) = std::fs::read_to_string(data.join("postmaster.pid")).ok().and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<i32>().ok())) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}
