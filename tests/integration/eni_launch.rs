//! Pinning a pool ENI on launch, end to end against the emulator.

use pinhook::Outcome;
use pinhook::handler::Completion;
use serde_json::json;

use crate::support::InstanceState;
use crate::support::{AZ_A, AZ_B, GroupSpec, World, eni_metadata, instance_of, unique};

/// A group over both AZs (or the given subnets) whose launch hook pins from `pool`.
fn spec(subnets: Vec<String>, metadata: String) -> GroupSpec {
    GroupSpec {
        subnets,
        launch_metadata: Some(metadata.clone()),
        terminate_metadata: Some(metadata),
        extra_terminate_hook: false,
        max_size: 10,
    }
}

#[tokio::test(start_paused = true)]
async fn pins_an_eni_in_each_az_and_continues() {
    // Given a pool with two ENIs in each AZ and a group that launches one instance per AZ
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    let in_a = world.eni_pool(&net, &pool, AZ_A, 2).await;
    let in_b = world.eni_pool(&net, &pool, AZ_B, 2).await;
    let group = world
        .group(spec(
            vec![net.subnet_a.clone(), net.subnet_b.clone()],
            eni_metadata(&pool, json!({})),
        ))
        .await;
    world.scale(&group, 2).await;
    let events = world.emulator.pending_events(&group.name);
    assert_eq!(events.len(), 2);

    // When each launch action is delivered
    for event in &events {
        let summary = world.deliver(event).await;
        assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
        assert_eq!(summary.completion, Some(Completion::Completed));
    }

    // Then each instance is in service and holds one pool ENI of its own AZ at device index 1
    let instances = world.instances(&group).await;
    let azs: Vec<&str> = instances.iter().map(|i| i.az.as_str()).collect();
    assert!(azs.contains(&AZ_A) && azs.contains(&AZ_B), "{instances:?}");
    for InstanceState {
        id: instance,
        az,
        state,
    } in &instances
    {
        assert_eq!(state, "InService");
        let attached = world.attached_to(instance).await;
        assert_eq!(attached.len(), 2, "{attached:?}");
        let pinned = &attached[1];
        assert_eq!(pinned.device_index, Some(1));
        assert_eq!(pinned.attachment_status.as_deref(), Some("attached"));
        assert_eq!(&pinned.az, az);
        assert!(if az == AZ_A { &in_a } else { &in_b }.contains(&pinned.id));
        assert_eq!(pinned.holder.as_deref(), Some(instance.as_str()));
        assert_eq!(
            world.instance_tag(instance, "pinhook:eni").await.as_deref(),
            Some(pinned.id.as_str())
        );
        let action = world.emulator.action_of(&group.name, instance, "launch");
        assert_eq!(
            action["complete_calls"],
            json!({"accepted": 1, "rejected": 0})
        );
        assert_eq!(action["result"], "CONTINUE");
    }
}

#[tokio::test(start_paused = true)]
async fn the_summary_names_the_member_and_its_mac() {
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    let eni = world.eni_pool(&net, &pool, AZ_A, 1).await.remove(0);
    let group = world
        .group(spec(
            vec![net.subnet_a.clone()],
            eni_metadata(&pool, json!({})),
        ))
        .await;
    world.scale(&group, 1).await;

    let summary = world
        .deliver(&world.emulator.pending_events(&group.name)[0])
        .await;

    let state = world.eni_state(&eni).await;
    assert_eq!(summary.member.as_deref(), Some(eni.as_str()));
    assert_eq!(summary.mac_address.as_deref(), Some(state.mac.as_str()));
    assert_eq!(summary.availability_zone.as_deref(), Some(AZ_A));
    assert_eq!(
        summary.pool.as_ref().map(|p| p.as_str()),
        Some(pool.as_str())
    );
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["transition"], "launch");
    assert_eq!(json["outcome"], "CONTINUE");
}

#[tokio::test(start_paused = true)]
async fn never_takes_an_eni_from_another_az() {
    // Given a pool whose only members are in AZ b, and a group in AZ a
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    let elsewhere = world.eni_pool(&net, &pool, AZ_B, 3).await;
    let group = world
        .group(spec(
            vec![net.subnet_a.clone()],
            eni_metadata(&pool, json!({})),
        ))
        .await;
    world.scale(&group, 1).await;
    let InstanceState {
        id: instance, az, ..
    } = world.instances(&group).await.remove(0);
    assert_eq!(az, AZ_A);

    // When the launch is delivered
    let summary = world
        .deliver(&world.emulator.pending_events(&group.name)[0])
        .await;

    // Then no ENI of the other AZ was even tried, and the default failure outcome abandoned
    // the launch
    assert_eq!(summary.outcome, Outcome::Abandon, "{summary:?}");
    let attempts = world.emulator.requests(&[
        ("action", "AttachNetworkInterface"),
        ("InstanceId", &instance),
    ]);
    assert!(attempts.is_empty(), "{attempts:?}");
    assert!(
        summary
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("no member in us-east-1a"),
        "{summary:?}"
    );
    for eni in &elsewhere {
        assert_eq!(world.eni_state(eni).await.status, "available");
    }
    assert_eq!(world.ec2_state(&instance).await, "terminated");
}

#[tokio::test(start_paused = true)]
async fn a_member_taken_between_listing_and_attaching_moves_the_claim_to_the_next() {
    // Given two free pool ENIs, and a second claimer that will take whichever ENI pinhook
    // tries first, just before pinhook's AttachNetworkInterface lands
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    let enis = world.eni_pool(&net, &pool, AZ_A, 2).await;
    let group = world
        .group(spec(
            vec![net.subnet_a.clone()],
            eni_metadata(&pool, json!({})),
        ))
        .await;
    world.scale(&group, 1).await;
    let instance = world.instances(&group).await.remove(0).id;
    let thief = world.lone_instance(&net.subnet_a).await;
    world.emulator.arm_claimer(&instance, &thief);

    // When the launch is delivered
    let summary = world
        .deliver(&world.emulator.pending_events(&group.name)[0])
        .await;

    // Then AWS refused the first ENI as in use, and pinhook pinned the other one
    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    let fired = world.emulator.claimer_fired(&instance);
    let stolen = fired["eni"].as_str().unwrap();
    let other = enis.iter().find(|e| *e != stolen).unwrap();
    let attempts = world.emulator.requests(&[
        ("action", "AttachNetworkInterface"),
        ("InstanceId", &instance),
    ]);
    let codes: Vec<_> = attempts
        .iter()
        .map(|a| {
            (
                a["NetworkInterfaceId"].clone(),
                a["status"].clone(),
                a["code"].clone(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            (
                json!(stolen),
                json!(400),
                json!("InvalidNetworkInterface.InUse")
            ),
            (json!(other), json!(200), serde_json::Value::Null)
        ]
    );
    assert_eq!(
        world.eni_state(stolen).await.instance.as_deref(),
        Some(thief.as_str())
    );
    assert_eq!(
        world.eni_state(other).await.instance.as_deref(),
        Some(instance.as_str())
    );
    assert_eq!(summary.member.as_deref(), Some(other.as_str()));
    assert_eq!(world.metric("ClaimConflicts"), 1.0);
    assert_eq!(world.metric("Pinned"), 1.0);
}

#[tokio::test(start_paused = true)]
async fn the_same_event_twice_gives_one_attachment_and_one_completion() {
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    world.eni_pool(&net, &pool, AZ_A, 3).await;
    let group = world
        .group(spec(
            vec![net.subnet_a.clone()],
            eni_metadata(&pool, json!({})),
        ))
        .await;
    world.scale(&group, 1).await;
    let event = world.emulator.pending_events(&group.name).remove(0);
    let instance = instance_of(&event);

    let first = world.deliver(&event).await;
    let second = world.deliver(&event).await;

    assert_eq!(first.outcome, Outcome::Continue);
    assert_eq!(second.outcome, Outcome::Stale, "{second:?}");
    let pool_enis: Vec<_> = world
        .attached_to(&instance)
        .await
        .into_iter()
        .filter(|e| e.pool.is_some())
        .collect();
    assert_eq!(pool_enis.len(), 1, "{pool_enis:?}");
    let action = world.emulator.action_of(&group.name, &instance, "launch");
    assert_eq!(
        action["complete_calls"],
        json!({"accepted": 1, "rejected": 0})
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_event_delivered_concurrently_still_pins_one_member() {
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    world.eni_pool(&net, &pool, AZ_A, 3).await;
    let group = world
        .group(spec(
            vec![net.subnet_a.clone()],
            eni_metadata(&pool, json!({})),
        ))
        .await;
    world.scale(&group, 1).await;
    let event = world.emulator.pending_events(&group.name).remove(0);
    let instance = instance_of(&event);

    let (first, second) = tokio::join!(world.deliver(&event), world.deliver(&event));

    let outcomes = [first.outcome, second.outcome];
    assert!(
        outcomes.contains(&Outcome::Continue),
        "{first:?} {second:?}"
    );
    let pool_enis: Vec<_> = world
        .attached_to(&instance)
        .await
        .into_iter()
        .filter(|e| e.pool.is_some())
        .collect();
    assert_eq!(pool_enis.len(), 1, "{pool_enis:?}");
    let action = world.emulator.action_of(&group.name, &instance, "launch");
    assert_eq!(action["complete_calls"]["accepted"], 1);
    assert_eq!(
        world.lifecycle_state(&instance).await.as_deref(),
        Some("InService")
    );
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_pool_abandons_the_launch_by_default() {
    // Given one pool ENI and two launching instances
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    world.eni_pool(&net, &pool, AZ_A, 1).await;
    let group = world
        .group(spec(
            vec![net.subnet_a.clone()],
            eni_metadata(&pool, json!({})),
        ))
        .await;
    world.scale(&group, 2).await;

    let mut summaries = Vec::new();
    for event in world.emulator.pending_events(&group.name) {
        summaries.push(world.deliver(&event).await);
    }

    let pinned = summaries
        .iter()
        .find(|s| s.outcome == Outcome::Continue)
        .expect("one pinned");
    let abandoned = summaries
        .iter()
        .find(|s| s.outcome == Outcome::Abandon)
        .expect("one abandoned");
    assert!(
        abandoned
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("exhausted"),
        "{abandoned:?}"
    );
    let abandoned = abandoned.instance.as_ref().unwrap().to_string();
    assert_eq!(world.ec2_state(&abandoned).await, "terminated");
    assert_eq!(world.lifecycle_state(&abandoned).await, None);
    assert_eq!(world.metric("PoolExhausted"), 1.0);
    assert_eq!(world.metric("FailedActions"), 1.0);
    let pinned = pinned.instance.as_ref().unwrap().to_string();
    assert_eq!(
        world.lifecycle_state(&pinned).await.as_deref(),
        Some("InService")
    );
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_pool_continues_when_the_hook_says_so() {
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    let group = world
        .group(spec(
            vec![net.subnet_a.clone()],
            eni_metadata(&pool, json!({"on_failure": "continue"})),
        ))
        .await;
    world.scale(&group, 1).await;
    let instance = world.instances(&group).await.remove(0).id;

    let summary = world
        .deliver(&world.emulator.pending_events(&group.name)[0])
        .await;

    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    assert_eq!(summary.member, None);
    assert_eq!(
        world.lifecycle_state(&instance).await.as_deref(),
        Some("InService")
    );
    assert_eq!(
        world.attached_to(&instance).await.len(),
        1,
        "only the primary interface"
    );
}

#[tokio::test(start_paused = true)]
async fn events_that_do_not_match_auto_scaling_change_nothing() {
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    let enis = world.eni_pool(&net, &pool, AZ_A, 2).await;
    let group = world
        .group(spec(
            vec![net.subnet_a.clone()],
            eni_metadata(&pool, json!({})),
        ))
        .await;
    world.scale(&group, 1).await;
    let genuine = world.emulator.pending_events(&group.name).remove(0);

    // An instance outside the group, an instance of another group, and an action for another
    // hook or group name: each is refused without a change.
    let outsider = world.lone_instance(&net.subnet_a).await;
    let mut not_in_group = genuine.clone();
    not_in_group["detail"]["EC2InstanceId"] = json!(outsider);
    let mut other_group = genuine.clone();
    other_group["detail"]["AutoScalingGroupName"] = json!("someone-elses-group");
    for event in [&not_in_group, &other_group] {
        let summary = world.deliver(event).await;
        assert_eq!(summary.outcome, Outcome::Stale, "{summary:?}");
        assert_eq!(summary.completion, None);
    }
    for eni in &enis {
        assert_eq!(world.eni_state(eni).await.status, "available");
    }
    let instance = genuine["detail"]["EC2InstanceId"].as_str().unwrap();
    assert_eq!(
        world.lifecycle_state(instance).await.as_deref(),
        Some("Pending:Wait")
    );
    let action = world.emulator.action_of(&group.name, instance, "launch");
    assert_eq!(
        action["complete_calls"],
        json!({"accepted": 0, "rejected": 0})
    );

    // Once the genuine event was handled, a late copy (the instance is in service) is stale too.
    assert_eq!(world.deliver(&genuine).await.outcome, Outcome::Continue);
    let late = world.deliver(&genuine).await;
    assert_eq!(late.outcome, Outcome::Stale);
    assert!(
        late.reason
            .as_deref()
            .unwrap_or_default()
            .contains("InService"),
        "{late:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn bad_metadata_names_the_key_and_still_completes_the_action() {
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    world.eni_pool(&net, &pool, AZ_A, 1).await;
    let cases = [
        (
            eni_metadata(&pool, json!({"device_index": 0})),
            "device_index",
            Outcome::Abandon,
        ),
        (
            eni_metadata(&pool, json!({"devce_index": 2, "on_failure": "continue"})),
            "devce_index",
            Outcome::Continue,
        ),
        (
            json!({"pin": ["eni"], "pool": pool}).to_string(),
            "\"pin\"",
            Outcome::Abandon,
        ),
        (
            json!({"pin": "eni"}).to_string(),
            "\"pool\"",
            Outcome::Abandon,
        ),
    ];
    for (metadata, named, outcome) in cases {
        let group = world
            .group(spec(vec![net.subnet_a.clone()], metadata.clone()))
            .await;
        world.scale(&group, 1).await;
        let instance = world.instances(&group).await.remove(0).id;

        let summary = world
            .deliver(&world.emulator.pending_events(&group.name)[0])
            .await;

        assert_eq!(summary.outcome, outcome, "{metadata}: {summary:?}");
        assert_eq!(summary.completion, Some(Completion::Completed));
        assert!(
            summary
                .reason
                .as_deref()
                .unwrap_or_default()
                .contains(named),
            "{metadata}: {summary:?}"
        );
        let expected_state = if outcome == Outcome::Continue {
            Some("InService")
        } else {
            None
        };
        assert_eq!(
            world.lifecycle_state(&instance).await.as_deref(),
            expected_state,
            "{metadata}"
        );
        let pool_enis = world
            .attached_to(&instance)
            .await
            .into_iter()
            .filter(|e| e.pool.is_some())
            .count();
        assert_eq!(pool_enis, 0, "{metadata}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_device_index_held_by_a_foreign_interface_fails_with_a_clear_reason() {
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    world.eni_pool(&net, &pool, AZ_A, 1).await;
    let group = world
        .group(spec(
            vec![net.subnet_a.clone()],
            eni_metadata(&pool, json!({})),
        ))
        .await;
    world.scale(&group, 1).await;
    let instance = world.instances(&group).await.remove(0).id;
    let foreign = world.eni(&net.subnet_a, &[]).await;
    world.attach(&foreign, &instance, 1).await;

    let summary = world
        .deliver(&world.emulator.pending_events(&group.name)[0])
        .await;

    assert_eq!(summary.outcome, Outcome::Abandon, "{summary:?}");
    let reason = summary.reason.unwrap_or_default();
    assert!(
        reason.contains("device index 1") && reason.contains(&foreign),
        "{reason}"
    );
}

#[tokio::test(start_paused = true)]
async fn waits_for_a_terminating_holder_to_release_then_pins() {
    // Given the only pool ENI held by an instance that is terminating
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    let eni = world.eni_pool(&net, &pool, AZ_A, 1).await.remove(0);
    let group = world
        .group(spec(
            vec![net.subnet_a.clone()],
            eni_metadata(&pool, json!({})),
        ))
        .await;
    world.scale(&group, 1).await;
    let old = world.emulator.pending_events(&group.name).remove(0);
    assert_eq!(world.deliver(&old).await.outcome, Outcome::Continue);
    let old_instance = instance_of(&old);
    world.replace(&old_instance).await;
    let actions = world.emulator.actions(&group.name, false);
    let release = actions
        .iter()
        .find(|a| a["instance_id"] == old_instance.as_str())
        .unwrap()["event"]
        .clone();
    let launch = actions
        .iter()
        .find(|a| a["instance_id"] != old_instance.as_str())
        .unwrap()["event"]
        .clone();
    let new_instance = instance_of(&launch);

    // When the replacement's launch is handled while the holder's release comes a little later
    let pinning = world.deliver(&launch);
    let releasing = async {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        world.deliver(&release).await
    };
    let (pinned, released) = tokio::join!(pinning, releasing);

    // Then the launch waited, sending heartbeats, and pinned the released ENI
    assert_eq!(released.outcome, Outcome::Continue, "{released:?}");
    assert_eq!(pinned.outcome, Outcome::Continue, "{pinned:?}");
    assert_eq!(pinned.member.as_deref(), Some(eni.as_str()));
    assert_eq!(
        world.eni_state(&eni).await.instance.as_deref(),
        Some(new_instance.as_str())
    );
    let action = world
        .emulator
        .action_of(&group.name, &new_instance, "launch");
    assert!(action["heartbeats"].as_u64().unwrap() >= 1, "{action}");
}
