//! Step 1's decision: whether a lifecycle event still matches what Auto Scaling reports, is
//! ahead of a read that has not caught up yet, or is stale for good.

use std::fmt;

use crate::event::LifecycleAction;
use crate::model::{GroupInstance, LifecycleResult, LifecycleState, Location, Transition};

/// Why an event is acted on no further: it does not match what AWS reports (stale, out of
/// order, forged), or its lifecycle action ended meanwhile. Nothing is changed or completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale(pub String);

impl fmt::Display for Stale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What one read of the instance in Auto Scaling says about the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// The instance waits in `Pending:Wait` in the named group: pin a member in its AZ.
    Pin { availability_zone: String },
    /// The instance is launching into the warm pool: nothing to pin until it leaves it.
    EnterWarmPool,
    /// The instance is leaving the group (or going back to the warm pool): release.
    Release { availability_zone: String },
    /// The read shows the instance before the event's transition (not listed yet, `Pending`
    /// rather than `Pending:Wait`, `InService` rather than `Terminating:Wait`): Auto Scaling's
    /// reads may not have caught up with the event. Look again before calling it stale.
    Behind(String),
    /// The read shows the instance past the transition, or in another group: final.
    Stale(Stale),
}

/// The event against one read of Auto Scaling's view of the instance (`None`: in no group).
pub fn check(action: &LifecycleAction, described: Option<&GroupInstance>) -> Checked {
    let instance = &action.instance;
    let Some(described) = described else {
        return match action.transition {
            // A new instance may not be listed yet.
            Transition::Launch => Checked::Behind(format!(
                "instance {instance} is in no Auto Scaling group yet"
            )),
            Transition::Terminate => Checked::Stale(Stale(format!(
                "instance {instance} is in no Auto Scaling group (terminated, detached, or never one)"
            ))),
        };
    };
    if described.group != action.group {
        return Checked::Stale(Stale(format!(
            "instance {instance} belongs to group {:?}, not {:?}",
            described.group, action.group
        )));
    }
    use LifecycleState as S;
    let state = &described.state;
    let into_warm_pool = action.destination == Some(Location::WarmPool);
    let from_warm_pool = action.origin == Some(Location::WarmPool);
    let release = || Checked::Release {
        availability_zone: described.availability_zone.clone(),
    };
    let verdict = match (action.transition, into_warm_pool) {
        (Transition::Launch, false) => match state {
            S::PendingWait => Some(Checked::Pin {
                availability_zone: described.availability_zone.clone(),
            }),
            S::Pending => None,
            s if from_warm_pool && s.is_warmed() => None,
            _ => return stale(action, described),
        },
        (Transition::Launch, true) => match state {
            S::WarmedPendingWait => Some(Checked::EnterWarmPool),
            S::WarmedPending => None,
            _ => return stale(action, described),
        },
        (Transition::Terminate, into_warm_pool) => match state {
            S::TerminatingWait | S::WarmedTerminatingWait => Some(release()),
            S::WarmedPendingWait if into_warm_pool => Some(release()),
            // Anywhere in the instance's life before the terminate hooks hold it: a read that
            // has not caught up (an instance may be scaled in right after its launch).
            S::Pending
            | S::PendingWait
            | S::PendingProceed
            | S::InService
            | S::EnteringStandby
            | S::Standby
            | S::Terminating
            | S::WarmedTerminating => None,
            S::WarmedPending if into_warm_pool => None,
            s if s.is_warmed() => None,
            _ => return stale(action, described),
        },
    };
    verdict.unwrap_or_else(|| {
        Checked::Behind(format!(
            "instance {instance} is {state} in group {:?}, not yet waiting for this {} action",
            described.group,
            action.transition.as_str()
        ))
    })
}

fn stale(action: &LifecycleAction, described: &GroupInstance) -> Checked {
    Checked::Stale(Stale(format!(
        "instance {} is {} in group {:?}, not waiting for this {} action (already completed, timed out, or out of order)",
        action.instance,
        described.state,
        described.group,
        action.transition.as_str()
    )))
}

/// Which transition an instance in this state waits on, if any.
pub fn waiting_for(state: &LifecycleState) -> Option<Transition> {
    match state {
        LifecycleState::PendingWait | LifecycleState::WarmedPendingWait => Some(Transition::Launch),
        LifecycleState::TerminatingWait | LifecycleState::WarmedTerminatingWait => {
            Some(Transition::Terminate)
        }
        _ => None,
    }
}

/// The result a lifecycle action is completed with when nothing could be pinned or the event
/// could not be read: the hook's `on_failure` on launch; termination is never blocked.
pub fn failure_result(
    transition: Option<Transition>,
    on_failure: LifecycleResult,
) -> LifecycleResult {
    match transition {
        Some(Transition::Terminate) => LifecycleResult::Continue,
        _ => on_failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::InstanceId;

    fn action(
        transition: Transition,
        origin: Option<Location>,
        destination: Option<Location>,
    ) -> LifecycleAction {
        LifecycleAction {
            transition,
            group: "g".into(),
            hook: "h".into(),
            instance: InstanceId::parse("i-1").unwrap(),
            token: "t".into(),
            metadata: None,
            origin,
            destination,
        }
    }

    fn described(state: &str) -> GroupInstance {
        GroupInstance {
            instance: InstanceId::parse("i-1").unwrap(),
            group: "g".into(),
            availability_zone: "az-a".into(),
            state: LifecycleState::parse(state),
            healthy: true,
        }
    }

    fn kind(checked: &Checked) -> &'static str {
        match checked {
            Checked::Pin { .. } => "pin",
            Checked::EnterWarmPool => "enter-warm-pool",
            Checked::Release { .. } => "release",
            Checked::Behind(_) => "behind",
            Checked::Stale(_) => "stale",
        }
    }

    fn each(action: &LifecycleAction, states: &[&str]) -> Vec<&'static str> {
        states
            .iter()
            .map(|s| kind(&check(action, Some(&described(s)))))
            .collect()
    }

    #[test]
    fn a_launch_pins_a_waiting_instance_waits_for_an_earlier_read_and_stops_at_a_later_one() {
        let launch = action(
            Transition::Launch,
            Some(Location::Ec2),
            Some(Location::AutoScalingGroup),
        );
        assert_eq!(
            check(&launch, Some(&described("Pending:Wait"))),
            Checked::Pin {
                availability_zone: "az-a".into()
            }
        );
        // before the transition: Auto Scaling's read may lag; not listed at all, likewise
        assert_eq!(each(&launch, &["Pending"]), ["behind"]);
        assert_eq!(kind(&check(&launch, None)), "behind");
        // past it, or elsewhere: final
        assert_eq!(
            each(
                &launch,
                &[
                    "Pending:Proceed",
                    "InService",
                    "Terminating:Wait",
                    "Terminated",
                    "Warmed:Pending:Wait",
                    "Standby"
                ]
            ),
            ["stale"; 6]
        );
        let mut other = described("Pending:Wait");
        other.group = "other".into();
        let Checked::Stale(Stale(reason)) = check(&launch, Some(&other)) else {
            panic!("pinned for another group");
        };
        assert!(reason.contains("\"other\""), "{reason}");
    }

    #[test]
    fn a_launch_from_the_warm_pool_waits_while_the_read_still_shows_it_warmed() {
        let from_pool = action(
            Transition::Launch,
            Some(Location::WarmPool),
            Some(Location::AutoScalingGroup),
        );
        assert_eq!(
            each(
                &from_pool,
                &[
                    "Warmed:Stopped",
                    "Warmed:Running",
                    "Pending",
                    "Pending:Wait",
                    "InService"
                ]
            ),
            ["behind", "behind", "behind", "pin", "stale"]
        );
    }

    #[test]
    fn warm_pool_launches_are_not_pinned_and_warm_pool_returns_release() {
        let into_pool = action(
            Transition::Launch,
            Some(Location::Ec2),
            Some(Location::WarmPool),
        );
        assert_eq!(
            each(
                &into_pool,
                &[
                    "Warmed:Pending:Wait",
                    "Warmed:Pending",
                    "Pending:Wait",
                    "Warmed:Stopped"
                ]
            ),
            ["enter-warm-pool", "behind", "stale", "stale"]
        );
        let back_to_pool = action(
            Transition::Terminate,
            Some(Location::AutoScalingGroup),
            Some(Location::WarmPool),
        );
        assert_eq!(
            each(
                &back_to_pool,
                &[
                    "Warmed:Pending:Wait",
                    "Warmed:Pending",
                    "InService",
                    "Warmed:Stopped"
                ]
            ),
            ["release", "behind", "behind", "behind"]
        );
    }

    #[test]
    fn a_terminate_releases_a_waiting_instance_and_waits_while_the_read_shows_it_in_service() {
        let terminate = action(
            Transition::Terminate,
            Some(Location::AutoScalingGroup),
            Some(Location::Ec2),
        );
        assert_eq!(
            each(
                &terminate,
                &[
                    "Terminating:Wait",
                    "Warmed:Terminating:Wait",
                    "InService",
                    "Terminating",
                    "Terminating:Proceed",
                    "Terminated",
                    "Pending:Wait"
                ]
            ),
            [
                "release", "release", "behind", "behind", "stale", "stale", "behind"
            ]
        );
        // an instance scaled in right after its launch, and one gone from every group
        assert_eq!(
            each(
                &terminate,
                &["Pending", "Pending:Proceed", "Standby", "Detached"]
            ),
            ["behind", "behind", "behind", "stale"]
        );
        assert_eq!(kind(&check(&terminate, None)), "stale");
    }

    #[test]
    fn a_failed_launch_takes_the_hooks_outcome_and_a_terminate_always_continues() {
        assert_eq!(
            failure_result(Some(Transition::Launch), LifecycleResult::Abandon),
            LifecycleResult::Abandon
        );
        assert_eq!(
            failure_result(None, LifecycleResult::Abandon),
            LifecycleResult::Abandon
        );
        assert_eq!(
            failure_result(Some(Transition::Terminate), LifecycleResult::Abandon),
            LifecycleResult::Continue
        );
        assert_eq!(
            waiting_for(&LifecycleState::WarmedPendingWait),
            Some(Transition::Launch)
        );
        assert_eq!(waiting_for(&LifecycleState::InService), None);
    }
}
