"""Identity resolution planning: which contact each activity of a batch belongs to.

Netcore: "When the Activity API receives an event for a user who does not yet
exist in your CE account, the system checks for a matching anonymous profile.
If an anonymous profile is found, it is converted into a known user. If no
profile exists, a new user profile is created automatically before the
activity is recorded."

Existing contact ids here start with ``e-`` and new ones with ``n-`` so that,
like real ids, contacts made earlier sort first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from eventyard.core.identifiers import DEFAULT_PRIMARY_KINDS, Identifier
from eventyard.core.identity import ContactRef, ResolutionPlan, plan_resolution
from eventyard.core.model import ContactStatus

Batch = Sequence[Sequence[Identifier]]
Owners = dict[Identifier, ContactRef]


def identity(value: str) -> Identifier:
    return Identifier("identity", value)


def email(value: str) -> Identifier:
    return Identifier("email", value)


def mobile(value: str) -> Identifier:
    return Identifier("mobile", value)


def anonid(value: str) -> Identifier:
    return Identifier("anonid", value)


class NewIds:
    """A deterministic stand-in for ``core.ids.new_id``: ``n-001``, ``n-002``, ..."""

    def __init__(self, prefix: str = "n") -> None:
        self.prefix = prefix
        self.made: list[str] = []

    def __call__(self) -> str:
        self.made.append(f"{self.prefix}-{len(self.made) + 1:03d}")
        return self.made[-1]


def contacts(**by_id: tuple[ContactStatus, Sequence[Identifier]]) -> Owners:
    """Existing contacts as ``find_owners`` returns them: identifier -> owner."""
    return {
        ident: ContactRef(f"e-{name}", status)
        for name, (status, idents) in by_id.items()
        for ident in idents
    }


def plan(
    batch: Batch,
    existing: Mapping[Identifier, ContactRef] | None = None,
    primary_kinds: Sequence[str] = DEFAULT_PRIMARY_KINDS,
    new_id: NewIds | None = None,
) -> ResolutionPlan:
    return plan_resolution(batch, existing or {}, primary_kinds, new_id or NewIds())


def audit_kinds(result: ResolutionPlan) -> list[str]:
    return [event.kind for event in result.audit]


def apply_plan(existing: Mapping[Identifier, ContactRef], result: ResolutionPlan) -> Owners:
    """The ownership storage holds after writing ``result``: a fake of ``apply_resolution``."""
    status: dict[str, ContactStatus] = {ref.id: ref.status for ref in existing.values()}
    for contact_id in result.conversions:
        assert status[contact_id] == "anonymous", "only anonymous contacts are converted"
        status[contact_id] = "known"
    for contact_id, contact_status in result.new_contacts.items():
        assert contact_id not in status, "a new contact must not reuse an existing id"
        status[contact_id] = contact_status
    owners: Owners = {}
    for ident, ref in existing.items():
        survivor = result.merges.get(ref.id, ref.id)
        owners[ident] = ContactRef(survivor, status[survivor])
    for ident, contact_id in result.new_identifiers.items():
        assert ident not in existing, "an owned identifier is never given away"
        owners[ident] = ContactRef(contact_id, status[contact_id])
    return owners


class TestUnknownIdentifiers:
    """ "If no profile exists, a new user profile is created automatically"."""

    def test_one_event_creates_one_known_contact_owning_its_identifiers(self) -> None:
        result = plan([[identity("u1"), email("jane@example.com")]])
        assert result.contact_ids == ["n-001"]
        assert result.new_contacts == {"n-001": "known"}
        assert result.new_identifiers == {
            identity("u1"): "n-001",
            email("jane@example.com"): "n-001",
        }
        assert result.conversions == set()
        assert result.merges == {}
        assert result.audit == []
        assert result.touched_existing == set()

    def test_events_sharing_an_identifier_land_on_one_new_contact(self) -> None:
        result = plan([[email("a@x.io")], [email("a@x.io")], [email("a@x.io"), mobile("555")]])
        assert result.contact_ids == ["n-001"] * 3
        assert result.new_contacts == {"n-001": "known"}
        assert result.new_identifiers == {email("a@x.io"): "n-001", mobile("555"): "n-001"}

    def test_a_chain_of_shared_identifiers_makes_one_contact(self) -> None:
        """e1 {email a}, e2 {email a, mobile m}, e3 {mobile m, identity x}: one customer."""
        batch = [
            [email("a@x.io")],
            [email("a@x.io"), mobile("5551234")],
            [mobile("5551234"), identity("x")],
        ]
        result = plan(batch)
        assert result.contact_ids == ["n-001", "n-001", "n-001"]
        assert result.new_contacts == {"n-001": "known"}
        assert result.new_identifiers == {
            email("a@x.io"): "n-001",
            mobile("5551234"): "n-001",
            identity("x"): "n-001",
        }
        assert result.audit == []

    def test_unrelated_events_make_separate_contacts(self) -> None:
        result = plan([[email("a@x.io")], [email("b@x.io")], [email("a@x.io")]])
        assert result.contact_ids == ["n-001", "n-002", "n-001"]
        assert set(result.new_contacts) == {"n-001", "n-002"}

    def test_anonid_only_creates_an_anonymous_contact(self) -> None:
        """anonid is "used when the user is not logged in (for example, cookie ID, device ID)"."""
        result = plan([[anonid("cookie-1")], [anonid("cookie-2")]])
        assert result.new_contacts == {"n-001": "anonymous", "n-002": "anonymous"}

    def test_anonid_with_a_known_identifier_creates_a_known_contact(self) -> None:
        result = plan([[anonid("cookie-1"), mobile("5551234")]])
        assert result.new_contacts == {"n-001": "known"}

    def test_an_anonymous_contact_made_earlier_in_the_batch_is_created_known(self) -> None:
        """A contact that never existed is not "converted"; it is simply created known."""
        result = plan([[anonid("cookie-1")], [anonid("cookie-1"), email("a@x.io")]])
        assert result.contact_ids == ["n-001", "n-001"]
        assert result.new_contacts == {"n-001": "known"}
        assert result.conversions == set()
        assert result.audit == []

    def test_repeated_identifiers_in_one_event_count_once(self) -> None:
        result = plan([[email("a@x.io"), email("a@x.io")]])
        assert result.new_identifiers == {email("a@x.io"): "n-001"}
        assert result.contact_ids == ["n-001"]

    def test_known_identifiers_reuse_the_existing_contact(self) -> None:
        existing = contacts(jane=("known", [email("jane@x.io")]))
        result = plan([[email("jane@x.io")]], existing)
        assert result.contact_ids == ["e-jane"]
        assert result.new_contacts == {}
        assert result.new_identifiers == {}
        assert result.touched_existing == set()

    def test_a_new_identifier_is_added_to_the_existing_contact(self) -> None:
        existing = contacts(jane=("known", [email("jane@x.io")]))
        result = plan([[email("jane@x.io"), mobile("+15551234")]], existing)
        assert result.contact_ids == ["e-jane"]
        assert result.new_identifiers == {mobile("+15551234"): "e-jane"}
        assert result.touched_existing == {"e-jane"}


class TestAnonymousConversion:
    """ "If an anonymous profile is found, it is converted into a known user.\""""

    def test_an_anonymous_contact_with_a_known_identifier_is_converted(self) -> None:
        existing = contacts(visitor=("anonymous", [anonid("cookie-1")]))
        result = plan([[anonid("cookie-1"), email("jane@x.io")]], existing)
        assert result.contact_ids == ["e-visitor"]
        assert result.conversions == {"e-visitor"}
        assert result.new_contacts == {}
        assert result.new_identifiers == {email("jane@x.io"): "e-visitor"}
        assert result.merges == {}
        [event] = result.audit
        assert event.kind == "converted"
        assert event.contact_id == "e-visitor"
        assert event.identifiers == (anonid("cookie-1"), email("jane@x.io"))
        assert result.touched_existing == {"e-visitor"}

    def test_an_anonymous_contact_seen_again_anonymously_stays_anonymous(self) -> None:
        existing = contacts(visitor=("anonymous", [anonid("cookie-1")]))
        result = plan([[anonid("cookie-1")], [anonid("cookie-1")]], existing)
        assert result.contact_ids == ["e-visitor", "e-visitor"]
        assert result.conversions == set()
        assert result.audit == []
        assert result.touched_existing == set()

    def test_a_conversion_is_recorded_once_per_batch(self) -> None:
        existing = contacts(visitor=("anonymous", [anonid("cookie-1")]))
        batch = [
            [anonid("cookie-1"), email("jane@x.io")],
            [anonid("cookie-1"), mobile("5551234")],
        ]
        result = plan(batch, existing)
        assert result.contact_ids == ["e-visitor", "e-visitor"]
        assert audit_kinds(result) == ["converted"]
        assert result.new_identifiers == {
            email("jane@x.io"): "e-visitor",
            mobile("5551234"): "e-visitor",
        }

    def test_two_anonymous_contacts_met_together_keep_the_older(self) -> None:
        existing = contacts(
            first=("anonymous", [anonid("cookie-1")]),
            second=("anonymous", [anonid("device-9")]),
        )
        result = plan([[anonid("device-9"), anonid("cookie-1")]], existing)
        assert result.contact_ids == ["e-first"]
        assert result.merges == {"e-second": "e-first"}
        assert result.conversions == set()
        assert audit_kinds(result) == ["merged"]


class TestConflicts:
    """DESIGN.md: "two different known contacts -> follow the account's merge policy"; ours
    never merges known contacts: "the activity goes to the owner of the account's first
    primary identifier kind ... and the conflict is recorded"."""

    EXISTING = contacts(
        by_identity=("known", [identity("u1")]),
        by_email=("known", [email("jane@x.io")]),
        by_mobile=("known", [mobile("5551234")]),
    )

    def test_default_order_prefers_identity_then_email_then_mobile(self) -> None:
        assert DEFAULT_PRIMARY_KINDS == ("identity", "email", "mobile")
        batch = [
            [email("jane@x.io"), identity("u1")],
            [mobile("5551234"), email("jane@x.io")],
            [mobile("5551234"), identity("u1")],
        ]
        result = plan(batch, self.EXISTING)
        assert result.contact_ids == ["e-by_identity", "e-by_email", "e-by_identity"]

    def test_the_conflict_is_recorded_naming_the_other_contact(self) -> None:
        result = plan([[email("jane@x.io"), identity("u1")]], self.EXISTING)
        [event] = result.audit
        assert event.kind == "conflict"
        assert event.contact_id == "e-by_identity"
        assert event.other_contact_ids == ("e-by_email",)
        assert event.identifiers == (email("jane@x.io"), identity("u1"))

    def test_known_contacts_are_never_merged(self) -> None:
        result = plan([[identity("u1"), email("jane@x.io"), mobile("5551234")]], self.EXISTING)
        assert result.merges == {}
        assert result.new_contacts == {}
        assert result.new_identifiers == {}
        assert result.touched_existing == set()
        [event] = result.audit
        assert set(event.other_contact_ids) == {"e-by_email", "e-by_mobile"}

    def test_a_custom_order_chooses_the_email_owner(self) -> None:
        """Settings: "which identifier is the primary key"."""
        result = plan(
            [[identity("u1"), email("jane@x.io")]],
            self.EXISTING,
            primary_kinds=("email", "identity"),
        )
        assert result.contact_ids == ["e-by_email"]
        [event] = result.audit
        assert (event.kind, event.contact_id) == ("conflict", "e-by_email")
        assert event.other_contact_ids == ("e-by_identity",)

    def test_kinds_missing_from_the_order_rank_last(self) -> None:
        existing = {
            **self.EXISTING,
            Identifier("custID", "C-9"): ContactRef("e-by_custid", "known"),
        }
        result = plan([[Identifier("custID", "C-9"), mobile("5551234")]], existing)
        assert result.contact_ids == ["e-by_mobile"]
        result = plan(
            [[mobile("5551234"), identity("u1")]], self.EXISTING, primary_kinds=("email",)
        )
        assert result.contact_ids == ["e-by_mobile"], "unranked kinds: first in the event wins"

    def test_new_identifiers_go_to_the_chosen_contact_and_owned_ones_stay(self) -> None:
        batch = [[identity("u1"), email("jane@x.io"), mobile("999000"), anonid("cookie-7")]]
        result = plan(batch, self.EXISTING)
        assert result.contact_ids == ["e-by_identity"]
        assert result.new_identifiers == {
            mobile("999000"): "e-by_identity",
            anonid("cookie-7"): "e-by_identity",
        }
        assert email("jane@x.io") not in result.new_identifiers
        assert apply_plan(self.EXISTING, result)[email("jane@x.io")].id == "e-by_email"
        assert result.touched_existing == {"e-by_identity"}

    def test_with_a_custom_order_new_identifiers_follow_the_chosen_contact(self) -> None:
        batch = [[identity("u1"), email("jane@x.io"), mobile("999000")]]
        result = plan(batch, self.EXISTING, primary_kinds=("email", "identity"))
        assert result.new_identifiers == {mobile("999000"): "e-by_email"}
        assert apply_plan(self.EXISTING, result)[identity("u1")].id == "e-by_identity"

    def test_contacts_created_in_the_batch_conflict_like_existing_ones(self) -> None:
        """ "Inputs are applied in order": e3 meets two contacts e1 and e2 made known."""
        result = plan(
            [[email("a@x.io")], [mobile("5551234")], [mobile("5551234"), email("a@x.io")]]
        )
        assert result.contact_ids == ["n-001", "n-002", "n-001"]
        assert set(result.new_contacts) == {"n-001", "n-002"}
        [event] = result.audit
        assert (event.kind, event.contact_id, event.other_contact_ids) == (
            "conflict",
            "n-001",
            ("n-002",),
        )


class TestMerges:
    """ "anonymous contacts met together with a known contact are merged into it"."""

    def test_an_anonymous_contact_met_with_a_known_one_is_merged_into_it(self) -> None:
        existing = contacts(
            visitor=("anonymous", [anonid("cookie-1")]),
            jane=("known", [email("jane@x.io")]),
        )
        result = plan([[anonid("cookie-1"), email("jane@x.io")]], existing)
        assert result.contact_ids == ["e-jane"]
        assert result.merges == {"e-visitor": "e-jane"}
        assert result.conversions == set(), "merged, not converted"
        [event] = result.audit
        assert event.kind == "merged"
        assert event.contact_id == "e-jane"
        assert event.other_contact_ids == ("e-visitor",)
        assert result.touched_existing == {"e-visitor", "e-jane"}
        assert apply_plan(existing, result)[anonid("cookie-1")].id == "e-jane"

    def test_a_contact_made_earlier_in_the_batch_and_merged_is_never_inserted(self) -> None:
        existing = contacts(jane=("known", [email("jane@x.io")]))
        batch = [
            [anonid("cookie-9")],
            [anonid("cookie-9"), email("jane@x.io")],
            [anonid("cookie-9")],
        ]
        result = plan(batch, existing)
        assert result.contact_ids == ["e-jane", "e-jane", "e-jane"]
        assert result.new_contacts == {}
        assert result.merges == {}
        assert result.new_identifiers == {anonid("cookie-9"): "e-jane"}
        mentioned = {e.contact_id for e in result.audit}
        mentioned |= {c for e in result.audit for c in e.other_contact_ids}
        assert "n-001" not in mentioned
        assert result.touched_existing == {"e-jane"}

    def test_a_conflict_still_absorbs_the_anonymous_contact(self) -> None:
        existing = contacts(
            a=("known", [identity("u1")]),
            b=("known", [email("jane@x.io")]),
            visitor=("anonymous", [anonid("cookie-1")]),
        )
        result = plan([[anonid("cookie-1"), email("jane@x.io"), identity("u1")]], existing)
        assert result.contact_ids == ["e-a"]
        assert result.merges == {"e-visitor": "e-a"}
        assert sorted(audit_kinds(result)) == ["conflict", "merged"]
        conflict = next(e for e in result.audit if e.kind == "conflict")
        assert conflict.other_contact_ids == ("e-b",)

    def test_events_of_a_merged_contact_point_at_the_survivor(self) -> None:
        existing = contacts(
            visitor=("anonymous", [anonid("cookie-1")]),
            jane=("known", [email("jane@x.io")]),
        )
        batch = [[anonid("cookie-1")], [anonid("cookie-1"), email("jane@x.io")]]
        result = plan(batch, existing)
        assert result.contact_ids == ["e-jane", "e-jane"]
        assert result.merges == {"e-visitor": "e-jane"}


# --- properties ----------------------------------------------------------------

POOL: tuple[Identifier, ...] = (
    identity("u0"),
    identity("u1"),
    identity("u2"),
    email("a@x.io"),
    email("b@x.io"),
    email("c@x.io"),
    mobile("1110001"),
    mobile("2220002"),
    mobile("3330003"),
    anonid("k0"),
    anonid("k1"),
    anonid("k2"),
    anonid("k3"),
)


@st.composite
def worlds(draw: st.DrawFn) -> Owners:
    """A consistent store: each identifier has at most one owner; a contact is known
    exactly when it owns a known-kind identifier."""
    owner_names = draw(
        st.lists(
            st.sampled_from([None, "e-0", "e-1", "e-2", "e-3", "e-4"]),
            min_size=len(POOL),
            max_size=len(POOL),
        )
    )
    owned = {ident: name for ident, name in zip(POOL, owner_names, strict=True) if name}
    known = {name for ident, name in owned.items() if ident.kind != "anonid"}
    return {
        ident: ContactRef(name, "known" if name in known else "anonymous")
        for ident, name in owned.items()
    }


batches = st.lists(st.lists(st.sampled_from(POOL), min_size=1, max_size=4), min_size=1, max_size=8)
primary_orders = st.permutations(["identity", "email", "mobile"]).map(tuple) | st.sampled_from(
    [("email",), ("mobile", "identity"), ()]
)


class TestProperties:
    """Invariants that hold for any batch against any consistent store."""

    @settings(max_examples=400)
    @given(existing=worlds(), batch=batches, order=primary_orders)
    def test_every_identifier_ends_with_exactly_one_owner(
        self, existing: Owners, batch: list[list[Identifier]], order: tuple[str, ...]
    ) -> None:
        result = plan(batch, existing, order)
        after = apply_plan(existing, result)
        wanted = {ident for event in batch for ident in event}
        assert wanted <= set(after)
        assert set(result.new_identifiers) == wanted - set(existing)

    @settings(max_examples=400)
    @given(existing=worlds(), batch=batches, order=primary_orders)
    def test_every_event_goes_to_a_contact_owning_one_of_its_identifiers(
        self, existing: Owners, batch: list[list[Identifier]], order: tuple[str, ...]
    ) -> None:
        result = plan(batch, existing, order)
        after = apply_plan(existing, result)
        assert len(result.contact_ids) == len(batch)
        for event, contact_id in zip(batch, result.contact_ids, strict=True):
            assert any(after[ident].id == contact_id for ident in event)

    @settings(max_examples=400)
    @given(existing=worlds(), batch=batches, order=primary_orders)
    def test_merged_contacts_are_gone_and_nothing_points_at_them(
        self, existing: Owners, batch: list[list[Identifier]], order: tuple[str, ...]
    ) -> None:
        result = plan(batch, existing, order)
        existing_ids = {ref.id for ref in existing.values()}
        existing_status = {ref.id: ref.status for ref in existing.values()}
        merged = set(result.merges)
        assert merged <= existing_ids
        assert all(existing_status[c] == "anonymous" for c in merged)
        assert not merged & set(result.contact_ids)
        assert not merged & set(result.merges.values()), "a survivor is never merged itself"
        assert not merged & set(result.new_identifiers.values())
        live = (existing_ids - merged) | set(result.new_contacts)
        assert set(result.contact_ids) <= live
        assert set(result.merges.values()) <= live
        assert not set(result.new_contacts) & existing_ids
        after = apply_plan(existing, result)
        assert {ref.id for ref in after.values()} == live, "no contact without identifiers"
        for event in result.audit:
            assert event.contact_id in live
            assert set(event.other_contact_ids) <= live | merged

    @settings(max_examples=400)
    @given(existing=worlds(), batch=batches, order=primary_orders)
    def test_a_contact_is_known_exactly_when_it_owns_a_known_identifier(
        self, existing: Owners, batch: list[list[Identifier]], order: tuple[str, ...]
    ) -> None:
        after = apply_plan(existing, plan(batch, existing, order))
        known_owners = {ref.id for ident, ref in after.items() if ident.kind != "anonid"}
        for ref in after.values():
            assert (ref.status == "known") == (ref.id in known_owners)

    @settings(max_examples=400)
    @given(existing=worlds(), batch=batches, order=primary_orders)
    def test_planning_the_same_batch_again_creates_nothing(
        self, existing: Owners, batch: list[list[Identifier]], order: tuple[str, ...]
    ) -> None:
        """A client retrying a batch must not grow the contact table."""
        first = plan(batch, existing, order)
        after = apply_plan(existing, first)
        again = plan(batch, after, order, NewIds("r"))
        assert again.new_contacts == {}
        assert again.new_identifiers == {}
        assert again.conversions == set()
        assert again.merges == {}
        assert again.touched_existing == set()
        assert {e.kind for e in again.audit} <= {"conflict"}
        assert again.contact_ids == first.contact_ids

    @settings(max_examples=400)
    @given(existing=worlds(), batch=batches, order=primary_orders)
    def test_a_batch_resolves_like_its_events_sent_one_at_a_time(
        self, existing: Owners, batch: list[list[Identifier]], order: tuple[str, ...]
    ) -> None:
        """ "Inputs are applied in order, so a later input sees the contacts and
        identifiers an earlier input of the same batch created"."""
        batched = plan(batch, existing, order, NewIds())

        ids = NewIds()
        world: Owners = dict(existing)
        merged_into: dict[str, str] = {}
        one_by_one: list[str] = []
        for event in batch:
            step = plan([event], world, order, ids)
            world = apply_plan(world, step)
            merged_into.update(step.merges)
            one_by_one.extend(step.contact_ids)

        def survivor(contact_id: str) -> str:
            while contact_id in merged_into:
                contact_id = merged_into[contact_id]
            return contact_id

        assert [survivor(c) for c in one_by_one] == batched.contact_ids
        assert world == apply_plan(existing, batched)


def test_touched_existing_names_only_contacts_that_already_exist() -> None:
    """touched_existing: "Existing contacts whose rows this plan changes (to lock and re-check)"."""
    ids = iter(["n-001", "n-002"])
    existing = {Identifier("anonid", "cookie-1"): ContactRef("e-visitor", "anonymous")}
    batch = [
        [Identifier("email", "jane@x.io")],  # new known contact n-001
        [Identifier("email", "jane@x.io"), Identifier("anonid", "cookie-1")],  # e-visitor -> n-001
    ]
    plan = plan_resolution(batch, existing, ("identity", "email", "mobile"), lambda: next(ids))
    assert plan.new_contacts == {"n-001": "known"}
    assert plan.merges == {"e-visitor": "n-001"}
    assert plan.touched_existing == {"e-visitor"}


class TestPinnedContacts:
    """A record that names its contact by id (CleverTap objectId) goes to that contact."""

    def test_pinned_contact_takes_the_record_and_new_identifiers(self) -> None:
        ids = iter(["n-1"])
        plan = plan_resolution(
            [[Identifier("identity", "new-id")]],
            {},
            DEFAULT_PRIMARY_KINDS,
            lambda: next(ids),
            pinned=[ContactRef("c-known", "known")],
        )
        assert plan.contact_ids == ["c-known"]
        assert plan.new_contacts == {}
        assert plan.new_identifiers == {Identifier("identity", "new-id"): "c-known"}

    def test_pinned_known_contact_wins_a_conflict_and_it_is_recorded(self) -> None:
        existing = {Identifier("identity", "u-1"): ContactRef("c-other", "known")}
        plan = plan_resolution(
            [[Identifier("identity", "u-1")]],
            existing,
            DEFAULT_PRIMARY_KINDS,
            lambda: "never",
            pinned=[ContactRef("c-named", "known")],
        )
        assert plan.contact_ids == ["c-named"]
        assert [(e.kind, e.other_contact_ids) for e in plan.audit] == [("conflict", ("c-other",))]
        assert plan.merges == {}

    def test_pinned_anonymous_contact_becomes_known(self) -> None:
        plan = plan_resolution(
            [[Identifier("email", "a@x.io")]],
            {},
            DEFAULT_PRIMARY_KINDS,
            lambda: "never",
            pinned=[ContactRef("c-anon", "anonymous")],
        )
        assert plan.contact_ids == ["c-anon"]
        assert plan.conversions == {"c-anon"}
