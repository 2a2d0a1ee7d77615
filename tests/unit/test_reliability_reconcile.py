"""The fault suite's judge (deploy/reliability/reconcile.py): an accepted input missing from
Kafka is lost, one there twice (same id, or more click events than clicks) is duplicated, and
each is charged to the phase it was accepted in; an unanswered click may or may not be there."""

from __future__ import annotations

from deploy.reliability.load import Ledger
from deploy.reliability.reconcile import KafkaView, Verdict, judge_inputs
from shared import topics


def ledger() -> Ledger:
    book = Ledger()
    book.hr = {"hr-1": "kafka", "hr-2": "kafka"}
    book.contents = {"c1": "kill-content"}
    book.webhook_events = {"webhook/s/m1/0": ("smtp", "reaction", 3)}
    book.code_phase = {"A": "kill-tracking", "B": "postgres"}
    book.clicks.update({"A": 2, "B": 1})
    book.clicks_uncertain.update({"B": 1})
    return book


def view() -> KafkaView:
    seen = KafkaView()
    seen.ids[topics.HR_EMPLOYEES.name].update({"hr-1": 1, "hr-2": 1})
    seen.ids[topics.CONTENT_LIFECYCLE.name].update({"p1": 1})
    seen.published["c1"] = {"p1"}
    seen.ids[topics.ENGAGEMENTS.name].update({"webhook/s/m1/0": 1, "k1": 1, "k2": 1, "k3": 1, "k4": 1})
    seen.clicks.update({"A": {"k1", "k2"}, "B": {"k3", "k4"}})  # B: 1 accepted + 1 unanswered that went through
    return seen


def test_everything_once_is_neither_lost_nor_duplicated():
    verdict = Verdict()
    judge_inputs(ledger(), view(), verdict)
    assert (sum(verdict.lost.values()), sum(verdict.duplicated.values()), verdict.kafka_copies) == (0, 0, {})


def test_missing_inputs_are_lost_in_their_phase():
    seen = view()
    del seen.ids[topics.HR_EMPLOYEES.name]["hr-2"]
    seen.published.pop("c1")
    seen.clicks["A"] = {"k1"}
    verdict = Verdict()
    judge_inputs(ledger(), seen, verdict)
    assert +verdict.lost == {"kafka": 1, "kill-content": 1, "kill-tracking": 1}
    assert not +verdict.duplicated


def test_copies_and_extra_events_are_duplicated_in_their_phase():
    seen = view()
    seen.ids[topics.ENGAGEMENTS.name]["webhook/s/m1/0"] = 2  # the same id twice
    seen.ids[topics.ENGAGEMENTS.name]["k5"] = 1
    seen.clicks["B"] = {"k3", "k4", "k5"}  # more click events than clicks sent, even counting the unanswered
    verdict = Verdict()
    judge_inputs(ledger(), seen, verdict)
    assert +verdict.duplicated == {"smtp": 1, "postgres": 1}
    assert verdict.kafka_copies == {topics.ENGAGEMENTS.name: 1}
    assert not +verdict.lost
