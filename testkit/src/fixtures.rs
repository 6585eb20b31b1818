//! Fixtures: what a test builds through the AWS API — a network, pools of ENIs and Elastic IPs,
//! groups with pinhook's (and other tools') lifecycle hooks — and the hook metadata and sample
//! events it delivers.

use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use serde_json::{Value, json};

pub use pinhook::config::PinKind as Pin;

use crate::world::World;
use crate::{AMI, AZ_A, AZ_B, POOL_TAG, repo_root, unique};

/// A VPC with one subnet in each of two AZs.
#[derive(Debug, Clone)]
pub struct Network {
    pub vpc: String,
    pub subnet_a: String,
    pub subnet_b: String,
}

impl Network {
    pub fn subnet(&self, az: &str) -> &str {
        if az == AZ_A {
            &self.subnet_a
        } else {
            &self.subnet_b
        }
    }

    /// Both subnets, for a group spread over both AZs.
    pub fn subnets(&self) -> Vec<String> {
        vec![self.subnet_a.clone(), self.subnet_b.clone()]
    }
}

/// An Auto Scaling group with pinhook's hooks.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub launch_hook: String,
    pub terminate_hook: String,
}

/// What a group is made of.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub subnets: Vec<String>,
    /// Metadata of the launch hook; no launch hook when `None`.
    pub launch_metadata: Option<String>,
    /// Metadata of the terminate hook; no terminate hook when `None`.
    pub terminate_metadata: Option<String>,
    /// An extra terminate hook that pinhook does not serve, so that an instance stays in
    /// Terminating:Wait after pinhook completed its action.
    pub extra_terminate_hook: bool,
    pub max_size: i32,
}

impl GroupSpec {
    /// A group with no hook of pinhook's, over the subnets.
    pub fn bare(subnets: Vec<String>, max_size: i32) -> Self {
        Self {
            subnets,
            launch_metadata: None,
            terminate_metadata: None,
            extra_terminate_hook: false,
            max_size,
        }
    }

    /// A launch and a terminate hook with the same metadata, over the subnets.
    pub fn pinning(subnets: Vec<String>, metadata: String, max_size: i32) -> Self {
        Self {
            subnets,
            launch_metadata: Some(metadata.clone()),
            terminate_metadata: Some(metadata),
            extra_terminate_hook: false,
            max_size,
        }
    }
}

impl World {
    pub async fn network(&self) -> Network {
        let vpc = self
            .ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .unwrap();
        let vpc = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_owned();
        let mut subnets = Vec::new();
        for (az, cidr) in [(AZ_A, "10.0.1.0/24"), (AZ_B, "10.0.2.0/24")] {
            let subnet = self
                .ec2
                .create_subnet()
                .vpc_id(&vpc)
                .cidr_block(cidr)
                .availability_zone(az)
                .send()
                .await
                .unwrap();
            subnets.push(
                subnet
                    .subnet()
                    .and_then(|s| s.subnet_id())
                    .unwrap()
                    .to_owned(),
            );
        }
        Network {
            vpc,
            subnet_b: subnets.pop().unwrap(),
            subnet_a: subnets.pop().unwrap(),
        }
    }

    /// An ENI in the subnet, with the given tags.
    pub async fn eni(&self, subnet: &str, tags: &[(&str, &str)]) -> String {
        let mut request = self.ec2.create_network_interface().subnet_id(subnet);
        if !tags.is_empty() {
            let mut spec =
                TagSpecification::builder().resource_type(ResourceType::NetworkInterface);
            for (key, value) in tags {
                spec = spec.tags(Tag::builder().key(*key).value(*value).build());
            }
            request = request.tag_specifications(spec.build());
        }
        let eni = request.send().await.unwrap();
        eni.network_interface()
            .and_then(|e| e.network_interface_id())
            .unwrap()
            .to_owned()
    }

    /// Attaches the ENI to the instance at the device index, directly (not through pinhook).
    pub async fn attach(&self, eni: &str, instance: &str, device_index: i32) -> String {
        let attached = self
            .ec2
            .attach_network_interface()
            .network_interface_id(eni)
            .instance_id(instance)
            .device_index(device_index)
            .send()
            .await
            .unwrap();
        attached.attachment_id().unwrap_or_default().to_owned()
    }

    /// `count` pool ENIs tagged `pinhook:pool` = `pool` in the AZ's subnet.
    pub async fn eni_pool(
        &self,
        network: &Network,
        pool: &str,
        az: &str,
        count: usize,
    ) -> Vec<String> {
        let mut enis = Vec::new();
        for _ in 0..count {
            enis.push(
                self.eni(network.subnet(az), &[(POOL_TAG, pool), ("Name", pool)])
                    .await,
            );
        }
        enis
    }

    pub async fn group(&self, spec: GroupSpec) -> Group {
        self.group_named(&unique("asg"), spec).await
    }

    pub async fn group_named(&self, name: &str, spec: GroupSpec) -> Group {
        let name = name.to_owned();
        let template = format!("lt-{name}");
        self.ec2
            .create_launch_template()
            .launch_template_name(&template)
            .launch_template_data(
                aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                    .image_id(AMI)
                    .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        self.asg
            .create_auto_scaling_group()
            .auto_scaling_group_name(&name)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_name(&template)
                    .build(),
            )
            .min_size(0)
            .max_size(spec.max_size)
            .desired_capacity(0)
            .vpc_zone_identifier(spec.subnets.join(","))
            .send()
            .await
            .unwrap();
        let group = Group {
            launch_hook: format!("{name}-launch"),
            terminate_hook: format!("{name}-terminate"),
            name,
        };
        if let Some(metadata) = &spec.launch_metadata {
            self.hook(
                &group.name,
                &group.launch_hook,
                "autoscaling:EC2_INSTANCE_LAUNCHING",
                metadata,
            )
            .await;
        }
        if let Some(metadata) = &spec.terminate_metadata {
            self.hook(
                &group.name,
                &group.terminate_hook,
                "autoscaling:EC2_INSTANCE_TERMINATING",
                metadata,
            )
            .await;
        }
        if spec.extra_terminate_hook {
            self.hook(
                &group.name,
                "drain-logs",
                "autoscaling:EC2_INSTANCE_TERMINATING",
                "{}",
            )
            .await;
        }
        group
    }

    pub async fn hook(&self, group: &str, hook: &str, transition: &str, metadata: &str) {
        self.any_hook(group, hook, transition, Some(metadata)).await;
    }

    /// A lifecycle hook with any metadata, or none: another tool's, or pinhook's.
    pub async fn any_hook(
        &self,
        group: &str,
        hook: &str,
        transition: &str,
        metadata: Option<&str>,
    ) {
        self.asg
            .put_lifecycle_hook()
            .auto_scaling_group_name(group)
            .lifecycle_hook_name(hook)
            .lifecycle_transition(transition)
            .set_notification_metadata(metadata.map(str::to_owned))
            .heartbeat_timeout(300)
            .default_result("ABANDON")
            .send()
            .await
            .unwrap();
    }

    /// Completes a lifecycle action as the tool that owns its hook would.
    pub async fn complete(&self, action: &Value, result: &str) {
        self.asg
            .complete_lifecycle_action()
            .auto_scaling_group_name(action["group"].as_str().unwrap())
            .lifecycle_hook_name(action["hook"].as_str().unwrap())
            .lifecycle_action_token(action["token"].as_str().unwrap())
            .lifecycle_action_result(result)
            .send()
            .await
            .unwrap();
    }

    pub async fn scale(&self, group: &Group, capacity: i32) {
        self.asg
            .set_desired_capacity()
            .auto_scaling_group_name(&group.name)
            .desired_capacity(capacity)
            .send()
            .await
            .unwrap();
    }

    /// Terminates the instance in its group without lowering the desired capacity, so the group
    /// launches a replacement while the instance waits on its terminate hooks.
    pub async fn replace(&self, instance: &str) {
        self.asg
            .terminate_instance_in_auto_scaling_group()
            .instance_id(instance)
            .should_decrement_desired_capacity(false)
            .send()
            .await
            .unwrap();
    }

    /// A plain EC2 instance in the subnet, outside any group.
    pub async fn lone_instance(&self, subnet: &str) -> String {
        let run = self
            .ec2
            .run_instances()
            .image_id(AMI)
            .min_count(1)
            .max_count(1)
            .subnet_id(subnet)
            .send()
            .await
            .unwrap();
        run.instances()[0].instance_id().unwrap().to_owned()
    }

    /// A fresh pool of `members` named `pool`: ENIs in AZ a, or Elastic IPs.
    pub async fn pool_of(
        &self,
        net: &Network,
        pin: Pin,
        pool: &str,
        members: usize,
    ) -> Vec<String> {
        match pin {
            Pin::Eni => self.eni_pool(net, pool, AZ_A, members).await,
            Pin::Eip => self.eip_pool(pool, members).await,
        }
    }

    /// A fresh pool of `members` (ENIs in AZ a, or Elastic IPs) and a group in AZ a of up to
    /// `max_size` instances whose launch and terminate hooks pin from it.
    pub async fn pinning(&self, net: &Network, pin: Pin, members: usize, max_size: i32) -> Pinning {
        let pool = unique(&format!("pool-{pin}"));
        let members = self.pool_of(net, pin, &pool, members).await;
        let metadata = hook_metadata(pin, &pool, serde_json::json!({}));
        let spec = GroupSpec::pinning(vec![net.subnet_a.clone()], metadata, max_size);
        let group = self.group(spec).await;
        Pinning {
            group,
            pool,
            members,
        }
    }

    /// A plain EC2 instance with these tags, as Karpenter launches a node (an `EC2NodeClass`'s
    /// `spec.tags`) or a launch template's tag specifications give them.
    pub async fn tagged_instance(&self, subnet: &str, tags: &[(&str, &str)]) -> String {
        let spec = aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build())
                    .collect(),
            ))
            .build();
        let run = self
            .ec2
            .run_instances()
            .image_id(AMI)
            .min_count(1)
            .max_count(1)
            .subnet_id(subnet)
            .tag_specifications(spec)
            .send()
            .await
            .unwrap();
        run.instances()[0].instance_id().unwrap().to_owned()
    }

    /// Stops an instance through EC2; it keeps its attached ENIs and associated addresses.
    pub async fn stop_instance(&self, instance: &str) {
        self.ec2
            .stop_instances()
            .instance_ids(instance)
            .send()
            .await
            .unwrap();
    }

    /// Starts a stopped instance through EC2.
    pub async fn start_instance(&self, instance: &str) {
        self.ec2
            .start_instances()
            .instance_ids(instance)
            .send()
            .await
            .unwrap();
    }

    /// `count` Elastic IPs tagged `pinhook:pool` = `pool`.
    pub async fn eip_pool(&self, pool: &str, count: usize) -> Vec<String> {
        let mut addresses = Vec::new();
        for _ in 0..count {
            addresses.push(self.eip(&[(POOL_TAG, pool)]).await);
        }
        addresses
    }

    /// An Elastic IP with the given tags; its allocation id.
    pub async fn eip(&self, tags: &[(&str, &str)]) -> String {
        let mut request = self
            .ec2
            .allocate_address()
            .domain(aws_sdk_ec2::types::DomainType::Vpc);
        if !tags.is_empty() {
            let mut spec = TagSpecification::builder().resource_type(ResourceType::ElasticIp);
            for (key, value) in tags {
                spec = spec.tags(Tag::builder().key(*key).value(*value).build());
            }
            request = request.tag_specifications(spec.build());
        }
        request
            .send()
            .await
            .unwrap()
            .allocation_id()
            .unwrap()
            .to_owned()
    }

    pub async fn associate(&self, allocation: &str, eni: &str) {
        self.ec2
            .associate_address()
            .allocation_id(allocation)
            .network_interface_id(eni)
            .allow_reassociation(false)
            .send()
            .await
            .unwrap();
    }

    pub async fn nat_gateway(&self, subnet: &str, allocation: &str) {
        self.ec2
            .create_nat_gateway()
            .subnet_id(subnet)
            .allocation_id(allocation)
            .send()
            .await
            .unwrap();
    }

    pub async fn set_unhealthy(&self, instance: &str) {
        self.asg
            .set_instance_health()
            .instance_id(instance)
            .health_status("Unhealthy")
            .send()
            .await
            .unwrap();
    }

    pub async fn tag(&self, resource: &str, key: &str, value: &str) {
        self.ec2
            .create_tags()
            .resources(resource)
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await
            .unwrap();
    }

    /// Terminates an instance through EC2, as a Spot reclaim or a person does: no hooks run.
    pub async fn terminate_in_ec2(&self, instance: &str) {
        self.ec2
            .terminate_instances()
            .instance_ids(instance)
            .send()
            .await
            .unwrap();
    }

    /// Takes an instance out of its group (it keeps running), lowering the desired capacity.
    pub async fn detach_from_group(&self, group: &Group, instance: &str) {
        self.asg
            .detach_instances()
            .auto_scaling_group_name(&group.name)
            .instance_ids(instance)
            .should_decrement_desired_capacity(true)
            .send()
            .await
            .unwrap();
    }

    /// Gives the group a warm pool of `size` stopped instances, reused on scale-in.
    pub async fn warm_pool(&self, group: &Group, size: i32) {
        self.asg
            .put_warm_pool()
            .auto_scaling_group_name(&group.name)
            .min_size(size)
            .max_group_prepared_capacity(0)
            .pool_state(aws_sdk_autoscaling::types::WarmPoolState::Stopped)
            .instance_reuse_policy(
                aws_sdk_autoscaling::types::InstanceReusePolicy::builder()
                    .reuse_on_scale_in(true)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Detaches an ENI by hand, as a person with the console would, and waits until it is free.
    pub async fn detach_by_hand(&self, eni: &str) {
        let state = self.eni_state(eni).await;
        let found = self
            .ec2
            .describe_network_interfaces()
            .network_interface_ids(eni)
            .send()
            .await
            .unwrap();
        let attachment = found.network_interfaces()[0]
            .attachment()
            .and_then(|a| a.attachment_id())
            .unwrap_or_else(|| panic!("{eni} is not attached: {state:?}"))
            .to_owned();
        self.ec2
            .detach_network_interface()
            .attachment_id(attachment)
            .send()
            .await
            .unwrap();
        self.wait_available(eni).await;
    }

    /// Disassociates an address by hand.
    pub async fn disassociate_by_hand(&self, allocation: &str) {
        let association = self
            .address_state(allocation)
            .await
            .association
            .unwrap_or_else(|| panic!("{allocation} is not associated"));
        self.ec2
            .disassociate_address()
            .association_id(association)
            .send()
            .await
            .unwrap();
    }
}

/// Hook metadata pinning from the pool, with extra keys.
pub fn hook_metadata(pin: Pin, pool: &str, extra: Value) -> String {
    let mut metadata = json!({"pin": pin.to_string(), "pool": pool});
    if let (Some(m), Some(extra)) = (metadata.as_object_mut(), extra.as_object()) {
        m.extend(extra.clone());
    }
    metadata.to_string()
}

pub fn eni_metadata(pool: &str, extra: Value) -> String {
    hook_metadata(Pin::Eni, pool, extra)
}

pub fn eip_metadata(pool: &str, extra: Value) -> String {
    hook_metadata(Pin::Eip, pool, extra)
}

/// The instance a lifecycle event names.
/// A pool and a group whose hooks pin from it.
#[derive(Debug, Clone)]
pub struct Pinning {
    pub group: Group,
    pub pool: String,
    pub members: Vec<String>,
}

/// The tags that make an instance without a group pinhook's: `pinhook:pin` and `pinhook:pool`.
pub fn node_tags(pin: Pin, pool: &str) -> [(&'static str, String); 2] {
    [
        ("pinhook:pin", pin.to_string()),
        ("pinhook:pool", pool.to_owned()),
    ]
}

pub fn instance_of(event: &Value) -> String {
    event["detail"]["EC2InstanceId"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A sample event from `events/`, as a template.
pub fn sample_event(name: &str) -> Value {
    let path = repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A sample event with its detail pointing at a real lifecycle action of the emulator.
pub fn sample_for(name: &str, action: &Value) -> Value {
    let mut event = sample_event(name);
    for key in [
        "LifecycleActionToken",
        "AutoScalingGroupName",
        "LifecycleHookName",
        "EC2InstanceId",
        "NotificationMetadata",
    ] {
        event["detail"][key] = action["event"]["detail"][key].clone();
    }
    event
}
