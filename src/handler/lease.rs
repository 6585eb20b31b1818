//! The lease: the tags that record which instance holds a member — `pinhook:holder` on the
//! member, `pinhook:eni` / `pinhook:eip` on the instance. The attachment or association is
//! what pins; the tags only record it, for people, the sweep and IAM conditions.

use tracing::error;

use crate::aws::{Ec2Api, SplitTransient, Transient};
use crate::config::HOLDER_TAG;
use crate::model::InstanceId;

/// Writes both tags of a lease, concurrently. A refusal is returned as a note for the summary
/// rather than failing the pin; a transient failure is returned for a later attempt.
pub(crate) async fn record<E: Ec2Api>(
    ec2: &E,
    member: &str,
    instance: &InstanceId,
    instance_tag: &str,
) -> Result<Option<String>, Transient> {
    let (holder, lease) = tokio::join!(
        ec2.create_tag(member, HOLDER_TAG, instance.as_str()),
        ec2.create_tag(instance.as_str(), instance_tag, member),
    );
    let mut note = None;
    for result in [holder, lease] {
        if let Err(err) = result.split_transient()? {
            error!(error = %err, "could not record the lease tags; the member is pinned regardless");
            note = Some(format!(
                "pinned {member}, but the lease tags were not written: {err}"
            ));
        }
    }
    Ok(note)
}
