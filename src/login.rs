//! `strata login` and `strata logout`, as podman spells them: credentials checked against
//! the registry, then written to (or removed from) the containers auth file.

use anyhow::{bail, Context};
use clap::{ArgAction, Args};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use strata_registry::auth::login::{default_auth_file, is_unauthorized, login_key, registry_of_key, remove_login, store_login};
use strata_registry::{Client, ClientConfig, Credential, Credentials};

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The registry, host[:port] (or host[:port]/namespace for credentials of one namespace).
    registry: String,
    /// User name [default: asked on the terminal].
    #[arg(short = 'u', long = "username", value_name = "USER")]
    username: Option<String>,
    /// Password (visible to other users in the process list: prefer the prompt or
    /// --password-stdin).
    #[arg(short = 'p', long = "password", value_name = "PASS", conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long = "password-stdin")]
    password_stdin: bool,
    /// Auth file to write [default: $REGISTRY_AUTH_FILE, else
    /// $XDG_RUNTIME_DIR/containers/auth.json, else ~/.config/containers/auth.json].
    #[arg(long = "authfile", value_name = "FILE")]
    authfile: Option<PathBuf>,
    /// --tls-verify=false: reach the registry over plain HTTP or unverified TLS.
    #[arg(long = "tls-verify", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set)]
    tls_verify: Option<bool>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// The registry whose credentials to remove.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    registry: Option<String>,
    /// Remove the credentials of every registry from the auth file.
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Auth file to edit [default: the one `strata login` writes].
    #[arg(long = "authfile", value_name = "FILE")]
    authfile: Option<PathBuf>,
}

fn auth_file(given: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(p) => Ok(p.clone()),
        None => default_auth_file().context("no auth file: set $REGISTRY_AUTH_FILE or $HOME, or give --authfile"),
    }
}

pub fn login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let key = login_key(&args.registry);
    if key.is_empty() {
        bail!("login: no registry given");
    }
    let registry = registry_of_key(&key);
    let path = auth_file(&args.authfile)?;
    let username = match &args.username {
        Some(u) => u.clone(),
        None if args.password_stdin => bail!("--password-stdin needs --username"),
        None if std::io::stdin().is_terminal() => prompt_line("Username: ")?,
        None => bail!("login to {key}: give --username (standard input is not a terminal to ask on)"),
    };
    if username.is_empty() {
        bail!("login to {key}: empty user name");
    }
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        match &args.password {
            Some(p) => p.clone(),
            None => read_password(&format!("Password for {username} at {key}: "))?,
        }
    };
    if password.is_empty() {
        bail!("login to {key}: empty password");
    }
    let mut credentials = Credentials::none();
    credentials.insert(&registry, Credential::basic(&username, &password));
    let mut config = ClientConfig { credentials, ..ClientConfig::default() };
    let insecure_env = std::env::var("STRATA_INSECURE_REGISTRIES").unwrap_or_default();
    if args.tls_verify == Some(false) || insecure_env.split(',').any(|h| h.trim() == registry) {
        config = config.insecure(&registry);
    }
    if let Err(e) = Client::new(config).check_login(&registry) {
        if is_unauthorized(&e) {
            let why = match e.root() {
                strata_registry::Error::Unauthorized { detail, .. } => detail.clone(),
                other => other.to_string(),
            };
            bail!("login to {key} refused: user name or password not accepted ({why}); nothing written to {}", path.display());
        }
        return Err(anyhow::Error::new(e).context(format!("logging in to {key}")));
    }
    store_login(&path, &key, &username, &password)?;
    println!("Login Succeeded!");
    Ok(ExitCode::SUCCESS)
}

pub fn logout(args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let path = auth_file(&args.authfile)?;
    match &args.registry {
        Some(r) => {
            let key = login_key(r);
            if !remove_login(&path, Some(&key))? {
                bail!("not logged into {key} (no entry in {})", path.display());
            }
            println!("Removed login credentials for {key}");
        }
        None => {
            remove_login(&path, None)?;
            println!("Removed login credentials for all registries");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn prompt_line(prompt: &str) -> anyhow::Result<String> {
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading from the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Asks for a password on the terminal (standard input) without echoing it; an error when
/// standard input is not a terminal.
pub fn read_password(prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("no password given and standard input is not a terminal to ask on (use --password-stdin or give it)");
    }
    // SAFETY: termios is plain data; tcgetattr/tcsetattr on fd 0, which is a terminal.
    let saved = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(0, &mut t) != 0 {
            return Err(std::io::Error::last_os_error()).context("reading the terminal's settings");
        }
        let saved = t;
        t.c_lflag &= !libc::ECHO;
        t.c_lflag |= libc::ECHONL;
        libc::tcsetattr(0, libc::TCSANOW, &t);
        saved
    };
    let line = prompt_line(prompt);
    // SAFETY: as above; restores what tcgetattr returned.
    unsafe {
        libc::tcsetattr(0, libc::TCSANOW, &saved);
    }
    line
}
