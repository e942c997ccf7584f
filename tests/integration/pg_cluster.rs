//! A throw-away PostgreSQL cluster for the PostgreSQL-store tests:
//! Debian's `postgresql` package (installed by
//! `scripts/provision-postgres.sh`), `initdb` into a temporary directory,
//! trust authentication, listening on 127.0.0.1 on a free port with its
//! unix socket in the same directory, stopped (and the directory removed)
//! when the [`Cluster`] is dropped. `initdb` refuses to run as root, so as
//! root the cluster runs as the package's `postgres` user (`runuser`).
//!
//! Without PostgreSQL (not root, no registry) the tests that need it are
//! skipped with a loud message, except under `CI=true`, where they fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running cluster; stopped on drop.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The newest `/usr/lib/postgresql/VERSION/bin` holding initdb and pg_ctl.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

impl Cluster {
    /// Starts a cluster, provisioning PostgreSQL first if needed; `None`
    /// (after a loud message) when it cannot be had outside CI.
    pub fn start() -> Option<Self> {
        let bin = match bin_dir() {
            Some(b) => b,
            None => {
                let status = Command::new(root().join("scripts/provision-postgres.sh")).status();
                match bin_dir() {
                    Some(b) => b,
                    None => {
                        assert!(
                            std::env::var("CI").as_deref() != Ok("true"),
                            "scripts/provision-postgres.sh failed under CI: {status:?}"
                        );
                        eprintln!(
                            "\n\n*** SKIPPED: PostgreSQL is not installed and \
                             scripts/provision-postgres.sh failed ({status:?}); \
                             the PostgreSQL-store test did not run ***\n"
                        );
                        return None;
                    }
                }
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("telos-pg-")
            .tempdir()
            .unwrap();
        let run_as = is_root().then(|| "postgres".to_string());
        if let Some(user) = &run_as {
            let out = Command::new("chown")
                .arg(user)
                .arg(dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "chown: {out:?}");
        }
        let mut cluster = Cluster {
            dir,
            bin,
            run_as,
            port: 0,
        };
        let data = cluster.dir.path().join("data");
        let out = cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "telos",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        assert!(out.status.success(), "initdb: {out:?}");
        cluster.port = free_port();
        cluster.start_server();
        Some(cluster)
    }

    fn start_server(&self) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("log");
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} \
             -c max_connections=200 -c fsync=on -c synchronous_commit=on",
            self.port,
            self.dir.path().display()
        );
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {out:?}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Runs a program of the PostgreSQL bin directory (as the cluster's
    /// user).
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let path = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        cmd.args(args).current_dir("/").output().unwrap()
    }

    /// Runs SQL with psql in database `db`; panics when it fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "telos",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "psql {sql}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates database `name` and returns its URL.
    pub fn database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(name)
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://telos@127.0.0.1:{}/{name}", self.port)
    }

    /// A streaming-replication standby of this cluster on its own free
    /// port (`pg_basebackup -R` into a temporary directory, read-only
    /// until [`Cluster::promote`]), made synchronous: from here on the
    /// primary's commits wait until the standby has flushed them.
    pub fn standby(&self) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("telos-pg-standby-")
            .tempdir()
            .unwrap();
        if let Some(user) = &self.run_as {
            let out = Command::new("chown")
                .arg(user)
                .arg(dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "chown: {out:?}");
        }
        let standby = Cluster {
            dir,
            bin: self.bin.clone(),
            run_as: self.run_as.clone(),
            port: free_port(),
        };
        let data = standby.dir.path().join("data");
        let out = standby.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "telos",
                "-D",
                data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ],
        );
        assert!(out.status.success(), "pg_basebackup: {out:?}");
        standby.start_server();
        self.psql(
            "postgres",
            "ALTER SYSTEM SET synchronous_standby_names = '*'",
        );
        self.psql("postgres", "SELECT pg_reload_conf()");
        // Wait until the standby streams and is counted as synchronous.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self
            .psql(
                "postgres",
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
            )
            .trim()
            != "1"
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the standby never became synchronous"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        standby
    }

    /// SIGKILL of the postmaster (a crash of the machine's database).
    pub fn kill(&self) {
        let pid = std::fs::read_to_string(self.data().join("data/postmaster.pid")).unwrap();
        let pid = pid.lines().next().unwrap().trim().to_string();
        let out = Command::new("kill").args(["-KILL", &pid]).output().unwrap();
        assert!(out.status.success(), "kill: {out:?}");
    }

    /// Promotes a standby to primary (waits until it accepts writes).
    pub fn promote(&self) {
        let data = self.data().join("data");
        let out = self.run("pg_ctl", &["-D", data.to_str().unwrap(), "-w", "promote"]);
        assert!(out.status.success(), "pg_ctl promote: {out:?}");
    }

    /// The server log so far (for failure messages).
    #[allow(dead_code, reason = "used when a test fails")]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn data(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data().join("data");
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}
