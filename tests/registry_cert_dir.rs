//! `--cert-dir`: a registry serving TLS with a certificate from a private CA (made here with
//! openssl) is refused as an unknown issuer, naming the registry, and reached — verified,
//! not insecure — once the CA's certificate is in the folder `--cert-dir` names.

mod common;

#[path = "../crates/strata-registry/tests/common/mod.rs"]
#[allow(unused_imports)]
mod registry;

use common::build::Builds;
use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn openssl(dir: &Path, args: &[&str]) {
    let out = run(Command::new("openssl").current_dir(dir).args(args));
    assert_ok(&format!("openssl {args:?}"), &out);
}

struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_private_ca_is_trusted_through_cert_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    openssl(&pki, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=strata test CA"]);
    openssl(&pki, &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
    std::fs::write(pki.join("ext.cnf"), "subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\n").unwrap();
    openssl(&pki, &["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf"]);
    let certs = tmp.path().join("certs.d");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(pki.join("ca.pem"), certs.join("ca.crt")).unwrap();

    let port = registry::free_port();
    let host = format!("127.0.0.1:{port}");
    let config = tmp.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n  tls:\n    certificate: {}\n    key: {}\n",
            tmp.path().join("data").display(),
            pki.join("server.pem").display(),
            pki.join("server.key").display()
        ),
    )
    .unwrap();
    let _registry = Stop(Command::new("docker-registry").arg("serve").arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("docker-registry"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(&host).is_err() {
        assert!(std::time::Instant::now() < deadline, "the TLS registry did not come up");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let b = Builds::new();
    b.busybox_base();
    let dest = format!("{host}/team/bb:1");
    let push = |extra: &[&str]| run(b.strata().args(["push", "bb", &dest]).args(extra).arg("--store").arg(b.store()));
    let err = assert_fails("a registry whose CA is not trusted", &push(&[]));
    assert!(err.contains(&host), "names the registry: {err}");
    assert!(err.to_lowercase().contains("certificate") || err.to_lowercase().contains("issuer") || err.contains("TLS"), "says it is the certificate: {err}");

    let out = push(&["--cert-dir", certs.to_str().unwrap()]);
    assert_ok("push --cert-dir", &out);
    let stored = b.inspect("bb");
    let digest = String::from_utf8(registry::skopeo(&["inspect", "--cert-dir", certs.to_str().unwrap(), "--format", "{{.Digest}}", &format!("docker://{dest}")])).unwrap();
    assert_eq!(digest.trim(), stored["manifest"].as_str().unwrap(), "skopeo, trusting the same CA, sees the pushed image");

    // Pull back through the same trust, into a fresh store.
    let c = Builds::new();
    assert_ok("pull --cert-dir", &run(c.strata().args(["pull", &dest, "--cert-dir", certs.to_str().unwrap()]).arg("--store").arg(c.store())));

    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = assert_fails("a --cert-dir without certificates", &push(&["--cert-dir", empty.to_str().unwrap()]));
    assert!(err.contains("no CA certificate"), "{err}");
}
