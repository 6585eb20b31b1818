//! The one lookup of the instances that hold pool members, for the claim engine and the sweep
//! alike: Auto Scaling first, then EC2 for the instances Auto Scaling does not know.

use tracing::warn;

use crate::aws::{AutoScalingApi, AwsError, Ec2Api, SplitTransient};
use crate::context::Ctx;
use crate::decide::{HolderStates, unknown_to};
use crate::model::InstanceId;

/// What AWS reports of these instances now. One policy for a holder whose state cannot be
/// read: a transient error is returned (a later attempt can read it), any other leaves EC2's
/// view unknown (`ec2: None`), and the decisions never act on an unknown holder.
pub async fn holder_states<A: AutoScalingApi, E: Ec2Api>(
    ctx: Ctx<'_, A, E>,
    instances: &[InstanceId],
) -> Result<HolderStates, AwsError> {
    if instances.is_empty() {
        return Ok(HolderStates {
            asg: Vec::new(),
            ec2: Some(Vec::new()),
        });
    }
    let asg = ctx.asg.describe_instances(instances).await?;
    let unknown = unknown_to(&asg, instances);
    let ec2 = match unknown.is_empty() {
        true => Some(Vec::new()),
        false => match ctx.ec2.instances(&unknown).await.split_transient()? {
            Ok(found) => Some(found),
            Err(err) => {
                warn!(error = %err, "could not read the holders' state from EC2: none of them is acted on");
                None
            }
        },
    };
    Ok(HolderStates { asg, ec2 })
}
