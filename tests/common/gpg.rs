//! A throwaway signing key and `rpmsign`, for the tests of gpgcheck repositories.

use super::*;

/// A new RSA signing key in `dir/gnupg` (the GNUPGHOME to sign with) and its public half,
/// ASCII-armored, in `dir/key.asc` (a repo's gpgkey).
pub fn throwaway_key(dir: &Path) -> (PathBuf, PathBuf) {
    require_tool("gpg");
    require_tool("rpmsign");
    let home = dir.join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let gpg = || {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", &home).args(["--batch", "--quiet", "--passphrase", ""]);
        c
    };
    assert_ok("gpg --quick-gen-key", &run(gpg().args(["--quick-gen-key", "Strata Test <strata-test@strata.invalid>", "rsa2048", "sign", "never"])));
    let public = run(gpg().args(["--armor", "--export", "strata-test@strata.invalid"]));
    let key = dir.join("key.asc");
    std::fs::write(&key, &public.stdout).unwrap();
    (home, key)
}

/// Signs `rpm` in place with the key of [`throwaway_key`]'s `home`.
pub fn rpmsign(home: &Path, rpm: &Path) {
    let out = run(Command::new("rpmsign")
        .env("GNUPGHOME", home)
        .arg("--addsign")
        .args(["--define", "_gpg_name strata-test@strata.invalid", "--define", "__gpg /usr/bin/gpg"])
        .arg(rpm)
        .stdin(std::process::Stdio::null()));
    assert_ok("rpmsign", &out);
}

/// Stops the gpg-agent that signing started for `home`.
pub fn stop_agent(home: &Path) {
    let _ = Command::new("gpgconf").env("GNUPGHOME", home).args(["--kill", "gpg-agent"]).status();
}
