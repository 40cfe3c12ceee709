"""What Kizen is sent for a calendar item: the payload's fields, and the look-ups they need.

Activity types, employees and contacts are looked up only for the actions that need them and
remembered in the state (a contact that Kizen does not have, too), so an unchanged cycle makes
no look-up at all. An item whose type, assignee or contacts Kizen cannot match fails alone
(:class:`~syncd.errors.ItemError`), with a reason that names what is missing.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from syncd.config import Config
from syncd.errors import ItemError
from syncd.kizen import ActivitiesClient, EntityLink, Notification, ObjectRef
from syncd.state.protocol import SyncState
from syncd.sync.actions import Desired

log = logging.getLogger(__name__)


@dataclass
class Payloads:
    """Builds Kizen payloads for one run, with its look-ups."""

    config: Config
    state: SyncState
    kizen: ActivitiesClient
    unknown_contacts: int = 0  # attendees left off this run: no Kizen contact has their email
    _types: dict[str, str] | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)  # the workers share the types and count

    def body(self, desired: Desired) -> dict[str, Any]:
        return {
            **self.assignee(desired),
            "notifications": notifications(desired),
            "associated_entities": self.contacts(desired),
        }

    def type_id(self, desired: Desired) -> str:
        """The id of the item's activity type, by id, name or API name (read once per run; the
        workers wait for that one read rather than see a half-filled table)."""
        with self._lock:
            if self._types is None:
                types: dict[str, str] = {}
                for t in self.kizen.activity_types():
                    types[str(t.id)] = str(t.id)  # a UUID's text is lower-case
                    types[t.name.lower()] = str(t.id)
                    types[t.api_name.lower()] = str(t.id)
                self._types = types
        wanted = desired.activity_type_id
        found = self._types.get(wanted.lower())
        if found is None:
            raise ItemError(desired.source.name, desired.id.uid, f"no activity type {wanted!r} in Kizen")
        return found

    def assignee(self, desired: Desired) -> dict[str, Any]:
        assignee = desired.fields.assignee
        if assignee.kind == "role":
            try:
                return {"role_id": UUID(assignee.value)}
            except ValueError:
                raise ItemError(
                    desired.source.name, desired.id.uid, f"give role {assignee.value!r} by its id"
                ) from None
        email = desired.source.owner if assignee.kind == "owner" else assignee.value
        return {"employee_id": UUID(self.employee(email, desired))}

    def employee(self, email: str, desired: Desired) -> str:
        known = self.state.lookup("employee", email.lower())
        if known is None:
            for person in self.kizen.team():
                self.state.remember("employee", person.email.lower(), str(person.id))
            known = self.state.lookup("employee", email.lower())
        if not known:
            raise ItemError(
                desired.source.name,
                desired.id.uid,
                f"{email} is not a Kizen employee the API user can see"
                " (does the key have the all-team-members permission?)",
            )
        return known

    def contacts(self, desired: Desired) -> list[EntityLink]:
        links: list[EntityLink] = []
        unknown: list[str] = []
        for email in desired.fields.contacts:
            known = self.state.lookup("contact", email.lower())
            if known is None:
                contact = self.kizen.find_contact(email, self.config.sync.contacts_object)
                known = str(contact.id) if contact else ""
                self.state.remember("contact", email.lower(), known)
            if known:
                links.append(
                    EntityLink(
                        custom_object=ObjectRef(name=self.config.sync.contacts_object), entity=ObjectRef(id=UUID(known))
                    )
                )
            else:
                unknown.append(email)
        if unknown:
            with self._lock:
                self.unknown_contacts += len(unknown)
            log.debug("%s %s: no Kizen contact for %s", desired.source.name, desired.id.uid, ", ".join(unknown))
        if unknown and desired.fields.unknown_contacts == "fail":
            raise ItemError(desired.source.name, desired.id.uid, f"unknown contacts: {', '.join(unknown)}")
        return links


def notifications(desired: Desired) -> list[Notification]:
    return [
        Notification(type=n.type, time_amount=n.time_amount, time_unit=n.time_unit)
        for n in desired.fields.notifications
    ]
