"""EC2 as strict as AWS where pinhook depends on it: attaching and detaching network interfaces,
associating Elastic IPs, instances booting, stopping and terminating (with their state-change
events), and tags looked up by resource id (moto scans every tag of every resource)."""

from __future__ import annotations

from typing import Any

from moto.autoscaling import models as asg_models
from moto.ec2.exceptions import EC2ClientError, InvalidNetworkAttachmentIdError
from moto.ec2.models import elastic_ip_addresses, elastic_network_interfaces
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.instances import Instance, InstanceBackend
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix, random_eip_association_id

from . import groups
from .state import current

# --------------------------------------------------------------------------------------------
# Network interfaces


def attachment_status(eni: Any) -> str:
    return getattr(eni, "pinhook_attachment_status", "attached")


_original_attachment_init = elastic_network_interfaces.Attachment.__init__


def attachment_init(self: Any, eni: Any) -> None:
    _original_attachment_init(self, eni)
    self.status = attachment_status(eni)


def strict_attach(self: Any, eni_id: str, instance_id: str, device_index: int) -> Any:
    st = current()
    eni = self.get_network_interface(eni_id)
    instance = self.get_instance(instance_id)
    device_index = int(device_index)
    if instance.state != "running" and instance.state != "stopped":
        raise EC2ClientError(
            "IncorrectInstanceState",
            f"The {instance.state} instance '{instance.id}' is not in a valid state for this operation.",
        )
    st.claimers.before_attach(self, instance, eni)
    if eni.instance is not None or eni.status != "available":
        raise EC2ClientError("InvalidNetworkInterface.InUse", f"Interface: [{eni.id}] in use.")
    if device_index in instance.nics:
        raise EC2ClientError(
            "InvalidParameterValue",
            f"Instance '{instance.id}' already has an interface attached at device index '{device_index}'.",
        )
    if eni.subnet.availability_zone != instance.availability_zone:
        raise EC2ClientError(
            "InvalidParameterCombination",
            "You may not attach a network interface to an instance if they are not in the same "
            "availability zone",
        )
    instance.attach_eni(eni, device_index)
    eni.pinhook_attachment_status = "attaching"
    attachment_id = eni.attachment_id

    def settle() -> None:
        if eni.attachment_id == attachment_id and attachment_status(eni) == "attaching":
            eni.pinhook_attachment_status = "attached"

    st.later(st.settings.attach_delay, f"attach settle {eni.id}", settle)
    return eni.attachment


def strict_detach(self: Any, attachment_id: str) -> None:
    st = current()
    eni = next((e for e in self.enis.values() if e.attachment_id == attachment_id), None)
    if eni is None or eni.instance is None:
        raise InvalidNetworkAttachmentIdError(attachment_id)
    if eni.device_index == 0:
        raise EC2ClientError(
            "OperationNotPermitted",
            "The network interface at device index 0 and networkCard index 0 cannot be detached.",
        )
    if attachment_status(eni) == "detaching":
        return
    eni.pinhook_attachment_status = "detaching"

    def settle() -> None:
        if eni.attachment_id == attachment_id and eni.instance is not None:
            eni.instance.detach_eni(eni)
            eni.pinhook_attachment_status = "attached"

    st.later(st.settings.detach_delay, f"detach settle {eni.id}", settle)


# --------------------------------------------------------------------------------------------
# Elastic IP addresses


def address_instance_id(self: Any) -> str | None:
    """AWS names the instance of the interface the address is on, however it was associated."""
    if self.instance:
        return self.instance.id
    if self.eni is not None and self.eni.instance is not None:
        return self.eni.instance.id
    return None


def address_network_interface_id(self: Any) -> str | None:
    return self.eni.id if self.eni else None


def address_of_interface(backend: Any, eni: Any) -> Any:
    return next((a for a in backend.addresses if a.eni is eni), None)


def strict_associate(
    self: Any,
    instance: Any = None,
    eni: Any = None,
    address: str | None = None,
    allocation_id: str | None = None,
    reassociate: Any = False,
) -> Any:
    """AssociateAddress as AWS does it in a VPC: with AllowReassociation=false an address that is
    associated with anything else is refused; the same association again is a no-op; an address
    already on the target interface is moved off it (it stays allocated)."""
    eip = self.address_by_ip([address])[0] if address else self.address_by_allocation([allocation_id])[0]
    reassociate = str(reassociate).lower() == "true"
    target = eni if eni is not None else (instance.nics.get(0) if instance else None)
    if target is None:
        raise EC2ClientError("InvalidParameterValue", "The instance has no network interface")
    if target.instance is not None and target.instance.state == "pending":
        # As AWS answers for an interface of a booting instance (terraform-provider-aws#19699).
        raise EC2ClientError(
            "IncorrectInstanceState",
            f"The pending-instance-creation instance to which '{target.id}' is attached is not "
            "in a valid state for this operation",
        )
    if target.instance is not None:
        current().claimers.before_associate(self, target.instance, eip)
    if eip.eni is target:
        return eip
    if eip.eni is not None or eip.instance is not None:
        if not reassociate:
            raise EC2ClientError(
                "Resource.AlreadyAssociated",
                f"resource {eip.allocation_id} is already associated with associate-id {eip.association_id}",
            )
        self.disassociate_address(association_id=eip.association_id)
    previous = address_of_interface(self, target)
    if previous is not None:
        self.disassociate_address(association_id=previous.association_id)
    eip.instance = None
    eip.eni = target
    target.public_ip = eip.public_ip
    eip.association_id = random_eip_association_id()
    return eip


# --------------------------------------------------------------------------------------------
# Instances: booting, stopping, starting, terminating


def boot_delay_of(instance: Any, group_name: str | None = None) -> float:
    group = getattr(instance, "autoscaling_group", None)
    name = group_name or (group.name if group is not None else None)
    return current().settings.boot_delay_of(name)


def boot(instance: Any, delay: float) -> None:
    """EC2 keeps a new (or started) instance `pending` while it boots, then it is `running`."""
    st = current()
    if delay <= 0:
        st.ec2_events.record(instance, "running")
        return
    instance._state.name, instance._state.code = "pending", 0

    def running() -> None:
        if instance._state.name == "pending":
            instance._state.name, instance._state.code = "running", 16
            st.ec2_events.record(instance, "running")

    st.later(delay, f"boot {instance.id}", running)


_original_run_instances = InstanceBackend.run_instances


def run_instances(
    self: Any, image_id: str, count: int, user_data: Any, security_group_names: list[str], **kwargs: Any
) -> Any:
    """New instances are `pending` (with their event), then `running` once booted: a group's
    instance after the group's boot delay, any other after the plain boot delay."""
    reservation = _original_run_instances(self, image_id, count, user_data, security_group_names, **kwargs)
    group_name = ((kwargs.get("tags") or {}).get("instance") or {}).get(asg_models.ASG_NAME_TAG)
    for instance in reservation.instances:
        current().ec2_events.record(instance, "pending")
        boot(instance, boot_delay_of(instance, group_name))
    return reservation


_original_start_instances = InstanceBackend.start_instances
_original_stop_instances = InstanceBackend.stop_instances


def start_instances(self: Any, instance_ids: list[str]) -> Any:
    for instance in self.get_multi_instances_by_id(instance_ids):
        if instance._state.name in ("terminated", "shutting-down"):
            raise EC2ClientError(
                "IncorrectInstanceState",
                f"The instance '{instance.id}' is not in a state from which it can be started.",
            )
    return _original_start_instances(self, instance_ids)


def stop_instances(self: Any, instance_ids: list[str]) -> Any:
    for instance in self.get_multi_instances_by_id(instance_ids):
        if instance._state.name in ("terminated", "shutting-down", "pending"):
            raise EC2ClientError(
                "IncorrectInstanceState",
                f"The instance '{instance.id}' is not in a state from which it can be stopped.",
            )
    return _original_stop_instances(self, instance_ids)


_original_start = Instance.start
_original_stop = Instance.stop
_original_terminate = Instance.terminate


def start_booting(self: Any) -> Any:
    """A stopped instance that starts is `pending` while it boots, then `running`."""
    previous = _original_start(self)
    if previous.name in ("stopped", "stopping"):
        current().ec2_events.record(self, "pending")
        boot(self, boot_delay_of(self))
    return previous


def stop_with_events(self: Any) -> Any:
    previous = _original_stop(self)
    if previous.name not in ("stopped", "stopping", "terminated"):
        events = current().ec2_events
        events.record(self, "stopping")
        events.record(self, "stopped")
    return previous


def terminate_releasing_enis(self: Any) -> Any:
    """AWS detaches the secondary interfaces of a terminated instance; moto leaves them in use.
    An instance of a group leaves the group at once (groups.leave_group_on_termination)."""
    st = current()
    previous = _original_terminate(self)
    if previous.name != "terminated":
        st.ec2_events.record(self, "shutting-down")
        st.ec2_events.record(self, "terminated")
    groups.leave_group_on_termination(self)
    st.asg_history.gone(self)
    for eni in list(self.nics.values()):
        if eni.device_index != 0 and not eni.delete_on_termination:
            self.detach_eni(eni)
            eni.pinhook_attachment_status = "attached"
        elif eni.delete_on_termination or eni.device_index == 0:
            # The primary interface goes with the instance, and so does its address association.
            address = address_of_interface(self.ec2_backend, eni)
            if address is not None:
                self.ec2_backend.disassociate_address(association_id=address.association_id)
    return previous


# --------------------------------------------------------------------------------------------
# Tags


def tags_of(self: Any) -> list[dict[str, str]]:
    """A resource's own tags, looked up by its id. moto scans every tag of every resource for
    each one (quadratic in a describe of many resources); the answer is the same."""
    if not self.id:
        return []
    tags = self.ec2_backend.tags.get(self.id)
    if not tags:
        return []
    resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
    return [
        {"resource_id": self.id, "key": key, "value": value, "resource_type": resource_type}
        for key, value in tags.items()
    ]


def install() -> None:
    TaggedEC2Resource.get_tags = tags_of
    elastic_network_interfaces.Attachment.__init__ = attachment_init
    elastic_network_interfaces.NetworkInterfaceBackend.attach_network_interface = strict_attach
    elastic_network_interfaces.NetworkInterfaceBackend.detach_network_interface = strict_detach
    elastic_ip_addresses.ElasticAddress.instance_id = property(address_instance_id)
    elastic_ip_addresses.ElasticAddress.network_interface_id = property(address_network_interface_id)
    elastic_ip_addresses.ElasticAddressBackend.associate_address = strict_associate
    InstanceBackend.run_instances = run_instances
    InstanceBackend.start_instances = start_instances
    InstanceBackend.stop_instances = stop_instances
    Instance.start = start_booting
    Instance.stop = stop_with_events
    Instance.terminate = terminate_releasing_enis
