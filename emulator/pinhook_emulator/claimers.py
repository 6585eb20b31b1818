"""Concurrent claimers on demand: a claim race made to happen at the moment a test chooses."""

from __future__ import annotations

from typing import Any

from moto.ec2.utils import random_eip_association_id


class Claimers:
    """Before instance X's next AttachNetworkInterface (or AssociateAddress) lands, instance Y
    takes the very ENI (or address) X asked for, as a second claimer racing X would. Several
    winners for one victim fire one after the other, one per claim of the victim's."""

    def __init__(self) -> None:
        self.rules: dict[str, list[str]] = {}
        self.fired: list[dict[str, str]] = []

    def arm(self, victim: str, winners: list[str]) -> None:
        self.rules.setdefault(victim, []).extend(winners)

    def next_winner(self, victim: str) -> str | None:
        winners = self.rules.get(victim)
        if not winners:
            return None
        winner = winners.pop(0)
        if not winners:
            del self.rules[victim]
        return winner

    def before_attach(self, backend: Any, instance: Any, eni: Any) -> None:
        if eni.instance is not None:
            return
        winner_id = self.next_winner(instance.id)
        if winner_id is None:
            return
        winner = backend.get_instance(winner_id)
        index = 1
        while index in winner.nics:
            index += 1
        winner.attach_eni(eni, index)
        eni.pinhook_attachment_status = "attached"
        self.fired.append({"victim": instance.id, "winner": winner_id, "eni": eni.id})

    def before_associate(self, backend: Any, instance: Any, eip: Any) -> None:
        if eip.eni is not None:
            return
        winner_id = self.next_winner(instance.id)
        if winner_id is None:
            return
        winner = backend.get_instance(winner_id)
        primary = winner.nics[0]
        eip.eni = primary
        primary.public_ip = eip.public_ip
        eip.association_id = random_eip_association_id()
        self.fired.append({"victim": instance.id, "winner": winner_id, "allocation_id": eip.allocation_id})
