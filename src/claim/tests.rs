//! The claim engine's decisions, white-box: a member kind whose claims are scripted, over fake
//! Auto Scaling and EC2 adapters, on tokio's paused clock.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::*;
use crate::aws::{AddressFilter, EniFilter};
use crate::config::Settings;
use crate::decide::fixtures::{ec2, eni, id, member};
use crate::model::{
    ActionRef, Address, AllocationId, AssociationId, AttachmentId, Ec2Instance, EniId, Group,
    GroupInstance, Hook, LifecycleResult, Location, Transition,
};

/// What a claim of a member answers, in order; a member with nothing scripted is won.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Won,
    Taken,
    SlotTaken,
    Booting,
}

#[derive(Debug, Default)]
struct Script {
    /// Each read of the pool, in order; the last one repeats.
    reads: VecDeque<Vec<Eni>>,
    answers: Vec<(String, Answer)>,
    claims: Vec<String>,
    reads_made: usize,
    /// What the instance's slot holds, once AWS refused it as taken.
    slot: Option<Eni>,
}

/// ENIs of pool "lic", with scripted reads and claims; the test keeps a handle on the script.
struct Scripted<'a> {
    pool: PoolName,
    instance: &'a InstanceId,
    script: Arc<Mutex<Script>>,
}

impl<'a> Scripted<'a> {
    fn new(instance: &'a InstanceId, script: &Arc<Mutex<Script>>) -> Self {
        Self {
            pool: PoolName::parse("lic").unwrap(),
            instance,
            script: script.clone(),
        }
    }
}

fn script(reads: Vec<Vec<Eni>>, answers: &[(&str, Answer)]) -> Arc<Mutex<Script>> {
    Arc::new(Mutex::new(Script {
        reads: reads.into(),
        answers: answers.iter().map(|(m, a)| ((*m).to_owned(), *a)).collect(),
        ..Script::default()
    }))
}

fn refused(kind: ErrorKind) -> AwsError {
    AwsError {
        operation: "ec2:AttachNetworkInterface",
        kind,
        code: None,
        message: None,
        source: None,
    }
}

impl MemberKind for Scripted<'_> {
    type Member = Eni;
    const ZONAL: bool = true;
    const INSTANCE_TAG: &'static str = "pinhook:eni";
    const SLOT_UNGUARDED: bool = false;
    const CAN_TAKE_OVER: bool = true;

    fn pool(&self) -> &PoolName {
        &self.pool
    }

    fn instance(&self) -> &InstanceId {
        self.instance
    }

    async fn claim_reads(&self, _zone: Option<&str>) -> Result<Vec<Eni>, AwsError> {
        self.all(None).await
    }

    async fn held(&self) -> Result<Vec<Eni>, AwsError> {
        self.all(None).await
    }

    async fn all(&self, _zone: Option<&str>) -> Result<Vec<Eni>, AwsError> {
        let mut script = self.script.lock().unwrap();
        script.reads_made += 1;
        let read = match script.reads.len() {
            0 | 1 => script.reads.front().cloned().unwrap_or_default(),
            _ => script.reads.pop_front().unwrap_or_default(),
        };
        Ok(read)
    }

    async fn claim(&self, member: &Eni) -> Result<(), AwsError> {
        let mut script = self.script.lock().unwrap();
        script.claims.push(member.id.to_string());
        let at = script
            .answers
            .iter()
            .position(|(m, _)| m == member.id.as_str());
        let answer = at.map_or(Answer::Won, |at| script.answers.remove(at).1);
        match answer {
            Answer::Won => Ok(()),
            Answer::Taken => Err(refused(ErrorKind::InUse)),
            Answer::SlotTaken => Err(refused(ErrorKind::DeviceIndexTaken)),
            Answer::Booting => Err(refused(ErrorKind::InstanceNotReady)),
        }
    }

    fn refusal(&self, err: &AwsError) -> Refusal {
        match err.kind {
            ErrorKind::InUse => Refusal::Taken,
            ErrorKind::DeviceIndexTaken => Refusal::SlotTaken,
            ErrorKind::InstanceNotReady => Refusal::InstanceNotReady,
            _ => Refusal::Failed,
        }
    }

    async fn slot(&self) -> Result<Slot<Eni>, AwsError> {
        Ok(match self.script.lock().unwrap().slot.clone() {
            Some(eni) => Slot::Pool(eni),
            None => Slot::Empty,
        })
    }

    fn occupied(&self, occupant: &str) -> String {
        format!("the slot is taken by {occupant}")
    }

    fn slot_interfaces(&self) -> &[Eni] {
        &[]
    }

    async fn settle(
        &self,
        member: &Eni,
        _until: Instant,
    ) -> Result<Result<Member, String>, AwsError> {
        Ok(Ok(Member {
            id: member.id.to_string(),
            ..Member::default()
        }))
    }

    async fn roll_back(&self, _member: &Eni) {}

    async fn release(
        &self,
        _member: &Eni,
        _holder: &InstanceId,
        _until: Instant,
    ) -> Result<(), NotReleased> {
        Ok(())
    }
}

/// Auto Scaling and EC2 as far as the engine asks them: the holders' states, the instance's
/// boot, heartbeats.
#[derive(Debug, Default)]
struct Aws {
    group_instances: Vec<GroupInstance>,
    /// EC2's answers for the instance, in order; the last one repeats.
    run_states: Mutex<VecDeque<Vec<Ec2Instance>>>,
    heartbeats: Mutex<u32>,
}

impl AutoScalingApi for Aws {
    async fn describe_instances(
        &self,
        instances: &[InstanceId],
    ) -> Result<Vec<GroupInstance>, AwsError> {
        Ok(self
            .group_instances
            .iter()
            .filter(|i| instances.contains(&i.instance))
            .cloned()
            .collect())
    }

    async fn warm_pool_instances(&self, _group: &str) -> Result<Vec<GroupInstance>, AwsError> {
        Ok(Vec::new())
    }

    async fn groups(&self, _names: &[String]) -> Result<Vec<Group>, AwsError> {
        Ok(Vec::new())
    }

    async fn hooks(&self, _group: &str) -> Result<Vec<Hook>, AwsError> {
        Ok(Vec::new())
    }

    async fn hook_metadata(&self, _group: &str, _hook: &str) -> Result<Option<String>, AwsError> {
        Ok(None)
    }

    async fn complete_lifecycle_action(
        &self,
        _action: &ActionRef,
        _result: LifecycleResult,
    ) -> Result<(), AwsError> {
        Ok(())
    }

    async fn record_heartbeat(&self, _action: &ActionRef) -> Result<(), AwsError> {
        *self.heartbeats.lock().unwrap() += 1;
        Ok(())
    }
}

impl Ec2Api for Aws {
    async fn instances(&self, _instances: &[InstanceId]) -> Result<Vec<Ec2Instance>, AwsError> {
        let mut states = self.run_states.lock().unwrap();
        Ok(match states.len() {
            0 | 1 => states.front().cloned().unwrap_or_default(),
            _ => states.pop_front().unwrap_or_default(),
        })
    }

    async fn tagged_instances(&self) -> Result<Vec<Ec2Instance>, AwsError> {
        Ok(Vec::new())
    }

    async fn network_interfaces(&self, _filter: &EniFilter) -> Result<Vec<Eni>, AwsError> {
        Ok(Vec::new())
    }

    async fn network_interface(&self, _eni: &EniId) -> Result<Option<Eni>, AwsError> {
        Ok(None)
    }

    async fn attach_network_interface(
        &self,
        _eni: &EniId,
        _instance: &InstanceId,
        _device_index: i32,
    ) -> Result<AttachmentId, AwsError> {
        Err(refused(ErrorKind::Other))
    }

    async fn detach_network_interface(&self, _attachment: &AttachmentId) -> Result<(), AwsError> {
        Ok(())
    }

    async fn addresses(&self, _filter: &AddressFilter) -> Result<Vec<Address>, AwsError> {
        Ok(Vec::new())
    }

    async fn associate_address(
        &self,
        _allocation: &AllocationId,
        _eni: &EniId,
    ) -> Result<AssociationId, AwsError> {
        Err(refused(ErrorKind::Other))
    }

    async fn disassociate_address(&self, _association: &AssociationId) -> Result<(), AwsError> {
        Ok(())
    }

    async fn create_tag(&self, _resource: &str, _key: &str, _value: &str) -> Result<(), AwsError> {
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

fn settings() -> Settings {
    Settings {
        poll_interval: Duration::from_millis(100),
        consistency_window: Duration::from_millis(500),
        heartbeat_interval: Duration::from_secs(5),
        ..Settings::default()
    }
}

fn launch(instance: &InstanceId) -> LifecycleAction {
    LifecycleAction {
        transition: Transition::Launch,
        group: "g".into(),
        hook: "h".into(),
        instance: instance.clone(),
        token: "t".into(),
        metadata: None,
        origin: Some(Location::Ec2),
        destination: Some(Location::AutoScalingGroup),
    }
}

/// Runs the engine for the instance: for a launch (with its lifecycle action), or for the sweep.
async fn claim(
    aws: &Aws,
    instance: &InstanceId,
    script: &Arc<Mutex<Script>>,
    action: Option<&LifecycleAction>,
    takeover: Takeover,
) -> ClaimReport {
    let settings = settings();
    let ctx = Ctx {
        asg: aws,
        ec2: aws,
        settings: &settings,
    };
    let kind = Scripted::new(instance, script);
    let first = first_reads(&kind, None).await.unwrap();
    let request = Request {
        subject: Subject {
            group: Some("g"),
            instance,
            action,
        },
        zone: "az-a",
        takeover,
        until: Instant::now() + Duration::from_secs(60),
    };
    pin(ctx, request, kind, first).await.unwrap()
}

/// The pool's free members in the order the instance tries them.
fn order(members: &[Eni], instance: &InstanceId) -> Vec<String> {
    decide::candidates(members, "lic", "az-a", instance)
        .iter()
        .map(|e| e.id.to_string())
        .collect()
}

fn pinned(report: &ClaimReport) -> (&str, Option<&str>) {
    match &report.claimed {
        Claimed::Pinned { member, note } => (member.id.as_str(), note.as_deref()),
        other => panic!("not pinned: {other:?}"),
    }
}

fn not_pinned(report: &ClaimReport) -> &str {
    match &report.claimed {
        Claimed::NotPinned(reason) => reason,
        other => panic!("pinned after all: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_member_taken_meanwhile_moves_the_claim_to_the_next_candidate() {
    let instance = id("i-new");
    let pool: Vec<Eni> = (1..=3).map(|n| eni(n, "az-a", None)).collect();
    let order = order(&pool, &instance);
    let script = script(vec![pool], &[(&order[0], Answer::Taken)]);

    let report = claim(&Aws::default(), &instance, &script, None, Takeover::Off).await;

    assert_eq!(pinned(&report), (order[1].as_str(), None));
    assert_eq!(script.lock().unwrap().claims, order[..2]);
    assert_eq!(report.tally.conflicts, 1);
}

#[tokio::test(start_paused = true)]
async fn a_pass_claims_at_most_three_candidates_then_reads_the_pool_again() {
    let instance = id("i-new");
    let pool: Vec<Eni> = (1..=5).map(|n| eni(n, "az-a", None)).collect();
    let order = order(&pool, &instance);
    // the three the instance tried first are held by others when it reads the pool again
    let later: Vec<Eni> = pool
        .iter()
        .map(|e| match order[..3].contains(&e.id.to_string()) {
            true => eni(
                e.id.as_str()[4..].parse().unwrap(),
                "az-a",
                Some(("i-other", 1)),
            ),
            false => e.clone(),
        })
        .collect();
    let taken: Vec<(&str, Answer)> = order[..3]
        .iter()
        .map(|m| (m.as_str(), Answer::Taken))
        .collect();
    let script = script(vec![pool, later], &taken);

    let report = claim(&Aws::default(), &instance, &script, None, Takeover::Off).await;

    assert_eq!(pinned(&report).0, order[3]);
    let script = script.lock().unwrap();
    assert_eq!(script.claims, order[..4]);
    assert_eq!(script.reads_made, 2, "one read per pass");
    assert_eq!(report.tally.conflicts, 3);
}

#[tokio::test(start_paused = true)]
async fn an_instance_that_already_holds_a_member_settles_on_it_without_a_claim() {
    let instance = id("i-new");
    let pool = vec![eni(1, "az-a", Some(("i-new", 1))), eni(2, "az-a", None)];
    let script = script(vec![pool], &[]);

    let report = claim(&Aws::default(), &instance, &script, None, Takeover::Off).await;

    assert_eq!(pinned(&report), ("eni-0001", Some("already pinned")));
    assert!(script.lock().unwrap().claims.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_booting_instance_is_waited_for_on_the_clock_then_claimed() {
    let instance = id("i-new");
    let script = script(
        vec![vec![eni(1, "az-a", None)]],
        &[("eni-0001", Answer::Booting)],
    );
    let aws = Aws {
        run_states: Mutex::new(
            vec![
                vec![ec2("i-new", "pending")],
                vec![ec2("i-new", "pending")],
                vec![ec2("i-new", "running")],
            ]
            .into(),
        ),
        ..Aws::default()
    };
    let action = launch(&instance);

    let report = claim(&aws, &instance, &script, Some(&action), Takeover::Off).await;

    assert_eq!(pinned(&report).0, "eni-0001");
    assert_eq!(script.lock().unwrap().claims, ["eni-0001", "eni-0001"]);
    assert_eq!(
        report.tally.booted,
        Duration::from_millis(300),
        "three polls of 100 ms"
    );
}

#[tokio::test(start_paused = true)]
async fn a_pool_held_by_leaving_instances_is_waited_for_with_heartbeats_by_a_launch_only() {
    let instance = id("i-new");
    let held = vec![eni(1, "az-a", Some(("i-old", 1)))];
    let aws = Aws {
        group_instances: vec![member("i-old", "g", "Terminating:Wait", true)],
        ..Aws::default()
    };
    // a launch waits, heartbeating, until the holder's release shows in a read of the pool
    let action = launch(&instance);
    let released = vec![eni(1, "az-a", None)];
    let launch_script = script(
        vec![held.clone(), held.clone(), held.clone(), released],
        &[],
    );
    let report = claim(
        &aws,
        &instance,
        &launch_script,
        Some(&action),
        Takeover::Off,
    )
    .await;
    assert_eq!(pinned(&report).0, "eni-0001");
    assert_eq!(
        *aws.heartbeats.lock().unwrap(),
        1,
        "one heartbeat at once, none due since"
    );

    // the sweep has no action to keep alive: it gives up, and comes back at its next run
    let sweep_script = script(vec![held], &[]);
    let report = claim(&aws, &instance, &sweep_script, None, Takeover::Off).await;
    assert!(
        not_pinned(&report).contains("held by leaving instances"),
        "{report:?}"
    );
    assert!(report.tally.exhausted);
    assert_eq!(*aws.heartbeats.lock().unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_healthy_holder_is_never_taken_over_even_where_takeover_is_allowed() {
    let instance = id("i-new");
    let held = vec![eni(1, "az-a", Some(("i-old", 1)))];
    let aws = Aws {
        group_instances: vec![member("i-old", "g", "InService", true)],
        ..Aws::default()
    };
    let script = script(vec![held], &[]);
    let action = launch(&instance);

    let report = claim(&aws, &instance, &script, Some(&action), Takeover::Allowed).await;

    assert!(
        not_pinned(&report).contains("no holder may be taken over"),
        "{report:?}"
    );
    assert!(report.tally.exhausted && !report.tally.taken_over);
    assert!(script.lock().unwrap().claims.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_slot_a_concurrent_delivery_filled_is_settled_on() {
    let instance = id("i-new");
    let script = script(
        vec![vec![eni(1, "az-a", None)]],
        &[("eni-0001", Answer::SlotTaken)],
    );
    script.lock().unwrap().slot = Some(eni(2, "az-a", Some(("i-new", 1))));

    let report = claim(&Aws::default(), &instance, &script, None, Takeover::Off).await;

    assert_eq!(pinned(&report), ("eni-0002", Some(CONCURRENT_WIN)));
}
