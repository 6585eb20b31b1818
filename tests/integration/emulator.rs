//! The emulator is as strict as AWS where pinhook depends on it: each check below is the
//! documented AWS behaviour, exercised through the real SDK so the error codes arrive as
//! pinhook will see them.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use serde_json::json;

use crate::support::{AZ_A, AZ_B, GroupSpec, World, eni_metadata, join_all, unique};

fn code_and_message<E: ProvideErrorMetadata>(err: &E) -> (String, String) {
    (
        err.code().unwrap_or_default().to_owned(),
        err.message().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(start_paused = true)]
async fn attaching_an_eni_in_use_fails_with_invalid_network_interface_in_use() {
    let world = World::new().await;
    let net = world.network().await;
    let eni = world.eni(&net.subnet_a, &[]).await;
    let first = world.lone_instance(&net.subnet_a).await;
    let second = world.lone_instance(&net.subnet_a).await;
    let attach = |instance: String| {
        world
            .ec2
            .attach_network_interface()
            .network_interface_id(&eni)
            .instance_id(instance)
            .device_index(1)
            .send()
    };
    attach(first).await.unwrap();

    let err = attach(second).await.unwrap_err();

    let (code, message) = code_and_message(&err);
    assert_eq!(code, "InvalidNetworkInterface.InUse");
    assert_eq!(message, format!("Interface: [{eni}] in use."));
}

#[tokio::test(start_paused = true)]
async fn attaching_at_a_taken_device_index_fails_with_invalid_parameter_value() {
    let world = World::new().await;
    let net = world.network().await;
    let instance = world.lone_instance(&net.subnet_a).await;
    let one = world.eni(&net.subnet_a, &[]).await;
    let two = world.eni(&net.subnet_a, &[]).await;
    let attach = |eni: String| {
        world
            .ec2
            .attach_network_interface()
            .network_interface_id(eni)
            .instance_id(&instance)
            .device_index(1)
            .send()
    };
    attach(one).await.unwrap();

    let err = attach(two).await.unwrap_err();

    let (code, message) = code_and_message(&err);
    assert_eq!(code, "InvalidParameterValue");
    assert_eq!(
        message,
        format!("Instance '{instance}' already has an interface attached at device index '1'.")
    );
}

#[tokio::test(start_paused = true)]
async fn attaching_across_availability_zones_fails_with_invalid_parameter_combination() {
    let world = World::new().await;
    let net = world.network().await;
    let instance = world.lone_instance(&net.subnet_a).await;
    let eni = world.eni(&net.subnet_b, &[]).await;

    let err = world
        .ec2
        .attach_network_interface()
        .network_interface_id(&eni)
        .instance_id(&instance)
        .device_index(1)
        .send()
        .await
        .unwrap_err();

    let (code, message) = code_and_message(&err);
    assert_eq!(code, "InvalidParameterCombination");
    assert!(
        message.contains("not in the same availability zone"),
        "{message}"
    );
    assert_eq!(world.eni_state(&eni).await.az, AZ_B);
}

#[tokio::test(start_paused = true)]
async fn concurrent_claims_of_one_eni_have_exactly_one_winner() {
    let world = World::new().await;
    let net = world.network().await;
    let eni = world.eni(&net.subnet_a, &[]).await;
    let mut instances = Vec::new();
    for _ in 0..8 {
        instances.push(world.lone_instance(&net.subnet_a).await);
    }

    let attempts = instances.iter().map(|instance| {
        world
            .ec2
            .attach_network_interface()
            .network_interface_id(&eni)
            .instance_id(instance)
            .device_index(1)
            .send()
    });
    let results = join_all(attempts).await;

    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1);
    for result in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(result.code(), Some("InvalidNetworkInterface.InUse"));
    }
}

#[tokio::test(start_paused = true)]
async fn an_attachment_goes_through_attaching_to_attached_and_the_primary_cannot_be_detached() {
    let world = World::dedicated().await; // its clock moves with this test alone
    let net = world.network().await;
    let instance = world.lone_instance(&net.subnet_a).await;
    let eni = world.eni(&net.subnet_a, &[]).await;

    world.attach(&eni, &instance, 1).await;

    assert_eq!(
        world.eni_state(&eni).await.attachment_status.as_deref(),
        Some("attaching")
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        world.eni_state(&eni).await.attachment_status.as_deref(),
        Some("attached")
    );
    let primary = world.attached_to(&instance).await.remove(0);
    assert_eq!(primary.device_index, Some(0));
    let described = world
        .ec2
        .describe_network_interfaces()
        .network_interface_ids(&primary.id)
        .send()
        .await
        .unwrap();
    let attachment = described.network_interfaces()[0]
        .attachment()
        .unwrap()
        .attachment_id()
        .unwrap()
        .to_owned();
    let err = world
        .ec2
        .detach_network_interface()
        .attachment_id(attachment)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("OperationNotPermitted"));
}

#[tokio::test(start_paused = true)]
async fn a_detached_eni_is_detaching_before_it_is_available() {
    let world = World::new().await;
    let net = world.network().await;
    let instance = world.lone_instance(&net.subnet_a).await;
    let eni = world.eni(&net.subnet_a, &[]).await;
    let attached = world.attach(&eni, &instance, 1).await;

    world
        .ec2
        .detach_network_interface()
        .attachment_id(&attached)
        .send()
        .await
        .unwrap();

    let during = world.eni_state(&eni).await;
    assert_eq!(
        (during.status.as_str(), during.attachment_status.as_deref()),
        ("in-use", Some("detaching"))
    );
    let after = world.wait_available(&eni).await;
    assert_eq!((after.status.as_str(), after.instance), ("available", None));
}

#[tokio::test(start_paused = true)]
async fn a_launch_hook_holds_instances_in_pending_wait_with_a_token() {
    let world = World::new().await;
    let net = world.network().await;
    let metadata = eni_metadata(&unique("pool"), json!({}));
    let group = world
        .group(GroupSpec {
            subnets: vec![net.subnet_a.clone(), net.subnet_b.clone()],
            launch_metadata: Some(metadata.clone()),
            terminate_metadata: None,
            extra_terminate_hook: false,
            max_size: 4,
        })
        .await;

    world.scale(&group, 4).await;

    let instances = world.instances(&group).await;
    assert!(
        instances.iter().all(|i| i.state == "Pending:Wait"),
        "{instances:?}"
    );
    let in_a = instances.iter().filter(|i| i.az == AZ_A).count();
    assert_eq!(
        in_a, 2,
        "instances are balanced over the AZs: {instances:?}"
    );
    let events = world.emulator.pending_events(&group.name);
    assert_eq!(events.len(), 4);
    for event in &events {
        assert_eq!(event["source"], "aws.autoscaling");
        assert_eq!(event["detail-type"], "EC2 Instance-launch Lifecycle Action");
        assert_eq!(event["detail"]["NotificationMetadata"], metadata.as_str());
        assert!(
            !event["detail"]["LifecycleActionToken"]
                .as_str()
                .unwrap()
                .is_empty()
        );
    }
    // The hook keeps its metadata, as PutLifecycleHook does on AWS.
    let hooks = world
        .asg
        .describe_lifecycle_hooks()
        .auto_scaling_group_name(&group.name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        hooks.lifecycle_hooks()[0].notification_metadata(),
        Some(metadata.as_str())
    );
}

#[tokio::test(start_paused = true)]
async fn complete_lifecycle_action_checks_the_token_and_applies_the_result() {
    let world = World::new().await;
    let net = world.network().await;
    let group = world
        .group(GroupSpec {
            subnets: vec![net.subnet_a.clone()],
            launch_metadata: Some("{}".into()),
            terminate_metadata: Some("{}".into()),
            extra_terminate_hook: false,
            max_size: 4,
        })
        .await;
    world.scale(&group, 2).await;
    let actions = world.emulator.actions(&group.name, false);
    let (first, second) = (&actions[0], &actions[1]);
    let token = first["token"].as_str().unwrap();
    let complete = |result: &'static str| {
        world
            .asg
            .complete_lifecycle_action()
            .auto_scaling_group_name(&group.name)
            .lifecycle_hook_name(&group.launch_hook)
            .lifecycle_action_result(result)
    };

    // A heartbeat for a waiting action is accepted; CONTINUE by token puts the instance in service.
    world
        .asg
        .record_lifecycle_action_heartbeat()
        .auto_scaling_group_name(&group.name)
        .lifecycle_hook_name(&group.launch_hook)
        .lifecycle_action_token(token)
        .send()
        .await
        .unwrap();
    complete("CONTINUE")
        .lifecycle_action_token(token)
        .send()
        .await
        .unwrap();
    let first_instance = first["instance_id"].as_str().unwrap();
    assert_eq!(
        world.lifecycle_state(first_instance).await.as_deref(),
        Some("InService")
    );

    // A used token is refused as AWS refuses it.
    let err = complete("CONTINUE")
        .lifecycle_action_token(token)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ValidationError"));
    assert_eq!(
        err.message(),
        Some(format!("No active Lifecycle Action found with token {token}").as_str())
    );
    let err = world
        .asg
        .record_lifecycle_action_heartbeat()
        .auto_scaling_group_name(&group.name)
        .lifecycle_hook_name(&group.launch_hook)
        .lifecycle_action_token("00000000-0000-0000-0000-000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ValidationError"));

    // ABANDON by instance id terminates the launching instance.
    let second_instance = second["instance_id"].as_str().unwrap();
    complete("ABANDON")
        .instance_id(second_instance)
        .send()
        .await
        .unwrap();
    assert_eq!(world.lifecycle_state(second_instance).await, None);
    assert_eq!(world.ec2_state(second_instance).await, "terminated");

    // Scaling in puts the remaining instance in Terminating:Wait until its action is completed.
    world.scale(&group, 0).await;
    assert_eq!(
        world.lifecycle_state(first_instance).await.as_deref(),
        Some("Terminating:Wait")
    );
    world
        .asg
        .complete_lifecycle_action()
        .auto_scaling_group_name(&group.name)
        .lifecycle_hook_name(&group.terminate_hook)
        .lifecycle_action_result("CONTINUE")
        .instance_id(first_instance)
        .send()
        .await
        .unwrap();
    assert_eq!(world.ec2_state(first_instance).await, "terminated");
}

#[tokio::test(start_paused = true)]
async fn an_unassociated_elastic_ip_has_no_instance_id() {
    let world = World::new().await;
    let allocated = world
        .ec2
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .send()
        .await
        .unwrap();

    let described = world
        .ec2
        .describe_addresses()
        .allocation_ids(allocated.allocation_id().unwrap())
        .send()
        .await
        .unwrap();

    let address = &described.addresses()[0];
    assert_eq!(address.instance_id(), None);
    assert_eq!(address.network_interface_id(), None);
    assert_eq!(address.association_id(), None);
}

#[tokio::test(start_paused = true)]
async fn a_terminated_instance_leaves_its_secondary_enis_available() {
    let world = World::new().await;
    let net = world.network().await;
    let instance = world.lone_instance(&net.subnet_a).await;
    let eni = world.eni(&net.subnet_a, &[]).await;
    world.attach(&eni, &instance, 1).await;

    world
        .ec2
        .terminate_instances()
        .instance_ids(&instance)
        .send()
        .await
        .unwrap();

    let state = world.eni_state(&eni).await;
    assert_eq!((state.status.as_str(), state.instance), ("available", None));
}

#[tokio::test(start_paused = true)]
async fn associate_address_refuses_an_associated_address_without_reassociation() {
    let world = World::new().await;
    let net = world.network().await;
    let first = world.lone_instance(&net.subnet_a).await;
    let second = world.lone_instance(&net.subnet_a).await;
    let (eni_1, eni_2) = (
        world.interface_at(&first, 0).await.id,
        world.interface_at(&second, 0).await.id,
    );
    let address = world.eip(&[]).await;
    world.associate(&address, &eni_1).await;
    let associate = |eni: String| {
        world
            .ec2
            .associate_address()
            .allocation_id(&address)
            .network_interface_id(eni)
            .allow_reassociation(false)
            .send()
    };

    let before = world.address_state(&address).await.association;
    let err = associate(eni_2.clone()).await.unwrap_err();
    let again = associate(eni_1.clone()).await;

    assert_eq!(err.code(), Some("Resource.AlreadyAssociated"));
    // AssociateAddress: "This is an idempotent operation. If you perform the operation more
    // than once, Amazon EC2 doesn't return an error."
    let again = again.unwrap_or_else(|e| panic!("the same association again is a no-op: {e:?}"));
    assert_eq!(again.association_id().map(str::to_owned), before);
    let state = world.address_state(&address).await;
    assert_eq!(
        (state.instance.as_deref(), state.eni.as_deref()),
        (Some(first.as_str()), Some(eni_1.as_str()))
    );
}

#[tokio::test(start_paused = true)]
async fn associating_with_an_interface_that_has_an_address_moves_that_one_off() {
    // AWS: "If you associate an Elastic IP address with an instance that has an existing
    // Elastic IP address, the existing address is disassociated from the instance, but remains
    // allocated to your account."
    let world = World::new().await;
    let net = world.network().await;
    let instance = world.lone_instance(&net.subnet_a).await;
    let eni = world.interface_at(&instance, 0).await.id;
    let (old, new) = (world.eip(&[]).await, world.eip(&[]).await);
    world.associate(&old, &eni).await;

    world.associate(&new, &eni).await;

    assert_eq!(world.address_state(&old).await.association, None);
    assert_eq!(world.addresses_on(&eni).await, [new]);
}

#[tokio::test(start_paused = true)]
async fn a_nat_gateways_address_is_associated_with_its_interface() {
    let world = World::new().await;
    let net = world.network().await;
    let address = world.eip(&[]).await;
    world.nat_gateway(&net.subnet_a, &address).await;

    let state = world.address_state(&address).await;

    assert!(
        state.association.is_some() && state.eni.is_some(),
        "{state:?}"
    );
    assert_eq!(state.instance, None);
}

#[tokio::test(start_paused = true)]
async fn a_booting_instance_refuses_attachments_and_associations_with_incorrect_instance_state() {
    // Given a group instance that boots for a minute
    let world = World::dedicated().await; // its clock moves with this test alone
    let net = world.network().await;
    let group = world
        .group(GroupSpec::bare(vec![net.subnet_a.clone()], 1))
        .await;
    world.emulator.boot_delay(&group.name, 60.0);
    world.scale(&group, 1).await;
    let instance = world.instances(&group).await.remove(0).id;
    assert_eq!(world.ec2_state(&instance).await, "pending");
    let eni = world.eni(&net.subnet_a, &[]).await;
    let address = world.eip(&[]).await;
    let primary = world.interface_at(&instance, 0).await.id;

    let attach = world
        .ec2
        .attach_network_interface()
        .network_interface_id(&eni)
        .instance_id(&instance)
        .device_index(1)
        .send()
        .await
        .unwrap_err();
    let associate = world
        .ec2
        .associate_address()
        .allocation_id(&address)
        .network_interface_id(&primary)
        .allow_reassociation(false)
        .send()
        .await
        .unwrap_err();

    let (code, message) = code_and_message(&attach);
    assert_eq!(code, "IncorrectInstanceState", "{message}");
    let (code, message) = code_and_message(&associate);
    assert_eq!(code, "IncorrectInstanceState");
    // as AWS answers (terraform-provider-aws#19699)
    assert_eq!(
        message,
        format!(
            "The pending-instance-creation instance to which '{primary}' is attached is not in a valid state for this operation"
        )
    );
    assert_eq!(world.eni_state(&eni).await.status, "available");
    assert_eq!(world.address_state(&address).await.association, None);
}

#[tokio::test(start_paused = true)]
async fn with_a_read_lag_a_describe_answers_as_an_earlier_one_did() {
    // Given an emulator of its own whose EC2 reads lag by up to two seconds
    let world = World::dedicated().await;
    let net = world.network().await;
    let instance = world.lone_instance(&net.subnet_a).await;
    let eni = world.eni(&net.subnet_a, &[]).await;
    world
        .emulator
        .settings(json!({"read_lag": 2.0, "lag_mode": "max"}));
    let before = world.eni_state(&eni).await;

    // When the ENI is attached
    world.attach(&eni, &instance, 1).await;
    let right_after = world.eni_state(&eni).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let later = world.eni_state(&eni).await;

    // Then a describe right after still answers as before the attach, and one later does not
    assert_eq!(before.status, "available");
    assert_eq!(right_after, before, "a lagging read");
    assert_eq!(later.instance.as_deref(), Some(instance.as_str()));
    let settings = world.emulator.settings(json!({"read_lag": 0}));
    assert!(
        settings["stale_answers"].as_u64().unwrap() >= 1,
        "{settings}"
    );
}
