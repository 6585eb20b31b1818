//! AWS answered by aws-smithy-mocks, for the error paths the emulator cannot produce (access
//! denied, throttling that outlasts the retries, answers with fields missing): the real SDK
//! clients and deserialisers, over the XML AWS sends, with AWS's real error codes.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_autoscaling::Client as AsgSdk;
use aws_sdk_ec2::Client as Ec2Sdk;
use aws_sdk_ec2::config::Credentials;
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client};
use pinhook::aws::{retry_config, timeout_config};
use pinhook::config::Settings;

use crate::REGION;
use crate::sdk::{TokioClock, own_partition};

const EC2_NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";
const ASG_NS: &str = "http://autoscaling.amazonaws.com/doc/2011-01-01/";

/// The rules, any of which may answer a request.
fn interceptor(rules: &[&Rule]) -> MockResponseInterceptor {
    rules.iter().fold(
        MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny),
        |i, r| i.with_rule(r),
    )
}

/// A client of one service answered by the rules, with pinhook's retry and timeout policy.
macro_rules! mocked {
    ($service:ident, $rules:expr, $settings:expr) => {
        $service::Client::from_conf(
            $service::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .credentials_provider(Credentials::new("a", "b", None, None, "mock"))
                .http_client(create_mock_http_client())
                .retry_config(retry_config($settings))
                .retry_partition(own_partition())
                .time_source(TokioClock::new())
                .timeout_config(timeout_config($settings))
                .interceptor(interceptor($rules))
                .build(),
        )
    };
}

/// An EC2 client answered by the rules, with pinhook's retry and timeout policy.
pub fn ec2(rules: &[&Rule], settings: &Settings) -> Ec2Sdk {
    mocked!(aws_sdk_ec2, rules, settings)
}

/// An Auto Scaling client answered by the rules, with pinhook's retry and timeout policy.
pub fn asg(rules: &[&Rule], settings: &Settings) -> AsgSdk {
    mocked!(aws_sdk_autoscaling, rules, settings)
}

/// EC2's answer to `operation`, with this body.
pub fn ec2_ok(operation: &str, body: &str) -> String {
    format!(
        r#"<{operation}Response xmlns="{EC2_NS}"><requestId>3f4e2a1c</requestId>{body}</{operation}Response>"#
    )
}

/// Auto Scaling's answer to `operation`, with this result.
pub fn asg_ok(operation: &str, body: &str) -> String {
    format!(
        r#"<{operation}Response xmlns="{ASG_NS}"><{operation}Result>{body}</{operation}Result><ResponseMetadata><RequestId>3f4e2a1c</RequestId></ResponseMetadata></{operation}Response>"#
    )
}

/// An EC2 error, as EC2 sends it.
pub fn ec2_error(code: &str, message: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>3f4e2a1c</RequestID></Response>"#
    )
}

/// An Auto Scaling error, as Auto Scaling sends it.
pub fn asg_error(code: &str, message: &str) -> String {
    format!(
        r#"<ErrorResponse xmlns="{ASG_NS}"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>3f4e2a1c</RequestId></ErrorResponse>"#
    )
}

/// `<tag>value</tag>` when kept: a field AWS may leave out.
pub fn field(keep: bool, tag: &str, value: &str) -> String {
    match keep {
        true => format!("<{tag}>{value}</{tag}>"),
        false => String::new(),
    }
}
