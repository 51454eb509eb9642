//! vsamrd as a process of its own, as operators run it: started from a
//! configuration file, killed with SIGKILL, measured by its RSS.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vsam_client::Connection;

/// A running vsamrd, killed when dropped.
pub struct Vsamrd {
    child: Child,
    /// `127.0.0.1:PORT` it serves.
    pub address: String,
    /// From spawn to the first accepted HELLO.
    pub ready_after: Duration,
    /// `127.0.0.1:PORT` of its admin interface.
    pub admin_address: String,
    /// Its admin token file.
    pub token_file: PathBuf,
    log: PathBuf,
}

/// The vsamrd binary built beside this program.
fn binary() -> Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name("vsamrd");
    if !path.exists() {
        bail!(
            "{} is missing: build it in the same profile first (cargo build --release -p vsam-host)",
            path.display()
        );
    }
    Ok(path)
}

impl Vsamrd {
    /// Writes `dir/vsamrd.toml` (a `[server]` section on a free loopback
    /// port with data in `dir/data`, then `sections`), starts vsamrd on it
    /// and waits until it answers. Its log goes to `dir/vsamrd.log`. A port
    /// found free can be taken by another socket before vsamrd binds it:
    /// vsamrd then exits at once saying so, and is started again on other
    /// ports.
    pub async fn start(dir: &Path, server: &str, sections: &str) -> Result<Self> {
        let mut attempt = 1;
        loop {
            match Self::start_once(dir, server, sections).await? {
                Ok(started) => return Ok(started),
                Err(taken) if attempt < 5 => {
                    eprintln!(
                        "vsamrd could not bind a port found free ({taken}); starting it on others"
                    );
                    attempt += 1;
                }
                Err(taken) => bail!("vsamrd found its ports taken 5 times: {taken}"),
            }
        }
    }

    /// One start; `Ok(Err(line))` when vsamrd exited because a port was
    /// taken.
    async fn start_once(
        dir: &Path,
        server: &str,
        sections: &str,
    ) -> Result<std::result::Result<Self, String>> {
        let address = format!("127.0.0.1:{}", vsam_conformance::free_port());
        let admin_address = format!("127.0.0.1:{}", vsam_conformance::free_port());
        let config = dir.join("vsamrd.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"{address}\"\ndata_dir = \"{}\"\n{server}\n[admin]\nlisten = \"{admin_address}\"\nwatch_files = false\n{sections}",
                dir.join("data").display()
            ),
        )?;
        let log = dir.join("vsamrd.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let logged_before = log_file.metadata()?.len() as usize;
        let started = Instant::now();
        let mut child = Command::new(binary()?)
            .arg("--config")
            .arg(&config)
            .env("VSAMRD_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .context("starting vsamrd")?;
        loop {
            if let Some(status) = child.try_wait()? {
                let text = std::fs::read(&log).unwrap_or_default();
                let this_start = String::from_utf8_lossy(&text[logged_before.min(text.len())..]);
                if let Some(line) = this_start
                    .lines()
                    .find(|line| line.contains("Address already in use"))
                {
                    return Ok(Err(line.to_string()));
                }
                bail!("vsamrd exited at start ({status}):\n{}", tail(&log));
            }
            if Connection::connect(&address).await.is_ok() {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("vsamrd did not answer within 120 s:\n{}", tail(&log));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(Ok(Self {
            child,
            address,
            ready_after: started.elapsed(),
            admin_address,
            token_file: dir.join("data/admin.token"),
            log,
        }))
    }

    /// A client of its admin interface.
    pub async fn admin(&self) -> Result<vsam_client::admin::AdminClient> {
        let token = vsam_client::admin::read_token(&self.token_file)?;
        vsam_client::admin::AdminClient::connect(&self.admin_address, token).await
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A handle that sends SIGKILL to this vsamrd from another task.
    pub fn killer(&self) -> Killer {
        Killer(self.child.id() as libc::pid_t)
    }

    /// Runs `work` for each of `clients` in a task of its own (given the
    /// address and a seed of its own), SIGKILLs this vsamrd `after_ms` plus
    /// a random moment of up to 1.5 s later, and returns what each client's
    /// work returned once the kill broke it, in the clients' order.
    pub async fn kill_during<C, R, F, Fut>(
        &self,
        clients: Vec<C>,
        after_ms: u64,
        rng: &mut crate::stores::Rng,
        work: F,
    ) -> Result<Vec<R>>
    where
        F: Fn(String, C, u64) -> Fut,
        Fut: std::future::Future<Output = R> + Send + 'static,
        R: Send + 'static,
    {
        let tasks: Vec<_> = clients
            .into_iter()
            .map(|client| tokio::spawn(work(self.address.clone(), client, rng.next())))
            .collect();
        // A moment anywhere from the first requests to well into the load.
        tokio::time::sleep(Duration::from_millis(after_ms + rng.below(1500))).await;
        self.killer().kill();
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            results.push(task.await?);
        }
        Ok(results)
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, and waits for a clean exit.
    pub async fn terminate(mut self) -> Result<()> {
        // SAFETY: signalling our own child, which has not been reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("vsamrd stopped with {status}:\n{}", tail(&self.log));
                }
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("vsamrd did not stop within 60 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// CPU time (user and system) spent so far, in seconds.
    pub fn cpu_seconds(&self) -> Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // The fields after the command name, which ends with the last ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .context("no command in /proc/PID/stat")?
            .1
            .split_whitespace()
            .collect();
        let ticks = |index: usize| -> Result<f64> {
            Ok(fields
                .get(index)
                .context("short /proc/PID/stat")?
                .parse::<f64>()?)
        };
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        // utime and stime: fields 14 and 15 of stat, 12 and 13 after the name.
        Ok((ticks(11)? + ticks(12)?) / per_second)
    }

    /// The last lines of its log, to show beside a broken promise.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    /// Resident set size in KiB (`VmRSS` of /proc).
    pub fn rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .context("no VmRSS in /proc/PID/status")
    }
}

impl Drop for Vsamrd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends SIGKILL to a vsamrd (see [`Vsamrd::killer`]).
#[derive(Clone, Copy)]
pub struct Killer(libc::pid_t);

impl Killer {
    /// SIGKILL now.
    pub fn kill(self) {
        // SAFETY: the pid is a child of this process that is reaped only by
        // `Vsamrd::kill` or its drop, after this signal.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
