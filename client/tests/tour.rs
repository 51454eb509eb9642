//! The README's five-minute tour, run as written: every command of its
//! first `sh` block, in order, from a directory laid out as the
//! repository's (its `examples/`, the server's data in `vsam-data/`),
//! against vsamrd on its embedded default. A command followed by a
//! `# vsamr: ...` line must fail with that message; every other one must
//! succeed.

use std::path::Path;
use std::process::Command;
use vsam_host::RunningServer;
use vsam_host::config::Config;

/// One command of the tour, and the error it is shown to print, if any.
struct Step {
    line: String,
    fails_with: Option<String>,
}

/// The commands of the tour's first `sh` block.
fn tour(readme: &str) -> Vec<Step> {
    let section = readme
        .split("## A five-minute tour")
        .nth(1)
        .expect("the README has its tour");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the tour has an sh block");
    let mut steps: Vec<Step> = Vec::new();
    for line in block.lines() {
        let line = line.trim();
        if let Some(error) = line.strip_prefix("# vsamr: ") {
            let step = steps.last_mut().expect("an error follows a command");
            step.fails_with.get_or_insert_with(|| error.to_string());
        } else if !line.is_empty() && !line.starts_with('#') {
            steps.push(Step {
                line: line.to_string(),
                fails_with: None,
            });
        }
    }
    steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_tour_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let steps = tour(&readme);
    assert!(
        steps
            .first()
            .is_some_and(|step| step.line.starts_with("alias vsamr=")),
        "the tour names the client first"
    );
    let work = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(root.join("examples"), work.path().join("examples")).unwrap();
    let mut config = Config::embedded_default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.move_data_dir(work.path().join("vsam-data"));
    let server = RunningServer::start(&config).await.unwrap();
    let address = server.addr.to_string();
    let dir = work.path().to_path_buf();
    let ran = tokio::task::spawn_blocking(move || {
        // The alias names the release build; this run uses the client
        // built with the test.
        let client = format!("vsamr() {{ '{}' \"$@\"; }}", env!("CARGO_BIN_EXE_vsamr"));
        for step in &steps[1..] {
            let output = Command::new("bash")
                .arg("-c")
                .arg(format!("{client}\n{}", step.line))
                .current_dir(&dir)
                .env("VSAMR_SERVER", &address)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            match &step.fails_with {
                None => assert!(output.status.success(), "`{}` failed: {stderr}", step.line),
                Some(error) => {
                    assert!(!output.status.success(), "`{}` should fail", step.line);
                    assert!(
                        stderr.contains(error.as_str()),
                        "`{}` printed {stderr:?}, the tour shows {error:?}",
                        step.line
                    );
                }
            }
        }
        steps.len() - 1
    })
    .await
    .unwrap();
    assert!(ran > 30, "the whole tour ran: {ran} commands");
    server.stop().await;
}
