//! An in-memory cloud behind pinhook's two adapter traits, for what the emulator cannot do:
//! waits of many minutes under tokio's paused clock. It keeps the few facts the waiting tests
//! need and checks lifecycle tokens and heartbeat timeouts as Auto Scaling does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pinhook::aws::{AddressFilter, AutoScalingApi, AwsError, Ec2Api, EniFilter};
use pinhook::model::{
    ActionRef, Address, AllocationId, AssociationId, Attachment, AttachmentId, AttachmentStatus,
    Ec2Instance, Eni, EniId, Group, GroupInstance, Hook, InstanceId, LifecycleResult,
    LifecycleState, PoolMember, RunState,
};
use tokio::time::Instant;

#[derive(Debug)]
struct Action {
    token: String,
    deadline: Instant,
    ended: Option<&'static str>,
}

#[derive(Debug, Default)]
struct State {
    instances: Vec<GroupInstance>,
    enis: Vec<Eni>,
    addresses: Vec<Address>,
    actions: Vec<Action>,
    heartbeat_timeout: Duration,
    completions: Vec<(String, LifecycleResult, Instant)>,
    heartbeats: Vec<Instant>,
}

/// The fake cloud; clones share one state.
#[derive(Debug, Clone, Default)]
pub struct FakeCloud {
    state: Arc<Mutex<State>>,
}

pub fn id(s: &str) -> InstanceId {
    InstanceId::parse(s).unwrap()
}

impl FakeCloud {
    pub fn new(heartbeat_timeout: Duration) -> Self {
        let cloud = Self::default();
        cloud.state.lock().unwrap().heartbeat_timeout = heartbeat_timeout;
        cloud
    }

    pub fn instance(&self, instance: &str, group: &str, state: &str) {
        self.state.lock().unwrap().instances.push(GroupInstance {
            instance: id(instance),
            group: group.into(),
            availability_zone: "us-east-1a".into(),
            state: LifecycleState::parse(state),
            healthy: true,
        });
    }

    /// A lifecycle action waiting on its hook, with its token.
    pub fn action(&self, token: &str) {
        let mut state = self.state.lock().unwrap();
        let deadline = Instant::now() + state.heartbeat_timeout;
        state.actions.push(Action {
            token: token.into(),
            deadline,
            ended: None,
        });
    }

    /// A pool ENI, attached at device index 1 to `holder` if given.
    pub fn eni(&self, eni: &str, pool: &str, holder: Option<&str>) {
        self.state.lock().unwrap().enis.push(Eni {
            id: EniId::parse(eni).unwrap(),
            availability_zone: Some("us-east-1a".into()),
            status: Some(
                if holder.is_some() {
                    "in-use"
                } else {
                    "available"
                }
                .into(),
            ),
            attachment: holder.map(|h| Attachment {
                id: Some(AttachmentId::parse(&format!("eni-attach-{}", &eni[4..])).unwrap()),
                instance: Some(id(h)),
                device_index: Some(1),
                status: AttachmentStatus::Attached,
            }),
            mac_address: Some("02:00:00:00:00:01".into()),
            private_ip: Some("10.0.1.10".into()),
            public_ip: None,
            elastic_ip: None,
            pool: Some(pool.into()),
            holder: holder.map(str::to_owned),
        });
    }

    /// The instance's primary interface, outside any pool.
    pub fn primary(&self, instance: &str) {
        let eni = format!("eni-0{}", &instance[2..]);
        self.eni(&eni, "-", Some(instance));
        let mut state = self.state.lock().unwrap();
        let primary = state.enis.last_mut().unwrap();
        primary.pool = None;
        primary.holder = None;
        if let Some(attachment) = primary.attachment.as_mut() {
            attachment.device_index = Some(0);
        }
    }

    /// A pool address, associated with `holder`'s primary interface if given.
    pub fn address(&self, allocation: &str, pool: &str, holder: Option<&str>) {
        self.state.lock().unwrap().addresses.push(Address {
            allocation: AllocationId::parse(allocation).unwrap(),
            public_ip: Some("203.0.113.7".into()),
            association: holder.map(|h| pinhook::model::AddressAssociation {
                id: Some(AssociationId::parse("eipassoc-0holder").unwrap()),
                instance: Some(id(h)),
                network_interface: Some(EniId::parse("eni-0holderprimary").unwrap()),
                private_ip: Some("10.0.1.99".into()),
            }),
            pool: Some(pool.into()),
            holder: holder.map(str::to_owned),
            idle_since: None,
        });
    }

    /// The holder's terminate hook ran: its ENI is back in the pool, its address disassociated.
    pub fn release(&self, holder: &str) {
        let mut state = self.state.lock().unwrap();
        for eni in state
            .enis
            .iter_mut()
            .filter(|e| e.holder.as_deref() == Some(holder))
        {
            eni.attachment = None;
            eni.status = Some("available".into());
            eni.holder = None;
        }
        for address in state
            .addresses
            .iter_mut()
            .filter(|a| a.holder.as_deref() == Some(holder))
        {
            address.association = None;
            address.holder = None;
        }
    }

    /// Someone else completed the action.
    pub fn end_action(&self, token: &str) {
        let mut state = self.state.lock().unwrap();
        if let Some(action) = state.actions.iter_mut().find(|a| a.token == token) {
            action.ended = Some("completed elsewhere");
        }
    }

    pub fn completions(&self) -> Vec<(String, LifecycleResult, Instant)> {
        self.state.lock().unwrap().completions.clone()
    }

    pub fn heartbeats(&self) -> Vec<Instant> {
        self.state.lock().unwrap().heartbeats.clone()
    }

    /// Whether the action timed out on its hook at some point.
    pub fn timed_out(&self, token: &str) -> bool {
        let mut state = self.state.lock().unwrap();
        state.expire();
        state
            .actions
            .iter()
            .any(|a| a.token == token && a.ended == Some("timed out"))
    }

    pub fn eni_holder(&self, eni: &str) -> Option<String> {
        let state = self.state.lock().unwrap();
        state
            .enis
            .iter()
            .find(|e| e.id.as_str() == eni)
            .and_then(|e| e.attachment_instance().map(|i| i.to_string()))
    }

    pub fn address_holder(&self, allocation: &str) -> Option<String> {
        let state = self.state.lock().unwrap();
        state
            .addresses
            .iter()
            .find(|a| a.allocation.as_str() == allocation)
            .and_then(|a| a.associated_instance().map(|i| i.to_string()))
    }
}

impl State {
    fn expire(&mut self) {
        let now = Instant::now();
        for action in self.actions.iter_mut().filter(|a| a.ended.is_none()) {
            if now >= action.deadline {
                action.ended = Some("timed out");
            }
        }
    }

    fn active(&mut self, action: &ActionRef) -> Result<&mut Action, AwsError> {
        self.expire();
        let token = action.token.clone().unwrap_or_default();
        self.actions
            .iter_mut()
            .find(|a| a.token == token && a.ended.is_none())
            .ok_or_else(|| {
                AwsError::from_response(
                    "autoscaling:CompleteLifecycleAction",
                    Some("ValidationError"),
                    Some(&format!(
                        "No active Lifecycle Action found with token {token}"
                    )),
                    Some(400),
                    None,
                )
            })
    }
}

impl AutoScalingApi for FakeCloud {
    async fn describe_instances(
        &self,
        instances: &[InstanceId],
    ) -> Result<Vec<GroupInstance>, AwsError> {
        let state = self.state.lock().unwrap();
        Ok(state
            .instances
            .iter()
            .filter(|i| instances.contains(&i.instance))
            .cloned()
            .collect())
    }

    async fn warm_pool_instances(&self, _group: &str) -> Result<Vec<GroupInstance>, AwsError> {
        Ok(Vec::new())
    }

    async fn groups(&self, names: &[String]) -> Result<Vec<Group>, AwsError> {
        let state = self.state.lock().unwrap();
        Ok(names
            .iter()
            .map(|name| Group {
                name: name.clone(),
                max_size: 10,
                availability_zones: vec!["us-east-1a".into()],
                instances: state
                    .instances
                    .iter()
                    .filter(|i| &i.group == name)
                    .cloned()
                    .collect(),
            })
            .collect())
    }

    async fn hooks(&self, _group: &str) -> Result<Vec<Hook>, AwsError> {
        Ok(Vec::new())
    }

    async fn hook_metadata(&self, _group: &str, _hook: &str) -> Result<Option<String>, AwsError> {
        Ok(None)
    }

    async fn complete_lifecycle_action(
        &self,
        action: &ActionRef,
        result: LifecycleResult,
    ) -> Result<(), AwsError> {
        let mut state = self.state.lock().unwrap();
        let token = action.token.clone().unwrap_or_default();
        state.active(action)?.ended = Some("completed");
        state.completions.push((token, result, Instant::now()));
        Ok(())
    }

    async fn record_heartbeat(&self, action: &ActionRef) -> Result<(), AwsError> {
        let mut state = self.state.lock().unwrap();
        let timeout = state.heartbeat_timeout;
        state.active(action)?.deadline = Instant::now() + timeout;
        state.heartbeats.push(Instant::now());
        Ok(())
    }
}

impl Ec2Api for FakeCloud {
    /// Every instance of the fake runs.
    async fn instances(&self, instances: &[InstanceId]) -> Result<Vec<Ec2Instance>, AwsError> {
        let state = self.state.lock().unwrap();
        Ok(state
            .instances
            .iter()
            .filter(|i| instances.contains(&i.instance))
            .map(|i| Ec2Instance::new(i.instance.clone(), RunState::Running))
            .collect())
    }

    /// The fake's instances are all its group's: none is selected by tag.
    async fn tagged_instances(&self) -> Result<Vec<Ec2Instance>, AwsError> {
        Ok(Vec::new())
    }

    async fn network_interfaces(&self, filter: &EniFilter) -> Result<Vec<Eni>, AwsError> {
        let state = self.state.lock().unwrap();
        Ok(state
            .enis
            .iter()
            .filter(|e| filter.matches(e))
            .take(filter.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn network_interface(&self, eni: &EniId) -> Result<Option<Eni>, AwsError> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .enis
            .iter()
            .find(|e| &e.id == eni)
            .cloned())
    }

    async fn attach_network_interface(
        &self,
        eni: &EniId,
        instance: &InstanceId,
        device_index: i32,
    ) -> Result<AttachmentId, AwsError> {
        let mut state = self.state.lock().unwrap();
        let found = state
            .enis
            .iter_mut()
            .find(|e| &e.id == eni)
            .expect("a known ENI");
        if !found.is_free() {
            return Err(AwsError::from_response(
                "ec2:AttachNetworkInterface",
                Some("InvalidNetworkInterface.InUse"),
                Some(&format!("Interface: [{eni}] in use.")),
                Some(400),
                None,
            ));
        }
        let attachment = AttachmentId::parse("eni-attach-0new").unwrap();
        found.status = Some("in-use".into());
        found.attachment = Some(Attachment {
            id: Some(attachment.clone()),
            instance: Some(instance.clone()),
            device_index: Some(device_index),
            status: AttachmentStatus::Attached,
        });
        Ok(attachment)
    }

    async fn detach_network_interface(&self, _attachment: &AttachmentId) -> Result<(), AwsError> {
        unimplemented!("the waiting tests do not detach")
    }

    async fn addresses(&self, filter: &AddressFilter) -> Result<Vec<Address>, AwsError> {
        let state = self.state.lock().unwrap();
        Ok(state
            .addresses
            .iter()
            .filter(|a| filter.matches(a))
            .cloned()
            .collect())
    }

    async fn associate_address(
        &self,
        allocation: &AllocationId,
        eni: &EniId,
    ) -> Result<AssociationId, AwsError> {
        let mut state = self.state.lock().unwrap();
        let instance = state
            .enis
            .iter()
            .find(|e| &e.id == eni)
            .and_then(|e| e.attachment_instance().cloned());
        let found = state
            .addresses
            .iter_mut()
            .find(|a| &a.allocation == allocation)
            .expect("a known address");
        if !found.is_free() {
            return Err(AwsError::from_response(
                "ec2:AssociateAddress",
                Some("Resource.AlreadyAssociated"),
                Some("resource is already associated"),
                Some(400),
                None,
            ));
        }
        let association = AssociationId::parse("eipassoc-0new").unwrap();
        found.association = Some(pinhook::model::AddressAssociation {
            id: Some(association.clone()),
            instance,
            network_interface: Some(eni.clone()),
            private_ip: None,
        });
        Ok(association)
    }

    async fn disassociate_address(&self, _association: &AssociationId) -> Result<(), AwsError> {
        unimplemented!("the waiting tests do not take over")
    }

    async fn create_tag(&self, resource: &str, key: &str, value: &str) -> Result<(), AwsError> {
        let mut state = self.state.lock().unwrap();
        if key == "pinhook:holder" {
            if let Some(eni) = state.enis.iter_mut().find(|e| e.id.as_str() == resource) {
                eni.holder = Some(value.into());
            }
            if let Some(address) = state
                .addresses
                .iter_mut()
                .find(|a| a.allocation.as_str() == resource)
            {
                address.holder = Some(value.into());
            }
        }
        Ok(())
    }

    async fn delete_tag(
        &self,
        _resource: &str,
        _key: &str,
        _value: Option<&str>,
    ) -> Result<(), AwsError> {
        Ok(())
    }
}
