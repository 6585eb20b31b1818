//! Other tools' lifecycle hooks on the same group as pinhook's (DESIGN.md, "Whose hooks"): their
//! actions are never completed and nothing is changed for them, while pinhook's own hooks on the
//! same instance pin and release, and the instance waits for the other tools.

use pinhook::Outcome;
use pinhook::handler::Completion;
use serde_json::{Value, json};

use crate::support::{AZ_A, GroupSpec, World, eni_metadata, instance_of, unique};

const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";
const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";

/// Other tools' hooks: no metadata, plain text, JSON without "pin".
const OTHER_TOOLS: [(&str, Option<&str>); 3] = [
    ("node-ready", None),
    ("bootstrap", Some("wait for cloud-init to finish")),
    ("drain", Some(r#"{"timeout": 300, "notify": "ops"}"#)),
];

/// The pending actions of the group, pinhook's first, then the other tools'.
fn split(actions: Vec<Value>, ours: &str) -> (Value, Vec<Value>) {
    let (mine, theirs): (Vec<Value>, Vec<Value>) =
        actions.into_iter().partition(|a| a["hook"] == ours);
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(theirs.len(), OTHER_TOOLS.len(), "{theirs:?}");
    (mine.into_iter().next().unwrap(), theirs)
}

/// Delivers other tools' actions to pinhook: each is ignored, and stays pending, untouched.
async fn deliver_theirs(world: &World, group: &str, theirs: &[Value]) {
    for action in theirs {
        let summary = world.deliver(&action["event"]).await;
        assert_eq!(summary.outcome, Outcome::Ignored, "{summary:?}");
        assert_eq!(summary.completion, None, "{summary:?}");
        assert!(
            summary
                .reason
                .as_deref()
                .unwrap_or_default()
                .contains("belongs to another tool"),
            "{summary:?}"
        );
    }
    for action in world.emulator.actions(group, true) {
        if theirs.iter().any(|t| t["token"] == action["token"]) {
            assert_eq!(action["pending"], true, "{action}");
            assert_eq!(
                action["complete_calls"],
                json!({"accepted": 0, "rejected": 0}),
                "{action}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn other_tools_hooks_are_left_alone_while_pinhooks_own_pin_and_release() {
    // Given a group with pinhook's launch and terminate hooks, and three other tools' hooks on
    // each transition
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    let eni = world.eni_pool(&net, &pool, AZ_A, 1).await.remove(0);
    let metadata = eni_metadata(&pool, json!({}));
    let group = world
        .group(GroupSpec::pinning(vec![net.subnet_a.clone()], metadata, 2))
        .await;
    for (tool, metadata) in OTHER_TOOLS {
        for (transition, step) in [(LAUNCHING, "launch"), (TERMINATING, "terminate")] {
            let hook = format!("{tool}-{step}");
            world
                .any_hook(&group.name, &hook, transition, metadata)
                .await;
        }
    }
    world.scale(&group, 1).await;
    let (ours, theirs) = split(
        world.emulator.actions(&group.name, false),
        &group.launch_hook,
    );
    let instance = instance_of(&ours["event"]);

    // When the other tools' launch actions reach pinhook, nothing happens
    deliver_theirs(&world, &group.name, &theirs).await;
    let untouched = world.eni_state(&eni).await;
    assert_eq!(
        (untouched.status.as_str(), untouched.holder),
        ("available", None)
    );
    assert_eq!(world.instance_tag(&instance, "pinhook:eni").await, None);
    let attaches = world.emulator.requests(&[
        ("action", "AttachNetworkInterface"),
        ("InstanceId", &instance),
    ]);
    assert!(attaches.is_empty(), "{attaches:?}");

    // and pinhook's own action pins the instance, which then waits for the other tools
    let pinned = world.deliver(&ours["event"]).await;
    assert_eq!(pinned.outcome, Outcome::Continue, "{pinned:?}");
    assert_eq!(pinned.completion, Some(Completion::Completed));
    assert_eq!(pinned.member.as_deref(), Some(eni.as_str()));
    assert_eq!(
        world.lifecycle_state(&instance).await.as_deref(),
        Some("Pending:Wait")
    );
    for action in &theirs {
        world.complete(action, "CONTINUE").await;
    }
    assert_eq!(
        world.lifecycle_state(&instance).await.as_deref(),
        Some("InService")
    );

    // When the group scales in, the same holds for the terminate actions: the other tools'
    // are left alone (the member stays attached), pinhook's releases, and the instance waits
    // for the other tools' drain before it terminates
    world.scale(&group, 0).await;
    let (ours, theirs) = split(
        world.emulator.actions(&group.name, false),
        &group.terminate_hook,
    );
    deliver_theirs(&world, &group.name, &theirs).await;
    assert_eq!(
        world.eni_state(&eni).await.instance.as_deref(),
        Some(instance.as_str())
    );
    let released = world.deliver(&ours["event"]).await;
    assert_eq!(released.outcome, Outcome::Continue, "{released:?}");
    assert_eq!(released.member.as_deref(), Some(eni.as_str()));
    assert_eq!(world.eni_state(&eni).await.status, "available");
    assert_eq!(
        world.lifecycle_state(&instance).await.as_deref(),
        Some("Terminating:Wait")
    );
    for action in &theirs {
        world.complete(action, "CONTINUE").await;
    }
    assert_eq!(world.ec2_state(&instance).await, "terminated");
    assert_eq!(world.metric("ForeignActions"), 6.0);
}

#[tokio::test(start_paused = true)]
async fn a_broken_event_of_another_tools_hook_is_left_alone_too() {
    // Given an instance waiting on another tool's launch hook only
    let world = World::new().await;
    let net = world.network().await;
    let group = world
        .group(GroupSpec::bare(vec![net.subnet_a.clone()], 2))
        .await;
    world
        .any_hook(&group.name, "bootstrap", LAUNCHING, Some("not json"))
        .await;
    world.scale(&group, 1).await;
    let action = world.emulator.actions(&group.name, false).remove(0);

    // When its event reaches pinhook broken (a transition pinhook does not know)
    let mut event = action["event"].clone();
    event["detail"]["LifecycleTransition"] = json!("autoscaling:EC2_INSTANCE_REBOOTING");
    let summary = world.deliver(&event).await;

    // Then it is still the other tool's: not completed with pinhook's failure outcome
    assert_eq!(summary.outcome, Outcome::Ignored, "{summary:?}");
    let after = world
        .emulator
        .action_of(&group.name, &instance_of(&event), "launch");
    assert_eq!(after["pending"], true, "{after}");
}
