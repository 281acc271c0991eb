"""Requests carry item, task and property as fields; their ids keep the format stored answers are keyed by."""

from __future__ import annotations

from omegaconf import OmegaConf

from introspection.core.config import TaskSetConfig
from introspection.core.store import Store
from introspection.core.types import ChatRequest
from introspection.experiments.behavior_shift import ShiftOptions, input_words_answer, shift_answers
from introspection.stages.items import build_items


def test_requests_carry_their_item_task_and_property_and_keep_their_ids(tmp_path):
    tasks = OmegaConf.structured(TaskSetConfig(name="ids", train_tasks=["colors_long"], test_tasks=["animals_long"],
                                               n_train_items=3, n_test_items=2))
    plan = build_items(tasks, Store(tmp_path / "store"))
    obj = plan.object_requests(plan.train_items)
    assert [(r.request_id, r.kind, r.task, r.item_id, r.property) for r in obj] == [
        (f"obj|{it.item_id}", "object", "colors_long", it.item_id, "") for it in plan.train_items]
    hyp = plan.hypothetical_requests(plan.test_items)
    expected = [(f"hyp|{it.item_id}|{name}", "hypothetical", "animals_long", it.item_id, name)
                for it in plan.test_items for name in plan.properties["animals_long"]]
    assert [(r.request_id, r.kind, r.task, r.item_id, r.property) for r in hyp] == expected
    assert len(expected) == 2 * len(plan.properties["animals_long"]) > 0


def test_shift_answers_read_the_item_string_not_the_id(tmp_path):
    # A string holding the id's separator: the answer follows the item's string, as it did when parsed from the id.
    strings = {"obj|t:train:0|a|b c": "a|b c", "obj|t:train:1|x y": "x y"}
    requests = [ChatRequest(rid, [{"role": "user", "content": s}], kind="object", task="t") for rid, s in strings.items()]
    got = shift_answers(ShiftOptions(source="input_words"), None, {}, requests, strings)
    assert {rid: a.text for rid, a in got.items()} == {rid: input_words_answer(s) for rid, s in strings.items()}
    path = tmp_path / "answers.jsonl"
    path.write_text('{"string": "x y", "answer": "z"}\n', encoding="utf-8")
    from_file = shift_answers(ShiftOptions(source=str(path)), None, {}, requests, strings)
    assert {rid: a.text for rid, a in from_file.items()} == {"obj|t:train:1|x y": "z"}
