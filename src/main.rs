//! One binary, two uses: the Lambda function when the Lambda runtime starts it
//! (`AWS_LAMBDA_RUNTIME_API` set and no arguments), and the operator CLI otherwise. Both read
//! the settings and build the AWS clients once, from the standard AWS environment.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aws_credential_types::provider::ProvideCredentials;
use clap::{Parser, Subcommand};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use pinhook::aws::{AutoScalingClient, Ec2Client, load_sdk_config};
use pinhook::config::Settings;
use pinhook::event::Delivery;
use pinhook::metrics::MetricsSink;
use pinhook::{Deadline, Pinhook, SweepOptions, SweepReport};
use serde_json::Value;

/// pinhook: a fixed ENI or Elastic IP for each instance of an Auto Scaling group, and for
/// instances without one that carry the tag pinhook:pin (Karpenter nodes, plain EC2).
///
/// Started by the Lambda runtime with no arguments, it serves as the Lambda function. From a
/// terminal, it shows and repairs the pools of the groups in PINHOOK_GROUPS (or --group) and of
/// the tagged instances, with the standard AWS environment: AWS_PROFILE, AWS_REGION,
/// AWS_ENDPOINT_URL.
#[derive(Debug, Parser)]
#[command(name = "pinhook", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Each pool per Availability Zone: members, free, held, holders and their lifecycle state,
    /// idle Elastic IPs, and what the sweep would repair or report. Changes nothing.
    Status {
        #[command(flatten)]
        scope: Scope,
    },
    /// Repair every pool of the groups, printing each action; with --dry-run only say what it
    /// would do.
    Sweep {
        /// Change nothing: only say what the sweep would do.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        scope: Scope,
    },
    /// Run the handler once on an event file (an EventBridge event, an SQS batch or SNS
    /// records, a test notification, a scheduled event) and print its summary.
    Replay {
        /// The event, as JSON.
        file: PathBuf,
    },
    /// Serve as the Lambda function (what happens with no arguments under the Lambda runtime).
    Lambda,
}

/// What `status` and `sweep` read, and how they print it.
#[derive(Debug, clap::Args)]
struct Scope {
    /// Only this pool.
    #[arg(long)]
    pool: Option<String>,
    /// A group to read (repeatable); default: PINHOOK_GROUPS.
    #[arg(long = "group", value_name = "NAME")]
    groups: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// How long a command may run: as long as the Lambda function may.
const COMMAND_DEADLINE: Duration = Duration::from_secs(300);

fn main() -> ExitCode {
    let lambda =
        std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() && std::env::args().len() == 1;
    let command = match lambda {
        true => Command::Lambda,
        false => Cli::parse().command,
    };
    // One thread: an invocation is one event (or one bounded batch) of calls that wait on AWS,
    // and Lambda gives a small function a fraction of a vCPU. Worker threads would only add
    // memory (their stacks and allocator arenas) and start-up time.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("pinhook: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        Command::Lambda => match runtime.block_on(serve()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("pinhook: {err}");
                ExitCode::FAILURE
            }
        },
        command => {
            init_cli_logs();
            match runtime.block_on(run(command)) {
                Ok(code) => code,
                Err(message) => {
                    eprintln!("pinhook: {message}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// The Lambda function: the handler in the Lambda runtime loop.
async fn serve() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings = Settings::from_env().inspect_err(|err| {
        tracing::error!(error = %err, "invalid configuration; fix the function's environment variables");
    })?;
    tracing::info!(settings = %settings, "pinhook starting");
    let sdk = load_sdk_config(&settings).await;
    let app = Pinhook::new(
        AutoScalingClient::new(aws_sdk_autoscaling::Client::new(&sdk)),
        Ec2Client::new(aws_sdk_ec2::Client::new(&sdk)),
        settings,
    );
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = Deadline::from_epoch_millis(event.context.deadline);
        app.invoke(&event.payload, deadline)
            .await
            .map(|answer| answer.response)
            .map_err(Error::from)
    }))
    .await
}

/// Logs of a CLI run go to standard error, so standard output carries only the answer:
/// warnings and errors, or what `RUST_LOG` asks for.
fn init_cli_logs() {
    use lambda_runtime::tracing::subscriber::filter::EnvFilter;
    // The SDK's own warnings about where it looked for a region or credentials are noise here:
    // a missing one is reported once, with what to do.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,aws_config=error"));
    let subscriber = lambda_runtime::tracing::subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// A CLI command: `Ok` exit code, or a message saying what to do.
async fn run(command: Command) -> Result<ExitCode, String> {
    let settings = Settings::from_env().map_err(|err| format!("{err}"))?;
    let app = connect(settings).await?;
    let deadline = Deadline::after(COMMAND_DEADLINE);
    match command {
        Command::Status { scope } => {
            sweep_and_print(&app, true, scope, status_text, deadline).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sweep { dry_run, scope } => {
            let report = sweep_and_print(&app, dry_run, scope, sweep_text, deadline).await?;
            let failed = report.done.iter().any(|d| !d.ok);
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Replay { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|err| format!("cannot read {}: {err}", file.display()))?;
            let event: Value = serde_json::from_str(&text)
                .map_err(|err| format!("{} is not JSON: {err}", file.display()))?;
            match app.invoke(&event, deadline).await {
                // One event: its summary, as the function answers. A batch: each record's
                // summary beside the function's answer (`batchItemFailures` for SQS).
                Ok(answer) => {
                    match Delivery::parse(&event) {
                        Delivery::Single(_) => println!("{}", to_json(&answer.response)?),
                        Delivery::Records(..) => println!("{}", to_json(&answer)?),
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(err) => {
                    eprintln!("pinhook: the handler returned an error (Lambda would retry): {err}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Lambda => Err("the Lambda function is served from main".into()),
    }
}

type App = Pinhook<AutoScalingClient, Ec2Client>;

/// The AWS clients from the standard environment, once the region and the credentials are
/// known to be there.
async fn connect(settings: Settings) -> Result<App, String> {
    let sdk = load_sdk_config(&settings).await;
    if sdk.region().is_none() {
        return Err("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or choose a profile that has one with AWS_PROFILE".into());
    }
    let Some(credentials) = sdk.credentials_provider() else {
        return Err("no AWS credentials provider is configured".into());
    };
    if let Err(err) = credentials.provide_credentials().await {
        return Err(format!(
            "no AWS credentials ({err}): set AWS_PROFILE to a configured profile (run `aws sso login` for an SSO profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ));
    }
    Ok(Pinhook::new(
        AutoScalingClient::new(aws_sdk_autoscaling::Client::new(&sdk)),
        Ec2Client::new(aws_sdk_ec2::Client::new(&sdk)),
        settings,
    )
    .with_metrics(MetricsSink::Discard))
}

/// The sweep (a dry run for `status`), printed as JSON or as `text` has it.
async fn sweep_and_print(
    app: &App,
    dry_run: bool,
    scope: Scope,
    text: fn(&SweepReport) -> String,
    deadline: Deadline,
) -> Result<SweepReport, String> {
    let json = scope.json;
    let options = sweep_options(app, dry_run, scope)?;
    let report = app
        .sweep(&options, deadline)
        .await
        .map_err(|err| err.to_string())?;
    match json {
        true => println!("{}", to_json(&report)?),
        false => print!("{}", text(&report)),
    }
    Ok(report)
}

fn sweep_options(app: &App, dry_run: bool, scope: Scope) -> Result<SweepOptions, String> {
    let Scope { pool, groups, .. } = scope;
    if groups.is_empty() && app.settings().groups.is_empty() {
        eprintln!(
            "no groups named (--group NAME, or PINHOOK_GROUPS=group-a,group-b): only the instances tagged pinhook:pin without a group are read"
        );
    }
    Ok(SweepOptions {
        dry_run,
        groups,
        pool,
    })
}

fn to_json(value: &impl serde::Serialize) -> Result<String, String> {
    serde_json::to_string_pretty(value).map_err(|err| err.to_string())
}

/// The status as a terminal shows it: per pool, a table of its zones and one of its members,
/// then each finding.
fn status_text(report: &SweepReport) -> String {
    let mut out = String::new();
    for pool in &report.pools {
        let groups = match pool.groups.is_empty() {
            true => "none".to_owned(),
            false => pool.groups.join(", "),
        };
        let tagged = match pool.instances.is_empty() {
            true => String::new(),
            false => format!(
                ", instances without a group {}",
                pool.instances
                    .iter()
                    .map(|i| i.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        out.push_str(&format!(
            "pool {} ({}), groups {groups}{tagged}\n",
            pool.pool, pool.pin
        ));
        let mut zones = table([
            "zone",
            "members",
            "free",
            "held",
            "placeable",
            "spare",
            "drift",
            "idle",
        ]);
        for z in &pool.zones {
            zones.add_row(vec![
                z.availability_zone
                    .as_deref()
                    .unwrap_or("(region)")
                    .to_owned(),
                z.members.to_string(),
                z.free.to_string(),
                z.held.to_string(),
                z.placeable.to_string(),
                z.spare.to_string(),
                z.drift.to_string(),
                z.idle_addresses.to_string(),
            ]);
        }
        out.push_str(&format!("{zones}\n"));
        let mut members = table(["member", "state", "public ip", "holder", "idle for"]);
        for m in &pool.members {
            let holder = m
                .holder
                .as_ref()
                .map(|holder| format!("{holder} ({})", m.holder_state.as_deref().unwrap_or("?")));
            let idle = m
                .idle_seconds
                .map(|s| humantime::format_duration(Duration::from_secs(s)).to_string());
            members.add_row(vec![
                m.member.clone(),
                m.state.to_string(),
                m.public_ip.clone().unwrap_or_default(),
                holder.unwrap_or_default(),
                idle.unwrap_or_default(),
            ]);
        }
        out.push_str(&format!("{members}\n"));
        for r in &pool.repairs {
            out.push_str(&format!("  would {r}\n"));
        }
    }
    if report.pools.is_empty() {
        out.push_str(&format!(
            "no pinhook pool in groups {} or on instances tagged pinhook:pin\n",
            report.groups.join(", ")
        ));
    }
    for f in report.all_findings() {
        out.push_str(&format!("{}: {}\n", f.severity.as_str(), f.message));
    }
    out
}

/// A plain table, indented under its pool.
fn table<const N: usize>(header: [&str; N]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(header.to_vec());
    table
}

/// The sweep as a terminal shows it: each action and its result.
fn sweep_text(report: &SweepReport) -> String {
    let mut out = String::new();
    if report.dry_run {
        for r in report.repairs() {
            out.push_str(&format!("would {r}\n"));
        }
    }
    for d in &report.done {
        let mark = if d.ok { "done" } else { "FAILED" };
        out.push_str(&format!("{mark}: {}: {}\n", d.repair, d.result));
    }
    for f in report.all_findings() {
        out.push_str(&format!("{}: {}\n", f.severity.as_str(), f.message));
    }
    out.push_str(&report.headline());
    out.push('\n');
    out
}
