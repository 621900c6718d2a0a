"""The next best offer without HTTP: the contact book rebuilt from the stored history
decides as the flow's own book does, profiles parse defensively, and the plan ranks by
expected value and lets the guardrails pick."""

from __future__ import annotations

import pickle

from hypothesis import given
from hypothesis import strategies as st

from models.offer_value import OfferEconomics
from models.offers import Candidate, ContactBook, Context, Policy
from serving.next_best_offer import Action, OfferRules, Plan, plan_offer, with_grant
from serving.offer_profile import OfferProfile, contact_book

HOUR = 3_600.0
DAY = 86_400.0
T0 = 1_746_100_800.0  # 2025-05-01T12:00:00Z
TRIGGERS = ("cart_abandonment", "churn_risk", "cross_sell")
PUSH = Context(consent={"marketing_push": True}, timezone="Europe/Paris")
STRICT = Policy(holdout_share=0.0, quiet_hours=(0, 0))

events = st.lists(
    st.tuples(st.floats(0, 10 * DAY), st.sampled_from(TRIGGERS), st.sampled_from(["a", "b", "c"])),
    max_size=25,
)


@given(history=events, later=st.floats(0, 2 * DAY), trigger=st.sampled_from(TRIGGERS),
       state=st.sampled_from(["a", "b", "c", "d"]))  # fmt: skip
def test_the_rebuilt_book_decides_as_the_flows_own_book(
    history: list[tuple[float, str, str]], later: float, trigger: str, state: str
) -> None:
    lived = ContactBook()
    states: dict[str, str] = {}
    policy = Policy(holdout_share=0.3, quiet_hours=(0, 0), default_cooldown_s=2 * HOUR)
    for offset, name, key in sorted(history):
        decision = lived.decide(
            Candidate("C-1", name, T0 + offset, key, "r", {}), PUSH, policy
        )  # the flow's decisions, hold-outs included
        if decision.fired or decision.reason == "holdout":
            states[name] = key
    now = T0 + max((o for o, _, _ in history), default=0.0) + later
    profile = OfferProfile(contacts=lived.fired_at(), states=states)
    rebuilt = contact_book(profile, now=now)
    probe = Candidate("C-2", trigger, now, state, "r", {})
    copy = pickle.loads(pickle.dumps(lived))  # noqa: S301 - our own bytes
    expected = copy.decide(probe, PUSH, STRICT)
    got = rebuilt.decide(probe, PUSH, STRICT)
    assert (got.fired, got.reason) == (expected.fired, expected.reason)


def test_a_profile_with_corrupt_or_missing_fields_parses_to_what_can_be_read() -> None:
    profile = OfferProfile.parse(
        {
            "consent:marketing_push": "1",
            "consent:marketing_sms": "maybe",
            "open_tickets": "two",
            "cart": '{"P1": {"price": 3.5, "qty": 2}, "P2": {"price": -1, "qty": 1}, "P3": 7}',
            "churn_probability": "1.7",
            "clv_12m": "nan",
            "last_purchase_at": "yesterday",
            "offers_contacts": '[[1746100800, "cart_abandonment"], ["x", "y"], [1, 2], 5]',
            "offers_states": '["not", "an", "object"]',
            "recent": "{",
        }
    )
    assert profile.consent == {"marketing_push": True}
    assert profile.cart == {"P1": (2, 3.5)}
    assert (profile.open_tickets, profile.churn_probability, profile.clv_12m) == (0, None, None)
    assert (profile.last_purchase_at, profile.states) == (None, {})
    assert profile.contacts == [(1746100800.0, "cart_abandonment")]
    assert OfferProfile.parse({}) == OfferProfile()


def _profile(**overrides: object) -> OfferProfile:
    values: dict[str, object] = {
        "consent": {"marketing_push": True},
        "timezone": "UTC",
        "churn_probability": 0.6,
        "clv_12m": 1_000.0,
    }
    values.update(overrides)
    return OfferProfile(**values)  # type: ignore[arg-type]


ACTIONS = [
    Action("cross_sell", "2025-05-01", "recommended_for_you", 40.0, []),
    Action("churn_risk", "since@never", "churn_risk_high", 40.0, []),
    Action("cart_abandonment", "9f2c", "cart_waiting", 120.0, []),
]


def _plan(profile: OfferProfile, budget: float = 100.0, actions: list[Action] = ACTIONS) -> Plan:
    return plan_offer(
        profile, actions, rules=OfferRules(), customer_id="C-9", channel="push", now=T0,
        budget_left=budget,
    )  # fmt: skip


def test_the_plan_offers_the_best_action_and_explains_the_rest() -> None:
    plan = _plan(_profile())
    assert plan.offer is not None
    assert plan.offer.action.trigger == "cart_abandonment"
    assert [(s.action.trigger, s.why) for s in plan.alternatives] == [
        ("churn_risk", "lower_expected_value"),
        ("cross_sell", "lower_expected_value"),
    ]
    values = [plan.offer.discount.expected_value] + [
        s.discount.expected_value for s in plan.alternatives
    ]
    assert values == sorted(values, reverse=True)


def test_a_suppressed_best_action_gives_way_to_the_next() -> None:
    cooling = _profile(contacts=[(T0 - 0.5 * HOUR, "cart_abandonment")])
    plan = _plan(cooling)
    assert plan.offer is not None
    assert plan.offer.action.trigger == "churn_risk"
    assert plan.alternatives[0].action.trigger == "cart_abandonment"
    assert plan.alternatives[0].why == "cooldown"


def test_an_action_worth_nothing_is_never_offered() -> None:
    costly = OfferRules(economics=OfferEconomics(contact_cost=1_000.0))
    plan = plan_offer(
        _profile(), ACTIONS, rules=costly, customer_id="C-9", channel="push", now=T0,
        budget_left=100.0,
    )  # fmt: skip
    assert (plan.offer, plan.suppressed) == (None, "negative_expected_value")
    assert {s.why for s in plan.alternatives} == {"negative_expected_value"}


def test_nothing_eligible_and_the_hold_out() -> None:
    assert _plan(_profile(), actions=[]).suppressed == "no_eligible_action"
    held = plan_offer(
        _profile(), ACTIONS, rules=OfferRules(policy=Policy(holdout_share=1.0 - 1e-12,
                                                            quiet_hours=(0, 0))),
        customer_id="C-9", channel="push", now=T0, budget_left=100.0,
    )  # fmt: skip
    assert (held.offer, held.holdout, held.suppressed) == (None, True, "holdout")
    assert held.alternatives[0].why == "holdout"
    assert {s.why for s in held.alternatives[1:]} == {"lower_expected_value"}


def test_a_short_grant_lowers_the_discount_to_what_it_covers() -> None:
    offer = _plan(_profile()).offer
    assert offer is not None
    assert offer.discount.amount > 5.0
    assert with_grant(offer, offer.discount.amount, OfferRules().economics) is offer
    short = with_grant(offer, 5.0, OfferRules().economics)
    assert short.discount.amount <= 5.0
    assert short.discount.limited_by == "budget"
    assert with_grant(offer, 0.0, OfferRules().economics).discount.rate == 0.0
