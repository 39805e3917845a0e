//! Acceptance: the seeds' web-site example — `FROM web` (the composed nginx image),
//! MAINTAINER, `ADD ./mysite.tar /tmp/`, `RUN mv /tmp/mysite/* /var/www/html/`, EXPOSE,
//! ENTRYPOINT — built by `strata build`, saved, loaded into docker, serves the site's page on
//! a loopback port; a file the build deleted from the base is gone in the running container.

mod common;

use common::build::Builds;
use common::runtime::{require_engines, Dockerd};
use common::*;
use std::process::Command;
use std::time::Duration;

const SITE: &str = r#"FROM web
MAINTAINER Release Engineering <releng@example.com>
ADD ./mysite.tar /tmp/
RUN mv /tmp/mysite/* /var/www/html/ && rm /var/www/html/index.nginx-debian.html
EXPOSE 80
ENTRYPOINT ["/usr/sbin/nginx", "-g", "daemon off;"]
"#;

#[test]
fn the_web_site_example_serves_its_page_in_docker() {
    if !require_engines() {
        return;
    }
    let b = Builds::new();
    let spec = copy_corpus_spec("images.json", b.path());
    let out = run(b.strata().env("STRATA_STAGING_DIR", b.path().join("staging")).arg("compose").arg(&spec).args(["--image", "web", "--store"]).arg(b.store()));
    assert_ok("strata compose --image web", &out);

    let ctx = b.context("site", &[("Dockerfile", SITE), ("mysite/index.html", "<html><body>Hello from mysite</body></html>\n"), ("mysite/about.html", "about\n")]);
    assert_ok("tar cf mysite.tar", &run(Command::new("tar").arg("-C").arg(&ctx).arg("-cf").arg(ctx.join("mysite.tar")).arg("mysite")));
    std::fs::remove_dir_all(ctx.join("mysite")).unwrap();
    let built = b.build_json(&ctx, &["-t", "mysite"]);
    let web = b.inspect("web");
    assert_eq!(built["base"]["digest"], web["manifest"], "the exact base is recorded");
    let site = b.inspect("mysite");
    assert_eq!(site["config"]["author"], "Release Engineering <releng@example.com>");
    assert_eq!(site["layers"].as_array().unwrap().len(), web["layers"].as_array().unwrap().len() + 2, "ADD and RUN add a layer each");

    let archive = b.path().join("mysite.tar");
    assert_ok("strata save", &run(b.strata().args(["save", "mysite", "-o"]).arg(&archive).arg("--store").arg(b.store())));
    let docker = Dockerd::start().unwrap_or_else(|e| panic!("{e}"));
    docker.load(&archive).unwrap_or_else(|e| panic!("docker load: {e}"));
    let out = docker.run_with(&["--entrypoint", "/bin/sh"], "mysite:latest", &["-c", "test ! -e /var/www/html/index.nginx-debian.html && cat /var/www/html/about.html"]).unwrap_or_else(|e| panic!("docker run: {e}"));
    assert_eq!(out.trim(), "about", "the deleted base file is gone; the site's files are there");
    let served = docker.serve("mysite:latest", 80).unwrap_or_else(|e| panic!("docker serve: {e}"));
    let (status, body) = served.get("/", Duration::from_secs(30)).unwrap_or_else(|e| panic!("GET /: {e}"));
    assert_eq!(status, 200);
    assert!(body.contains("Hello from mysite"), "{body}");
}
