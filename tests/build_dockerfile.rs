//! `strata build` on unmodified Dockerfiles, checked on the unpacked result (umoci): the
//! language (multi-stage, ARG/ENV scoping, USER/WORKDIR, heredocs, .dockerignore, ONBUILD,
//! whiteouts), RUN's sandbox (no network by default), the step cache, determinism, --squash,
//! the recorded base and build record, and the errors a user sees.

mod common;

use common::build::Builds;
use common::*;
use std::io::{Read, Write};

const MULTI: &str = r#"ARG VERSION=1
FROM bb AS builder
ARG VERSION
ENV GREETING="hi $VERSION"
RUN mkdir /out && echo "$GREETING ${MISSING:-dflt} ${VERSION:+set}" > /out/args.txt && echo "v=$VERSION" > /out/env.txt
RUN <<EOT
echo one > /out/heredoc
echo two >> /out/heredoc
EOT
RUN <<EOT
#!/bin/sh
echo "from a shebang heredoc: $0" > /out/shebang
EOT
RUN echo builder-only > /builder-only

FROM bb
COPY --from=builder /out/ /from-builder/
COPY . /ctx/
RUN rm /etc/motd
USER app
WORKDIR /home/app/work
RUN id -u > uid.txt && pwd > pwd.txt
ENV PATH=/bin:/usr/bin
LABEL org.example.purpose="tests" version=$VERSION
EXPOSE 8080/tcp 53/udp
CMD ["/bin/sh", "-c", "cat uid.txt"]
"#;

#[test]
fn multi_stage_scoping_heredocs_user_workdir_dockerignore_and_whiteouts() {
    let b = Builds::new();
    b.busybox_base();
    let ctx = b.context("multi", &[("Dockerfile", MULTI), ("data.txt", "data\n"), ("secret.txt", "secret\n"), ("logs/a.log", "x"), ("logs/keep.log", "k"), (".dockerignore", "secret.txt\nlogs/*.log\n!logs/keep.log\n")]);
    let built = b.build_json(&ctx, &["-t", "multi", "--build-arg", "VERSION=2"]);
    assert_eq!(built["warnings"].as_array().unwrap().len(), 0, "{built}");
    let (_keep, root) = b.unpack("multi");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    // ARG before FROM, re-declared in the stage, overridden by --build-arg; ENV sees it.
    assert_eq!(read("from-builder/args.txt"), "hi 2 dflt set\n");
    assert_eq!(read("from-builder/env.txt"), "v=2\n");
    assert_eq!(read("from-builder/heredoc"), "one\ntwo\n");
    assert!(read("from-builder/shebang").starts_with("from a shebang heredoc"), "{}", read("from-builder/shebang"));
    assert!(!root.join("builder-only").exists(), "only what COPY --from names comes over");
    // .dockerignore, with an exception.
    assert_eq!(read("ctx/data.txt"), "data\n");
    assert!(!root.join("ctx/secret.txt").exists());
    assert!(!root.join("ctx/logs/a.log").exists());
    assert_eq!(read("ctx/logs/keep.log"), "k");
    // A RUN that deletes a base file: a whiteout, so the file is gone from the image.
    assert!(!root.join("etc/motd").exists());
    // USER and WORKDIR: the directory made for the user, RUN as the user in it.
    assert_eq!(read("home/app/work/uid.txt"), "1000\n");
    assert_eq!(read("home/app/work/pwd.txt"), "/home/app/work\n");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(root.join("home/app/work/uid.txt")).unwrap().uid(), 1000);
    assert_eq!(std::fs::metadata(root.join("home/app/work")).unwrap().uid(), 1000);

    let img = b.inspect("multi");
    let cfg = &img["config"]["config"];
    let env: Vec<&str> = cfg["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(env, ["PATH=/bin:/usr/bin"], "the builder's ENV stays in the builder; ARG values never reach the image");
    assert_eq!(cfg["User"], "app");
    assert_eq!(cfg["WorkingDir"], "/home/app/work");
    assert_eq!(cfg["Labels"]["org.example.purpose"], "tests");
    assert_eq!(cfg["Labels"]["version"], "", "VERSION was not declared in the final stage");
    assert!(cfg["ExposedPorts"].get("8080/tcp").is_some() && cfg["ExposedPorts"].get("53/udp").is_some(), "{cfg}");
    assert_eq!(cfg["Cmd"], serde_json::json!(["/bin/sh", "-c", "cat uid.txt"]));
    // Exactly the base recorded.
    let base = b.inspect("bb");
    assert_eq!(img["annotations"]["org.opencontainers.image.base.name"], "bb");
    assert_eq!(img["annotations"]["org.opencontainers.image.base.digest"], base["manifest"]);
    assert_eq!(built["base"]["digest"], base["manifest"]);
    let record = std::fs::read_to_string(b.store().join("strata/builds").join(built["manifest"].as_str().unwrap().trim_start_matches("sha256:"))).unwrap();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["base"]["digest"], base["manifest"]);
    assert_eq!(record["build_args"]["VERSION"], "2");
    assert_eq!(record["config"], built["image_id"]);
    assert!(record["dockerfile_digest"].as_str().unwrap().starts_with("sha256:") && record["context_digest"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn step_cache_reuses_what_did_not_change_and_source_date_epoch_makes_builds_reproducible() {
    let b = Builds::new();
    b.busybox_base();
    let df = "FROM bb\nRUN echo one > /one\nCOPY data.txt /data.txt\nRUN cat /data.txt > /copy\nENV X=1\nRUN echo two > /two\n";
    let ctx = b.context("cache", &[("Dockerfile", df), ("data.txt", "v1\n")]);
    let cached = |v: &serde_json::Value| v["steps"].as_array().unwrap().iter().map(|s| s["cached"].as_bool().unwrap()).collect::<Vec<_>>();
    let first = b.build_json(&ctx, &["-t", "c"]);
    assert_eq!(cached(&first), [false, false, false, false, false]);
    let again = b.build_json(&ctx, &["-t", "c"]);
    assert_eq!(cached(&again), [true, true, true, false, true], "ENV is not a cached step; everything else is");
    std::fs::write(ctx.join("data.txt"), "v2\n").unwrap();
    let changed = b.build_json(&ctx, &["-t", "c"]);
    assert_eq!(cached(&changed), [true, false, false, false, false], "COPY's content changed: it and what follows run again");
    let (_keep, root) = b.unpack("c");
    assert_eq!(std::fs::read_to_string(root.join("copy")).unwrap(), "v2\n");
    let none = b.build_json(&ctx, &["-t", "c", "--no-cache"]);
    assert!(cached(&none).iter().all(|c| !c));

    let sde = |b: &Builds| {
        let out = run(b.strata().env("SOURCE_DATE_EPOCH", "1700000000").arg("build").arg("--store").arg(b.store()).args(["--json", "--no-cache", "-t", "r"]).arg(&ctx));
        assert_ok("build with SOURCE_DATE_EPOCH", &out);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["manifest"].clone()
    };
    assert_eq!(sde(&b), sde(&b), "same inputs, same digest");
}

#[test]
fn run_has_no_network_unless_asked_and_a_failing_run_says_what_failed() {
    let b = Builds::new();
    b.busybox_base();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        // Answers one request (the host-network build's); the other build never connects.
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nonline");
        }
    });
    // (busybox-static's wget crashes in glibc's resolver; nc does not resolve names.)
    let df = format!("FROM bb\nRUN echo trying && printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 127.0.0.1 {port} > /page\n");
    let ctx = b.context("net", &[("Dockerfile", &df)]);
    let out = b.build(&ctx, &["-t", "net"]);
    let err = assert_fails("a RUN that uses the network", &out);
    assert!(err.contains(&format!("nc -w 5 127.0.0.1 {port} > /page")), "names the command: {err}");
    assert!(err.contains("exit code 1") && err.contains("trying") && err.contains("Connection refused"), "status and last output lines: {err}");
    assert!(err.contains("line 2"), "{err}");

    let out = b.build(&ctx, &["-t", "net", "--network", "host"]);
    assert_ok("the same RUN with --network host", &out);
    server.join().unwrap();
    let (_keep, root) = b.unpack("net");
    assert!(std::fs::read_to_string(root.join("page")).unwrap().ends_with("online"));
    // The generated /etc/hosts and resolv.conf are not committed.
    assert!(!root.join("etc/hosts").exists() && !root.join("etc/resolv.conf").exists());
}

#[test]
fn squash_onbuild_and_add_archives() {
    let b = Builds::new();
    b.busybox_base();
    let parent = b.context("parent", &[("Dockerfile", "FROM bb\nONBUILD RUN echo fired > /onbuild\nRUN echo a > /a\nRUN echo b > /b\n")]);
    b.build_json(&parent, &["-t", "parent"]);
    // A gzip'd tar, made by the system's tar.
    let child = b.context("child", &[("Dockerfile", "FROM parent\nADD site.tgz /srv/\nADD plain.txt /srv/plain.txt\nRUN rm /a\n"), ("site/index.html", "<h1>hi</h1>\n"), ("plain.txt", "p\n")]);
    let out = run(std::process::Command::new("tar").arg("-C").arg(&child).arg("-czf").arg(child.join("site.tgz")).arg("site"));
    assert_ok("tar czf", &out);
    let squashed = b.build_json(&child, &["-t", "child", "--squash"]);
    let base_layers = b.inspect("parent")["layers"].as_array().unwrap().len();
    assert_eq!(squashed["layers"].as_u64().unwrap() as usize, base_layers + 1, "--squash: one layer over the base");
    let (_keep, root) = b.unpack("child");
    assert_eq!(std::fs::read_to_string(root.join("onbuild")).unwrap(), "fired\n", "the parent's ONBUILD fired");
    assert_eq!(std::fs::read_to_string(root.join("srv/site/index.html")).unwrap(), "<h1>hi</h1>\n", "ADD unpacked the archive");
    assert_eq!(std::fs::read_to_string(root.join("srv/plain.txt")).unwrap(), "p\n");
    assert!(!root.join("a").exists() && root.join("b").exists(), "the squashed layer keeps the deletion");
    assert!(b.inspect("child")["config"]["config"].get("OnBuild").is_none_or(|v| v.is_null()), "triggers do not carry over");
}

#[test]
fn errors_name_the_line_the_path_and_the_image() {
    let b = Builds::new();
    b.busybox_base();
    let cases: [(&str, &str, &[&str]); 5] = [
        ("FROM bb\nRUNN echo hi\n", "unknown instruction", &["2:1", "RUNN echo hi", "RUN"]),
        ("FROM bb\nCOPY missing.txt /x\n", "missing COPY source", &["missing.txt", "not found"]),
        ("FROM bb\nCOPY ../outside /x\n", "source outside the context", &["../outside", "outside"]),
        ("FROM no-such-image\n", "unknown base", &["no-such-image", "not in the image store"]),
        ("FROM bb\nRUN exit 3\n", "failing RUN", &["exit 3", "3"]),
    ];
    for (i, (df, what, says)) in cases.iter().enumerate() {
        let ctx = b.context(&format!("err{i}"), &[("Dockerfile", df)]);
        let err = assert_fails(what, &b.build(&ctx, &["-t", "err"]));
        for s in *says {
            assert!(err.contains(s), "{what}: {s:?} not in {err}");
        }
    }
    assert!(run(b.strata().args(["images", "--json", "--store"]).arg(b.store())).stdout.windows(3).all(|w| w != b"err"), "a failed build tags nothing");
}

#[test]
fn target_stage_config_instructions_and_add_from_a_url() {
    let b = Builds::new();
    b.busybox_base();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\nfrom url\n");
    });
    let df = format!(
        "FROM bb AS tools\nADD http://127.0.0.1:{port}/files/notes.txt /srv/\nSHELL [\"/bin/sh\", \"-e\", \"-c\"]\nRUN echo shell-form > /srv/shell\nHEALTHCHECK --interval=30s --retries=2 CMD cat /srv/notes.txt\nSTOPSIGNAL SIGTERM\nVOLUME /data\nENTRYPOINT [\"/bin/cat\"]\n\nFROM tools\nRUN echo final-only > /final\n"
    );
    let ctx = b.context("target", &[("Dockerfile", &df)]);
    let built = b.build_json(&ctx, &["-t", "tools", "--target", "tools"]);
    server.join().unwrap();
    assert_eq!(built["steps"].as_array().unwrap().len(), 7, "the last stage is not built: {built}");
    let (_keep, root) = b.unpack("tools");
    assert_eq!(std::fs::read_to_string(root.join("srv/notes.txt")).unwrap(), "from url\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(root.join("srv/notes.txt")).unwrap().permissions().mode() & 0o7777, 0o600, "ADD <url> files are 0600, as Docker makes them");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(root.join("srv/notes.txt")).unwrap().mtime(), 1_445_412_480, "dated by the server's Last-Modified");
    assert_eq!(std::fs::read_to_string(root.join("srv/shell")).unwrap(), "shell-form\n");
    assert!(!root.join("final").exists());
    let cfg = &b.inspect("tools")["config"]["config"];
    assert_eq!(cfg["Shell"], serde_json::json!(["/bin/sh", "-e", "-c"]));
    assert_eq!(cfg["Healthcheck"]["Test"], serde_json::json!(["CMD-SHELL", "cat /srv/notes.txt"]));
    assert_eq!(cfg["Healthcheck"]["Interval"], 30_000_000_000u64);
    assert_eq!(cfg["Healthcheck"]["Retries"], 2);
    assert_eq!(cfg["StopSignal"], "SIGTERM");
    assert!(cfg["Volumes"].get("/data").is_some());
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["/bin/cat"]));
    let err = assert_fails("an unknown --target", &b.build(&ctx, &["--target", "nope"]));
    assert!(err.contains("nope") && err.contains("tools"), "{err}");
}

const MOUNTS: &str = r#"FROM bb AS gen
RUN mkdir /out && echo generated > /out/g.txt
FROM bb
RUN --mount=type=bind,from=gen,source=/out,target=/gen cat /gen/g.txt > /from-stage
RUN --mount=type=bind,source=data,target=/mnt/data cat /mnt/data/a.txt > /from-bind && ! touch /mnt/data/new 2>/dev/null
RUN --mount=type=bind,source=data/a.txt,target=/one.txt,rw echo changed > /one.txt && cat /one.txt > /rw-bind
RUN --mount=type=cache,target=/var/cache/app echo run >> /var/cache/app/log && cat /var/cache/app/log > /cache-seen
RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/t && grep -q ' /scratch tmpfs ' /proc/mounts && test -f /scratch/t
RUN --mount=type=secret,id=tok grep -qx 's3c.et' /run/secrets/tok && echo ok > /secret-ok
RUN --mount=type=secret,id=tok,env=TOK test "${TOK#s3}" = cret
"#;

#[test]
fn run_mounts_bind_cache_tmpfs_and_secrets_leave_nothing_behind() {
    let b = Builds::new();
    b.busybox_base();
    let ctx = b.context("mounts", &[("Dockerfile", MOUNTS), ("data/a.txt", "a\n")]);
    let secret = b.path().join("token");
    std::fs::write(&secret, "s3cret").unwrap();
    let secret_arg = format!("id=tok,src={}", secret.display());
    let built = b.build_json(&ctx, &["-t", "mounts", "--secret", &secret_arg]);
    let (_keep, root) = b.unpack("mounts");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(read("from-bind"), "a\n", "the bind shows the context's files (read-only: touch failed)");
    assert_eq!(read("rw-bind"), "changed\n");
    assert_eq!(std::fs::read_to_string(ctx.join("data/a.txt")).unwrap(), "a\n", "an rw bind's writes are discarded");
    assert_eq!(read("cache-seen"), "run\n");
    assert_eq!(read("secret-ok"), "ok\n");
    for gone in ["mnt", "one.txt", "scratch", "run", "var/cache/app", "gen"] {
        assert!(!root.join(gone).exists(), "{gone}: a mount target the step needed is part of the image");
    }
    let t = tree(&root);
    for (path, what) in &t {
        let p = root.join(path.trim_start_matches('/'));
        if p.is_file() && !p.is_symlink() {
            assert!(!std::fs::read(&p).unwrap().windows(6).any(|w| w == b"s3cret"), "the secret is in {path} ({what})");
        }
    }
    assert!(!b.inspect("mounts").to_string().contains("s3cret"), "the secret is in the config or history");
    assert_eq!(read("from-stage"), "generated\n");
    assert!(!root.join("gen").exists() && !root.join("out").exists());
    assert_eq!(built["steps"].as_array().unwrap().len(), 8, "one per RUN");

    // The step cache: a new secret value reuses every step; new bind content reruns from there.
    std::fs::write(&secret, "rotated").unwrap();
    let again = b.build_json(&ctx, &["-t", "mounts", "--secret", &secret_arg]);
    assert!(again["steps"].as_array().unwrap().iter().all(|s| s["cached"] == true), "{again}");
    std::fs::write(&secret, "s3cret").unwrap();
    std::fs::write(ctx.join("data/a.txt"), "b\n").unwrap();
    let changed = b.build_json(&ctx, &["-t", "mounts", "--secret", &secret_arg]);
    assert_eq!((changed["steps"][1]["cached"].clone(), changed["steps"][2]["cached"].clone()), (true.into(), false.into()), "bind content is part of the key: {changed}");
    let (_keep2, root2) = b.unpack("mounts");
    assert_eq!(std::fs::read_to_string(root2.join("from-bind")).unwrap(), "b\n");
    // The cache mount outlives the build: the rerun saw the first run's entry.
    assert_eq!(std::fs::read_to_string(root2.join("cache-seen")).unwrap(), "run\nrun\n");

    // What is not supported or not given is an error naming it.
    let ssh = b.context("ssh", &[("Dockerfile", "FROM bb\nRUN --mount=type=ssh true\n")]);
    let err = assert_fails("RUN --mount=type=ssh", &b.build(&ssh, &[]));
    assert!(err.contains("type=ssh") && err.contains("line 2"), "{err}");
    let req = b.context("req", &[("Dockerfile", "FROM bb\nRUN --mount=type=secret,id=api,required true\n")]);
    let err = assert_fails("a required secret not given", &b.build(&req, &[]));
    assert!(err.contains("secret api is required"), "{err}");
    let out = b.context("outside", &[("Dockerfile", "FROM bb\nRUN --mount=source=../..,target=/x true\n")]);
    let err = assert_fails("a bind source outside the context", &b.build(&out, &[]));
    assert!(err.contains("outside"), "{err}");
}

#[test]
fn gc_removes_what_no_tag_needs_and_rebuilds_still_work() {
    let b = Builds::new();
    b.busybox_base();
    let old = b.context("old", &[("Dockerfile", "FROM bb\nRUN echo a > /a\nRUN echo b > /b\n")]);
    let new = b.context("new", &[("Dockerfile", "FROM bb\nRUN echo c > /c\n")]);
    let gc = |grace: &str| {
        let out = run(b.strata().args(["gc", "--json", "--grace", grace, "--store"]).arg(b.store()));
        assert_ok("strata gc", &out);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    b.build_json(&old, &["-t", "app"]);
    b.build_json(&new, &["-t", "app"]);
    b.build_json(&new, &["-t", "spare"]);
    // Everything is young: the grace period spares it.
    let spared = gc("1h");
    assert_eq!(spared["blobs_removed"], 0, "{spared}");
    assert!(spared["blobs_kept_young"].as_u64().unwrap() > 0, "{spared}");
    assert_ok("strata rmi", &run(b.strata().args(["rmi", "spare", "--store"]).arg(b.store())));
    let err = assert_fails("strata rmi of a missing tag", &run(b.strata().args(["rmi", "spare", "--store"]).arg(b.store())));
    assert!(err.contains("spare:latest: no such image"), "{err}");
    let report = gc("0s");
    // The old app's two layers, config and manifest.
    assert_eq!(report["blobs_removed"], 4, "{report}");
    assert!(report["cache_entries_removed"].as_u64().unwrap() >= 2, "step-cache entries and the build record of the old image: {report}");
    assert!(report["unpacked_layers_removed"].as_u64().unwrap() >= 1, "{report}");
    // What is tagged is whole; a second gc finds nothing; the old Dockerfile builds again.
    for image in ["app", "bb"] {
        let (_keep, root) = b.unpack(image);
        assert!(root.join("bin/busybox").exists());
    }
    let again = gc("0s");
    assert_eq!((again["blobs_removed"].as_u64(), again["cache_entries_removed"].as_u64()), (Some(0), Some(0)), "{again}");
    let rebuilt = b.build_json(&old, &["-t", "app"]);
    assert!(rebuilt["steps"].as_array().unwrap().iter().all(|s| s["cached"] == false), "the removed steps are not offered from the cache: {rebuilt}");
}
