//! An instance without a group (DESIGN.md, "Instances without a group"): whether it is
//! pinhook's, and what its state change does, on the later of what the event says and what
//! EC2's read shows.

use crate::config::{HookConfig, PinKind, PoolName};
use crate::model::{Ec2Instance, RunState};

/// What a state change does to an instance without a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acting {
    /// It runs (or boots) in this AZ: pin a member of the pool its tags name.
    Pin {
        config: HookConfig,
        availability_zone: String,
    },
    /// It is leaving or gone: give back what it holds of the pool its tags name (of both kinds
    /// when its `pinhook:pin` tag cannot be read).
    Release {
        pool: PoolName,
        kind: Option<PinKind>,
    },
    /// It is stopped or stopping: EC2 keeps an attached ENI and an associated address through
    /// stop and start, so it keeps its member.
    Keep(String),
    /// It is pinhook's but cannot be pinned: its tags cannot be used, or EC2 does not say
    /// where it runs. Why.
    Refused(String),
    /// EC2's read shows the instance before the state the event proves it reached (not listed
    /// yet, or still stopped after a `running` event): the read may not have caught up.
    Behind(String),
    /// Not pinhook's to act on: why.
    Ignore(String),
}

/// The tags an instance's pool and kind are read from when the others cannot be used.
const POOL: &str = crate::config::POOL_TAG;
const PIN: &str = crate::config::PIN_TAG;

/// Where a state lies in an instance's life, for the later of two reports of it.
fn stage(state: &RunState) -> Stage {
    match state {
        RunState::Pending | RunState::Running => Stage::Up,
        RunState::Stopping | RunState::Stopped => Stage::Down,
        RunState::ShuttingDown | RunState::Terminated => Stage::Gone,
        RunState::Other(_) => Stage::Unknown,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Up,
    Down,
    Gone,
    Unknown,
}

/// The event's state against one read of the instance (`None`: EC2 does not describe it).
pub fn state_change(event: &RunState, read: Option<&Ec2Instance>) -> Acting {
    let Some(read) = read else {
        return match stage(event) {
            Stage::Up => Acting::Behind("EC2 does not describe the instance yet".into()),
            _ => Acting::Ignore(
                "EC2 no longer describes the instance; the sweep releases what it held".into(),
            ),
        };
    };
    if let Some(group) = read.group() {
        return Acting::Ignore(format!(
            "the instance belongs to Auto Scaling group {group:?}, whose lifecycle hooks serve it"
        ));
    }
    // Shutting down and terminated are final, whoever reports them; otherwise the event proves
    // its state was reached, and a read that shows a stop after a start has not caught up.
    let gone = stage(event) == Stage::Gone || stage(&read.state) == Stage::Gone;
    let config = match HookConfig::from_tags(&read.tags) {
        None => return Acting::Ignore("the instance has no pinhook:pin tag".into()),
        // What it holds goes back all the same, by the pool its tags name.
        Some(Err(error)) if gone => {
            return match read.tag(POOL).and_then(PoolName::parse) {
                Some(pool) => Acting::Release {
                    pool,
                    kind: read.tag(PIN).and_then(|p| p.parse().ok()),
                },
                None => Acting::Refused(format!("{error}; nothing can be released")),
            };
        }
        Some(Err(error)) => return Acting::Refused(error),
        Some(Ok(config)) => config,
    };
    match (stage(event), stage(&read.state)) {
        (Stage::Gone, _) | (_, Stage::Gone) => Acting::Release {
            pool: config.pool,
            kind: Some(config.pin.kind()),
        },
        (Stage::Up, Stage::Up) => match &read.availability_zone {
            Some(zone) => Acting::Pin {
                config,
                availability_zone: zone.clone(),
            },
            None => Acting::Behind("EC2 described the instance without its AZ".into()),
        },
        (Stage::Up, Stage::Down) => Acting::Behind(format!(
            "the event says {event}, but EC2's read still says {}",
            read.state
        )),
        (Stage::Down, _) | (_, Stage::Down) => Acting::Keep(format!(
            "the instance is {}: EC2 keeps its member through stop and start",
            read.state
        )),
        (Stage::Unknown, _) | (_, Stage::Unknown) => Acting::Ignore(format!(
            "the instance is {} (event: {event}): nothing to do",
            read.state
        )),
    }
}

/// What a read that stayed behind for the whole consistency window means: the read is then
/// right about the instance.
pub fn caught_up(event: &RunState, read: Option<&Ec2Instance>) -> Acting {
    match (state_change(event, read), read) {
        (Acting::Behind(reason), None) => Acting::Ignore(format!(
            "{reason}, and still not after the consistency window: nothing to do"
        )),
        (Acting::Behind(reason), Some(read)) if stage(&read.state) == Stage::Up => {
            Acting::Refused(format!("{reason}, still after the consistency window"))
        }
        (Acting::Behind(reason), Some(read)) => Acting::Keep(format!(
            "{reason} after the consistency window: it is {}, and keeps what it holds",
            read.state
        )),
        (acting, _) => acting,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::Pin;
    use crate::decide::fixtures::id;

    fn instance(state: &str, tags: &[(&str, &str)]) -> Ec2Instance {
        Ec2Instance {
            availability_zone: Some("az-a".into()),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            ..Ec2Instance::new(id("i-1"), RunState::parse(state))
        }
    }

    const EIP: [(&str, &str); 2] = [("pinhook:pin", "eip"), ("pinhook:pool", "egress")];

    fn acts(event: &str, read: &str) -> Acting {
        state_change(&RunState::parse(event), Some(&instance(read, &EIP)))
    }

    #[test]
    fn a_running_or_booting_instance_is_pinned_in_its_az() {
        for (event, read) in [
            ("pending", "pending"),
            ("pending", "running"),
            ("running", "running"),
            ("running", "pending"),
        ] {
            let Acting::Pin {
                config,
                availability_zone,
            } = acts(event, read)
            else {
                panic!("{event}/{read}: {:?}", acts(event, read));
            };
            assert_eq!(availability_zone, "az-a");
            assert_eq!(config.pool, PoolName::parse("egress").unwrap());
            assert!(matches!(config.pin, Pin::Eip { .. }));
        }
    }

    #[test]
    fn shutting_down_and_terminated_are_final_whoever_reports_them() {
        for (event, read) in [
            ("terminated", "running"),
            ("shutting-down", "running"),
            ("running", "terminated"),
            ("pending", "shutting-down"),
            ("stopped", "terminated"),
        ] {
            assert!(
                matches!(
                    acts(event, read),
                    Acting::Release {
                        kind: Some(PinKind::Eip),
                        ..
                    }
                ),
                "{event}/{read}"
            );
        }
    }

    #[test]
    fn a_stopped_instance_keeps_its_member_and_a_read_still_stopped_after_a_start_is_behind() {
        assert!(matches!(acts("stopped", "stopped"), Acting::Keep(_)));
        assert!(matches!(acts("stopping", "running"), Acting::Keep(_)));
        assert!(matches!(acts("running", "stopped"), Acting::Behind(_)));
        let read = instance("stopped", &EIP);
        assert!(matches!(
            caught_up(&RunState::Running, Some(&read)),
            Acting::Keep(_)
        ));
    }

    #[test]
    fn only_tagged_instances_without_a_group_are_pinhooks() {
        let untagged = instance("running", &[("Name", "node")]);
        assert!(matches!(
            state_change(&RunState::Running, Some(&untagged)),
            Acting::Ignore(_)
        ));
        let member = instance(
            "running",
            &[EIP[0], EIP[1], ("aws:autoscaling:groupName", "web")],
        );
        let Acting::Ignore(why) = state_change(&RunState::Running, Some(&member)) else {
            panic!("a group member is its hooks'");
        };
        assert!(why.contains("\"web\""), "{why}");
        let broken = instance("running", &[("pinhook:pin", "eip")]);
        let Acting::Refused(why) = state_change(&RunState::Running, Some(&broken)) else {
            panic!("unusable tags are reported");
        };
        assert!(why.contains("pinhook:pool"), "{why}");
        // Leaving, it gives back what it holds by the pool it names, whatever else is wrong
        let leaving = instance(
            "terminated",
            &[("pinhook:pin", "nic"), ("pinhook:pool", "egress")],
        );
        assert_eq!(
            state_change(&RunState::Terminated, Some(&leaving)),
            Acting::Release {
                pool: PoolName::parse("egress").unwrap(),
                kind: None
            }
        );
        // and a running instance EC2 describes without its AZ is refused once the read had
        // time to catch up
        let nowhere = Ec2Instance {
            availability_zone: None,
            ..instance("running", &EIP)
        };
        assert!(matches!(
            state_change(&RunState::Running, Some(&nowhere)),
            Acting::Behind(_)
        ));
        assert!(matches!(
            caught_up(&RunState::Running, Some(&nowhere)),
            Acting::Refused(_)
        ));
    }

    #[test]
    fn an_instance_ec2_does_not_describe_is_looked_for_again_only_after_a_start() {
        assert!(matches!(
            state_change(&RunState::Pending, None),
            Acting::Behind(_)
        ));
        assert!(matches!(
            state_change(&RunState::Terminated, None),
            Acting::Ignore(_)
        ));
        assert!(matches!(
            caught_up(&RunState::Running, None),
            Acting::Ignore(_)
        ));
    }
}
