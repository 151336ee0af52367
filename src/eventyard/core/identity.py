"""Identity resolution: which contact each activity of a batch belongs to.

The rules (Netcore: "If an anonymous profile is found, it is converted into a
known user. If no profile exists, a new user profile is created"):

* identifiers nobody owns create a contact (known unless it only has
  anonymous kinds such as ``anonid``);
* an anonymous contact that arrives with a known identifier becomes known,
  keeping its id;
* anonymous contacts met together with a known contact are merged into it;
* identifiers owned by two different *known* contacts never merge them: the
  activity goes to the owner of the account's first primary identifier kind
  (default ``identity``, ``email``, ``mobile``) and the conflict is recorded.

Planning is pure and works for the whole batch at once: storage looks up the
owners of every identifier in one query, this module decides, and storage
writes the decisions with a handful of set-based statements.

Provenance: every stored activity records the identifier that resolved it
(:func:`resolving_identifier`): the record's identifier of the account's
best-ranked primary kind, else its first identifier, the identifier a
conflict is settled by; or the contact id the record named
(:data:`CONTACT_ID_KIND`). Reverting a merge and splitting a contact move
activities by it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventyard.core.identifiers import ANONYMOUS_KINDS, Identifier, sort_key
from eventyard.core.model import ContactStatus

#: The provenance kind of an activity whose record named its contact by id
#: (CleverTap ``objectId``, Ortto ``person_id``). Not a valid identifier kind,
#: so it never collides with one.
CONTACT_ID_KIND = "@contact"


@dataclass(frozen=True, slots=True)
class ContactRef:
    """A contact as identity resolution sees it."""

    id: str
    status: ContactStatus


@dataclass(frozen=True, slots=True)
class IdentityEvent:
    """A row of the identity audit: a conversion, a merge or a conflict."""

    kind: str  # "converted" | "merged" | "conflict"
    contact_id: str
    identifiers: tuple[Identifier, ...]
    other_contact_ids: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResolutionPlan:
    """Everything a batch changes about contacts, ready to be written."""

    #: The contact of each input, in input order.
    contact_ids: list[str]
    #: Contacts to create, with their status.
    new_contacts: dict[str, ContactStatus]
    #: Identifiers nobody owned yet and the contact that now owns them.
    new_identifiers: dict[Identifier, str]
    #: Existing anonymous contacts that become known.
    conversions: set[str]
    #: Existing contacts merged into another: ``source id -> surviving id``.
    merges: dict[str, str]
    audit: list[IdentityEvent]
    #: The status the plan assumed for every existing contact it saw. Writing
    #: the plan is only right while these still hold (a contact converted to
    #: known meanwhile must not be merged as anonymous).
    assumed: dict[str, ContactStatus] = field(default_factory=dict)

    @property
    def touched_existing(self) -> set[str]:
        """Existing contacts whose rows this plan changes (to lock and re-check)."""
        touched = set(self.conversions) | set(self.merges) | set(self.merges.values())
        touched |= set(self.new_identifiers.values())
        # A contact this batch creates is not in the database yet: nothing to lock.
        return touched - set(self.new_contacts)


def primary_rank(primary_kinds: Sequence[str]) -> dict[str, int]:
    """Each primary kind's rank, for :func:`resolving_identifier` (build once per batch)."""
    return {kind: i for i, kind in enumerate(primary_kinds)}


def resolving_identifier(
    identifiers: Sequence[Identifier], rank: Mapping[str, int]
) -> Identifier | None:
    """The identifier an activity naming ``identifiers`` is attributed to.

    The one of the best-ranked primary kind (``rank``: :func:`primary_rank`),
    the first named among equals; ``None`` when there is none. The planner
    settles a conflict between known contacts by the same order, so the
    activity's contact owns this identifier whenever one of them does.
    """
    if not identifiers:
        return None
    best = identifiers[0]
    if len(identifiers) == 1:
        return best
    unranked = len(rank)
    best_rank = rank.get(best.kind, unranked)
    if best_rank == 0:
        return best  # the common case: the first named is of the first primary kind
    for ident in identifiers[1:]:
        ident_rank = rank.get(ident.kind, unranked)
        if ident_rank < best_rank:
            best, best_rank = ident, ident_rank
    return best


def is_known_kind(kind: str) -> bool:
    return kind not in ANONYMOUS_KINDS


def plan_resolution(
    batch: Sequence[Sequence[Identifier]],
    existing: Mapping[Identifier, ContactRef],
    primary_kinds: Sequence[str],
    new_id: Callable[[], str],
    pinned: Sequence[ContactRef | None] | None = None,
) -> ResolutionPlan:
    """Decide the contact of every input; ``existing`` maps owned identifiers to owners.

    Inputs are applied in order, so a later input sees the contacts and
    identifiers an earlier input of the same batch created. ``pinned[i]``,
    when given, is a contact input ``i`` names by id (CleverTap ``objectId``):
    it takes part like the owner of an identifier and, being named
    explicitly, wins a conflict between known contacts.
    """
    owner: dict[Identifier, str] = {ident: ref.id for ident, ref in existing.items()}
    status: dict[str, ContactStatus] = {ref.id: ref.status for ref in existing.values()}
    merged_into: dict[str, str] = {}
    new_contacts: set[str] = set()
    new_identifiers: set[Identifier] = set()
    conversions: set[str] = set()
    audit: list[IdentityEvent] = []
    per_input: list[str] = []
    rank = {kind: i for i, kind in enumerate(primary_kinds)}

    def live(contact_id: str) -> str:
        while contact_id in merged_into:
            contact_id = merged_into[contact_id]
        return contact_id

    for position, identifiers in enumerate(batch):
        idents = tuple(dict.fromkeys(identifiers))
        pin = pinned[position] if pinned is not None else None
        if pin is not None:
            status.setdefault(pin.id, pin.status)
        named = [live(pin.id)] if pin is not None else []
        owners = list(dict.fromkeys(named + [live(owner[i]) for i in idents if i in owner]))
        has_known_kind = any(is_known_kind(i.kind) for i in idents)
        if not owners:
            target = new_id()
            new_contacts.add(target)
            status[target] = "known" if has_known_kind else "anonymous"
        else:
            known = [c for c in owners if status[c] == "known"]
            if len(known) > 1:
                target = (
                    named[0]
                    if named and named[0] in known
                    else _settle_conflict(idents, owner, live, known, rank)
                )
                audit.append(
                    IdentityEvent(
                        kind="conflict",
                        contact_id=target,
                        identifiers=idents,
                        other_contact_ids=tuple(c for c in known if c != target),
                        details={"reason": "identifiers belong to different known contacts"},
                    )
                )
            elif known:
                target = known[0]
            else:
                target = min(owners)  # ids sort by creation time: keep the oldest
            for other in owners:
                if other != target and status[other] == "anonymous":
                    merged_into[other] = target
                    if other not in new_contacts:
                        audit.append(
                            IdentityEvent(
                                kind="merged",
                                contact_id=target,
                                identifiers=idents,
                                other_contact_ids=(other,),
                                details={"reason": "anonymous contact met a known contact"},
                            )
                        )
            if status[target] == "anonymous" and has_known_kind:
                status[target] = "known"
                if target not in new_contacts:
                    conversions.add(target)
                    audit.append(
                        IdentityEvent(
                            kind="converted",
                            contact_id=target,
                            identifiers=idents,
                            details={"reason": "anonymous contact arrived with a known identifier"},
                        )
                    )
        for ident in idents:
            if ident not in owner:
                owner[ident] = target
                new_identifiers.add(ident)
        per_input.append(target)

    assumed = {ref.id: ref.status for ref in existing.values()}
    assumed.update({ref.id: ref.status for ref in pinned or () if ref is not None})
    return ResolutionPlan(
        assumed=assumed,
        contact_ids=[live(c) for c in per_input],
        new_contacts={c: status[c] for c in sorted(new_contacts) if c not in merged_into},
        new_identifiers={i: live(owner[i]) for i in sorted(new_identifiers, key=sort_key)},
        conversions={c for c in conversions if c not in merged_into},
        merges={c: live(c) for c in merged_into if c not in new_contacts},
        audit=[
            IdentityEvent(
                kind=e.kind,
                contact_id=live(e.contact_id),
                identifiers=e.identifiers,
                other_contact_ids=e.other_contact_ids,
                details=e.details,
            )
            for e in audit
        ],
    )


def _settle_conflict(
    idents: Sequence[Identifier],
    owner: Mapping[Identifier, str],
    live: Callable[[str], str],
    known: Sequence[str],
    rank: Mapping[str, int],
) -> str:
    """Pick the owner of the highest-ranked identifier kind that a known contact holds."""
    candidates = [i for i in idents if i in owner and live(owner[i]) in known]
    best = min(candidates, key=lambda i: (rank.get(i.kind, len(rank)), idents.index(i)))
    return live(owner[best])
