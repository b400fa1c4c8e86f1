//! `make static` gives binaries without shared libraries that run from a
//! clean directory (built in a target directory of their own, so this
//! test does not wait on the build that runs it).

use crate::common;

use common::Dir;
use std::process::Command;

#[test]
fn make_static_binaries_run_anywhere() {
    // Beside the build running this test: CARGO_TARGET_DIR when set.
    let target = format!(
        "{}/static-test",
        std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target"
        )
        .to_string())
    );
    let target = target.as_str();
    let out = Command::new("make")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "--no-print-directory",
            "static",
            &format!("TARGET_DIR={target}"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let clean = Dir::new("static");
    for bin in [
        "opticon",
        "opticon-db",
        "opticon-agent",
        "opticon-collector",
        "opticon-api",
    ] {
        let path = format!("{target}/static/{bin}");
        let ldd = Command::new("ldd").arg(&path).output().unwrap();
        let said = String::from_utf8_lossy(&ldd.stdout).to_string()
            + &String::from_utf8_lossy(&ldd.stderr);
        assert!(
            said.contains("statically linked") || said.contains("not a dynamic executable"),
            "{bin}: {said}"
        );
        // Copied alone into an empty directory, it runs.
        let copy = clean.path(bin);
        std::fs::copy(&path, &copy).unwrap();
        let v = Command::new(&copy)
            .arg("--version")
            .env_clear()
            .current_dir(clean.path(""))
            .output()
            .unwrap();
        assert!(
            v.status.success() && String::from_utf8_lossy(&v.stdout).starts_with(bin),
            "{bin} --version"
        );
    }
    // The packages carry them; the tarball carries the sources.
    let make = |goal: &str| {
        let out = Command::new("make")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "--no-print-directory",
                goal,
                &format!("TARGET_DIR={target}"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "make {goal}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let have_dpkg = Command::new("dpkg-deb").arg("--version").output().is_ok();
    if !have_dpkg {
        common::unavailable("make deb (no dpkg-deb)");
    }
    if have_dpkg {
        make("deb");
        let version = env!("CARGO_PKG_VERSION");
        let list = |pkg: &str| {
            let deb = std::fs::read_dir(format!("{target}/deb"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.to_string_lossy().contains(&format!("{pkg}_{version}_")))
                .unwrap_or_else(|| panic!("no {pkg} package"));
            let out = Command::new("dpkg-deb")
                .arg("-c")
                .arg(&deb)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).to_string()
        };
        assert!(list("opticon-agent").contains("./usr/sbin/opticon-agent"));
        let server = list("opticon-server");
        for f in [
            "./usr/sbin/opticon-collector",
            "./usr/sbin/opticon-api",
            "./usr/bin/opticon",
            "./etc/cron.d/opticon-db",
        ] {
            assert!(server.contains(f), "{f} not in opticon-server");
        }
    }
    make("dist");
    let tarball = format!("{target}/dist/opticon-{}.tar.gz", env!("CARGO_PKG_VERSION"));
    let out = Command::new("tar")
        .args(["tzf", &tarball])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("/Cargo.toml"));
    let once = Command::new(clean.path("opticon-agent"))
        .arg("--once")
        .env_clear()
        .output()
        .unwrap();
    assert!(once.status.success());
    assert!(String::from_utf8_lossy(&once.stdout).contains("hostname"));
}
