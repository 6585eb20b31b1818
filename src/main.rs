//! The Lambda function: reads the settings, builds the AWS clients once, and runs the handler
//! in the Lambda runtime loop.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use pinhook::aws::{AutoScalingClient, Ec2Client, load_sdk_config};
use pinhook::config::Settings;
use pinhook::{Deadline, Pinhook};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
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
        app.handle(&event.payload, deadline)
            .await
            .map_err(Error::from)
    }))
    .await
}
