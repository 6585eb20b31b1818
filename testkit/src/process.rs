//! The processes the kit starts, each bound to 127.0.0.1 and stopped by its PID: the local AWS
//! emulator, cargo-lambda's Lambda API emulator with the pinhook binary in its runtime loop,
//! and the pinhook CLI.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use crate::control::{Control, request};
use crate::{REGION, repo_root, unique};

/// Dedicated emulators released by their tests, ready for the next.
static IDLE: Mutex<Vec<&'static Emulator>> = Mutex::new(Vec::new());

/// A running emulator on 127.0.0.1, stopped (by its PID) when dropped, and in any case when the
/// process that started it exits.
#[derive(Debug)]
pub struct Emulator {
    child: Mutex<Child>,
    pub url: String,
    pid: u32,
}

/// The Python that has the emulator's requirements: `.venv`'s, or `PINHOOK_PYTHON`.
pub fn python() -> PathBuf {
    let python = std::env::var_os("PINHOOK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "{} does not exist: run `make test` (it creates .venv with the emulator), or set PINHOOK_PYTHON to a Python that has requirements.txt installed",
        python.display()
    );
    python
}

impl Emulator {
    /// An emulator on a clock the tests control: it moves only as the clients' clocks do
    /// (`X-Pinhook-Clock`), by a tick per request of a client without one, or on request.
    pub fn start() -> Self {
        Self::start_with(&["--clock", "manual"])
    }

    /// An emulator in real time, as the demo, the chaos run and the bench use it.
    pub fn start_real_time(options: &[&str]) -> Self {
        let mut all = vec!["--clock", "real"];
        all.extend_from_slice(options);
        Self::start_with(&all)
    }

    fn start_with(options: &[&str]) -> Self {
        let python = python();
        let mut child = Command::new(&python)
            .args(["-m", "pinhook_emulator", "--port", "0", "--parent-pid"])
            .arg(std::process::id().to_string())
            .args(options)
            .current_dir(repo_root().join("emulator"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the emulator with {}: {e}", python.display()));
        let pid = child.id();
        let stdout = child.stdout.take().expect("the emulator's standard output");
        let url = match listening(stdout, "pinhook emulator listening on ") {
            Some(rest) => rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned(),
            None => {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                panic!("the emulator exited at start-up ({status})");
            }
        };
        Self {
            child: Mutex::new(child),
            url,
            pid,
        }
    }

    /// One emulator, on the tests' clock, for every test of this process.
    pub fn shared() -> &'static Emulator {
        static SHARED: OnceLock<Emulator> = OnceLock::new();
        SHARED.get_or_init(Emulator::start)
    }

    /// An emulator of the caller's own, for tests that change its settings, load it or inject
    /// faults: one a test released earlier (reset to a fresh account), or a new one. Starting
    /// one costs seconds (moto's import), so they are reused.
    pub fn dedicated() -> &'static Emulator {
        let idle = IDLE.lock().ok().and_then(|mut idle| idle.pop());
        idle.unwrap_or_else(|| Box::leak(Box::new(Emulator::start())))
    }

    /// Gives a dedicated emulator back for another test: reset to a fresh account (moto's
    /// backends emptied, every setting, fault and limit back to its default, pending timers
    /// forgotten), then kept idle.
    pub fn release(&'static self) {
        let url = format!("{}/_pinhook/reset", self.url);
        if let (Ok((200, _)), Ok(mut idle)) = (request("POST", &url, None, None), IDLE.lock()) {
            idle.push(self);
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Stops the emulator (by its PID).
    pub fn stop(&self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The control API without a clock of its own: reads and settings that do not move time.
    pub fn control(&'static self) -> Control {
        Control::new(self, None)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads a child's standard output until a line starts with `prefix`: the rest of that line.
/// The remainder of the output is drained on a thread of its own, so the child never blocks
/// on a full pipe. `None` if the output ends first.
fn listening(stdout: ChildStdout, prefix: &str) -> Option<String> {
    let mut lines = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(at) = line.find(prefix) {
            let rest = line[at + prefix.len()..].to_owned();
            std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
            return Some(rest);
        }
    }
}

/// The pinhook binary that cargo built beside this test or example.
pub fn pinhook_binary() -> PathBuf {
    // Tests live in target/<profile>/deps/, examples in target/<profile>/examples/, and the
    // binary in target/<profile>/, wherever cargo's target directory is.
    let exe = std::env::current_exe().expect("the path of this program");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("pinhook"))
        .unwrap_or_default();
    assert!(
        path.exists(),
        "{} does not exist: build it with `cargo build --bin pinhook`",
        path.display()
    );
    path
}

/// Runs the pinhook CLI against the emulator at `endpoint`, as an operator runs it from a
/// terminal with the standard AWS environment.
pub fn pinhook_cli(endpoint: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(pinhook_binary())
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("PINHOOK_CONSISTENCY_WINDOW_MS", "500")
        // The CLI sends no clock header, so the emulator's clock moves a tick per request: a
        // wait for an attachment takes the same polls at any interval, and a short one keeps
        // them from waiting in real time.
        .env("PINHOOK_POLL_INTERVAL_MS", "100")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("running the pinhook binary")
}

pub fn cargo_lambda() -> PathBuf {
    std::env::var_os("PINHOOK_CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/cargo-lambda"))
}

/// A port nobody listens on at the moment.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// pinhook running in the Lambda runtime loop, fed by cargo-lambda's emulation of the Lambda
/// APIs. Both processes are stopped by PID when this is dropped.
pub struct LambdaRuntime {
    apis: Child,
    function: Mutex<Child>,
    pub port: u16,
    pub log: PathBuf,
}

impl LambdaRuntime {
    pub fn start(emulator_url: &str, extra_env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let cargo_lambda = cargo_lambda();
        assert!(
            cargo_lambda.exists(),
            "{} does not exist: run `make test` or `make demo` (they install cargo-lambda into .venv), or set PINHOOK_CARGO_LAMBDA",
            cargo_lambda.display()
        );
        let log = std::env::temp_dir().join(format!("{}.log", unique("pinhook-function")));
        let mut apis = Command::new(&cargo_lambda)
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(port.to_string())
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", cargo_lambda.display()));
        let stdout = apis.stdout.take().expect("cargo lambda's standard output");
        assert!(
            listening(stdout, "starting Runtime server").is_some(),
            "cargo lambda exited before serving the Lambda APIs"
        );
        // The server binds as it says so; a connection settles that it did.
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            std::thread::yield_now();
        }
        let output = std::fs::File::create(&log).expect("a log file");
        // PINHOOK_FUNCTION_COMMAND runs another build of the function instead, e.g. the arm64
        // release artifact under qemu: "qemu-aarch64 -L /usr/aarch64-linux-gnu …/bootstrap".
        let mut command = match std::env::var("PINHOOK_FUNCTION_COMMAND") {
            Ok(line) if !line.trim().is_empty() => {
                let mut words = line.split_whitespace();
                let mut command = Command::new(words.next().unwrap_or_default());
                command.args(words);
                command
            }
            _ => Command::new(pinhook_binary()),
        };
        // The function's settings are these alone: it refuses unknown PINHOOK_ variables.
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("PINHOOK_")) {
            command.env_remove(name);
        }
        command
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL", emulator_url)
            .env("PINHOOK_POLL_INTERVAL_MS", "100")
            // The emulator's reads do not lag unless a test makes them: a read that has not
            // caught up is looked at again for half a second, not AWS's five.
            .env("PINHOOK_CONSISTENCY_WINDOW_MS", "500")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("a log file"))
            .stderr(output);
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let function = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        Self {
            apis,
            function: Mutex::new(function),
            port,
            log,
        }
    }

    /// Panics with the function's log if it is no longer running.
    fn check_running(&self) {
        let exited = self
            .function
            .lock()
            .map(|mut f| f.try_wait())
            .ok()
            .and_then(Result::ok)
            .flatten();
        if let Some(status) = exited {
            panic!("the function exited ({status}):\n{}", self.logs());
        }
    }

    /// Invokes the function through Lambda's Invoke API, as `cargo lambda invoke` does.
    pub fn invoke(&self, event: &Value) -> Value {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/_/invocations",
            self.port
        );
        self.check_running();
        let (status, body) = request("POST", &url, Some(event), None).unwrap_or_else(|e| {
            self.check_running();
            panic!("invoking: {e}\n{}", self.logs())
        });
        let body: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("invoke answered non-JSON ({e}): {body}"));
        assert!(status < 300, "invoke answered {status}: {body}");
        body
    }

    /// Replays a file with `cargo lambda invoke --data-file`, as a user would.
    pub fn invoke_file(&self, path: &Path) -> Result<Value, String> {
        let output = Command::new(cargo_lambda())
            .args([
                "lambda",
                "invoke",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(path)
            .current_dir(repo_root())
            .output()
            .map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "{stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        serde_json::from_str(stdout.trim()).map_err(|e| format!("{e}: {stdout}"))
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LambdaRuntime {
    fn drop(&mut self) {
        if let Ok(function) = self.function.get_mut() {
            let _ = function.kill();
            let _ = function.wait();
        }
        let _ = self.apis.kill();
        let _ = self.apis.wait();
    }
}
