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
        let version = format!("{}-1", env!("CARGO_PKG_VERSION"));
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
            "./lib/systemd/system/opticon-collector.service",
            "./usr/share/man/man8/opticon-collector.8.gz",
            "./usr/share/doc/opticon-server/copyright",
            "./usr/share/doc/opticon-server/changelog.Debian.gz",
        ] {
            assert!(server.contains(f), "{f} not in opticon-server");
        }
        assert!(list("opticon-agent").contains("./var/lib/opticon/probes/raid.check"));
        let deb_dir = std::path::PathBuf::from(format!("{target}/deb"));
        lintian(&deb_dir);
        package_lifecycle(&deb_dir, &version);
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

/// Tags lintian reports that are accepted, each for a reason:
const LINTIAN_ACCEPTED: [(&str, &str); 5] = [
    // Static-pie executables are ET_DYN without an interpreter, which
    // lintian takes for shared libraries.
    ("shared-library-lacks-prerequisites", "static-pie binaries"),
    // Maintenance runs from cron by design (the design card), and
    // systemd-less legacy hosts are a target.
    ("missing-systemd-timer-for-cron-script", "cron by design"),
    // Not an upload to the Debian archive: no bug to close.
    ("initial-upload-closes-no-bugs", "not a Debian upload"),
    // The init scripts run on hosts without LSB functions, and sourcing
    // them on systemd hosts redirects restart to systemctl, skipping the
    // configuration check that must come before the stop.
    (
        "init.d-script-does-not-source-init-functions",
        "portable scripts",
    ),
    // /var/opticon/db is the original Opticon's database path, kept so
    // that its configs and tools carry over.
    ("non-standard-dir-in-var", "the original's path"),
];

/// lintian on both packages: nothing beyond the accepted tags.
fn lintian(deb_dir: &std::path::Path) {
    let debs: Vec<_> = std::fs::read_dir(deb_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    let Ok(out) = Command::new("lintian")
        .args(["--tag-display-limit", "0"])
        .args(&debs)
        .output()
    else {
        common::unavailable("lintian");
        return;
    };
    let said = String::from_utf8_lossy(&out.stdout);
    let unexpected: Vec<&str> = said
        .lines()
        .filter(|l| l.starts_with("E:") || l.starts_with("W:"))
        .filter(|l| {
            !LINTIAN_ACCEPTED
                .iter()
                .any(|(tag, _)| l.contains(&format!(": {tag}")))
        })
        .collect();
    assert!(unexpected.is_empty(), "lintian: {unexpected:#?}");
}

/// Install both packages into a dpkg root of their own, edit a conffile,
/// install the same version again (an upgrade), remove, then purge.
fn package_lifecycle(deb_dir: &std::path::Path, version: &str) {
    let root = Dir::new("dpkg");
    let r = root.path("");
    std::fs::create_dir_all(r.join("var/lib/dpkg/updates")).unwrap();
    std::fs::create_dir_all(r.join("var/lib/dpkg/info")).unwrap();
    std::fs::write(r.join("var/lib/dpkg/status"), "").unwrap();
    let dpkg = |args: &[&str]| {
        let out = Command::new("dpkg")
            .arg(format!("--instdir={}", r.display()))
            .arg(format!("--admindir={}", r.join("var/lib/dpkg").display()))
            // Maintainer scripts run here with DPKG_ROOT set; the
            // private status file knows no other package.
            .args([
                "--force-script-chrootless",
                "--force-depends",
                "--force-not-root",
            ])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dpkg {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deb = |name: &str| {
        deb_dir
            .join(format!("{name}_{version}_{}.deb", arch()))
            .display()
            .to_string()
    };
    let (agent, server) = (deb("opticon-agent"), deb("opticon-server"));
    dpkg(&["-i", &agent, &server]);
    let mode = |p: &str| {
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(r.join(p)).unwrap().permissions(),
        ) & 0o7777
    };
    for f in [
        "usr/sbin/opticon-agent",
        "usr/sbin/opticon-collector",
        "usr/bin/opticon",
    ] {
        assert_eq!(mode(f), 0o755, "{f}");
    }
    for f in [
        "etc/opticon/opticon-agent.conf",
        "etc/opticon/opticon-collector.conf",
        "etc/opticon/opticon-api.conf",
    ] {
        assert_eq!(mode(f), 0o640, "{f}: daemon configs are root:opticon 0640");
    }
    assert_eq!(mode("etc/opticon/opticon-cli.conf"), 0o644);
    assert_eq!(mode("var/lib/opticon/probes/raid.probe"), 0o755);
    // The installed agent checks its shipped config, probes included.
    let check = Command::new(r.join("usr/sbin/opticon-agent"))
        .args(["-t", "-c"])
        .arg(r.join("etc/opticon/opticon-agent.conf"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let conf = r.join("etc/opticon/opticon-agent.conf");
    let edited = std::fs::read_to_string(&conf).unwrap() + "# edited by the admin\n";
    std::fs::write(&conf, &edited).unwrap();
    dpkg(&["-i", &agent, &server]);
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        edited,
        "an upgrade keeps an edited conffile"
    );
    assert_eq!(mode("etc/opticon/opticon-agent.conf"), 0o640);
    let status = dpkg(&["-s", "opticon-agent"]);
    assert!(status.contains("Status: install ok installed"), "{status}");
    dpkg(&["-r", "opticon-agent", "opticon-server"]);
    assert!(!r.join("usr/sbin/opticon-agent").exists());
    assert!(conf.exists(), "remove keeps the configs");
    dpkg(&["-P", "opticon-agent", "opticon-server"]);
    for gone in [
        "etc/opticon",
        "etc/init.d/opticon-agent",
        "etc/cron.d/opticon-db",
        "var/opticon",
        "lib/systemd/system/opticon-api.service",
    ] {
        assert!(!r.join(gone).exists(), "purge left {gone}");
    }
    // A database that holds tenants survives a purge, and says so.
    dpkg(&["-i", &server]);
    let tenant = r.join("var/opticon/db/0296d893-8187-4f44-a31b-bf3b4c19fc10");
    std::fs::create_dir_all(&tenant).unwrap();
    std::fs::write(tenant.join("tenant.conf"), "{}").unwrap();
    let said = dpkg(&["-P", "opticon-server"]);
    assert!(
        tenant.join("tenant.conf").exists(),
        "purge deleted stored data"
    );
    assert!(
        said.contains("holds tenants and is left in place"),
        "{said}"
    );
}

fn arch() -> String {
    Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "amd64".into())
}
