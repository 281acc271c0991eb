"""The whole experiment on two tiny random models, through the real entry point (Hydra -> workers ->
TRL/PEFT -> scoring -> files). Answers are random; the test checks mechanics and bookkeeping."""

from __future__ import annotations

import json

from tests.helpers import run_main, tiny_overrides


def test_pipeline_writes_the_matrix_and_reruns_without_model_calls(tmp_path, tiny_pair, tiny_run, warm_store):
    run_dir, results = tiny_run.run_dir, tiny_run.results  # the run from an empty store (tests/conftest.py)

    # The 2 x 2 matrix (self on the diagonal) plus each model's untrained cell.
    matrix = results["matrix"]
    kinds = sorted((c["predictor"], c["target"], c["kind"]) for c in matrix)
    assert kinds == [("tiny_a", "tiny_a", "self"), ("tiny_a", "tiny_a", "untrained"), ("tiny_a", "tiny_b", "cross"),
                     ("tiny_b", "tiny_a", "cross"), ("tiny_b", "tiny_b", "self"), ("tiny_b", "tiny_b", "untrained")]
    for c in matrix:
        assert set(c) >= {"predictor", "target", "accuracy", "ci_low", "ci_high", "n", "mode_baseline", "compliance"}
        assert c["n"] > 0 and 0 <= c["mode_baseline"] <= 1 and 0 <= c["compliance"] <= 1
        assert c["ci_low"] <= c["accuracy"] <= c["ci_high"] or c["n"] < 2

    # Self and cross are compared on identical items, with a paired test per target.
    tests = results["paired_tests"]
    assert sorted(t["target"] for t in tests) == ["tiny_a", "tiny_b"]
    for t in tests:
        self_cell = next(c for c in matrix if c["target"] == t["target"] and c["kind"] == "self")
        cross_cell = next(c for c in matrix if c["target"] == t["target"] and c["kind"] == "cross")
        assert self_cell["n"] == cross_cell["n"] == t["n"]
        assert 0 <= t["mcnemar_p"] <= 1

    items = [json.loads(line) for line in (run_dir / "items.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in items} == {"self", "cross", "untrained"}
    for f in ("matrix.csv", "plots/matrix.png", ".hydra/config.yaml"):
        assert (run_dir / f).is_file(), f
    assert results["store"]["worker_runs"] > 0

    # A second run of the same config finds every artifact: no model is loaded.
    run_main([f"hydra.run.dir={tmp_path / 'run2'}", *tiny_overrides(tiny_pair, warm_store)])
    again = json.loads((tmp_path / "run2" / "results.json").read_text())
    assert again["store"]["worker_runs"] == 0
    assert again["matrix"] == matrix


def test_calibration_experiment(tmp_path, tiny_pair, warm_store):
    run_main([f"hydra.run.dir={tmp_path}", *tiny_overrides(tiny_pair, warm_store), "experiment=calibration",
              "experiment.options.n_strings=5", "experiment.options.n_samples=4", "experiment.options.n_bootstrap=20"])
    results = json.loads((tmp_path / "results.json").read_text())
    curves = {c["setup"]: c for c in results["calibration"]}
    assert set(curves) == {f"{k} ({v})" for k in ("self", "cross", "untrained") for v in ("sampled", "logprob")}
    for c in curves.values():
        assert c["n_strings"] == 5 and c["n_points"] > 0 and 0 <= c["mad"] <= 100
        assert 0.0 <= c["hypothetical_compliance"] <= 1.0
    assert curves["self (sampled)"]["hypothetical_compliance"] == curves["self (logprob)"]["hypothetical_compliance"]
    assert "## Calibration" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "plots" / "calibration.png").is_file()


def test_behavior_shift_experiment(tmp_path, tiny_pair, warm_store):
    run_main([f"hydra.run.dir={tmp_path}", *tiny_overrides(tiny_pair, warm_store), "experiment=behavior_shift",
              "experiment.options.n_shift_items=6", "experiment.adjusted=true"])
    results = json.loads((tmp_path / "results.json").read_text())
    old = next(c for c in results["cells"] if c["kind"] == "old_behavior" and c["task"] == "all")
    new = next(c for c in results["cells"] if c["kind"] == "new_behavior" and c["task"] == "all")
    assert old["n"] == new["n"] == results["paired_tests"][0]["n"]  # the same shifted items on both sides
    items = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert all(r["kind"] in ("old_behavior", "new_behavior") for r in items)
    old_truth = {(r["item_id"], r["property"]): r["truth"] for r in items if r["kind"] == "old_behavior"}
    assert all(old_truth[(r["item_id"], r["property"])] != r["truth"] for r in items if r["kind"] == "new_behavior")
    assert "## Behaviour shift" in (tmp_path / "report.md").read_text()


def test_input_words_shift_source_is_seeded_and_draws_from_the_string():
    from introspection.experiments.behavior_shift import input_words_answer

    string = "cat dog owl bee ant"
    answer = input_words_answer(string)
    assert answer == input_words_answer(string) and len(answer.split()) == 5
    assert set(answer.split()) <= set(string.split())
    assert len({input_words_answer(f"{string} x{i}") for i in range(10)}) > 1  # differs between strings


def test_scaling_experiment(tmp_path, tiny_pair, warm_store):
    # 128 is finetune=demo's max_examples, so that point's cross-finetune is tiny_run's own (reused, not trained);
    # the point at 4 trains one of its own.
    adapters = {p.name for p in (warm_store / "artifacts" / "adapters").iterdir()}
    run_main([f"hydra.run.dir={tmp_path}", *tiny_overrides(tiny_pair, warm_store), "experiment=scaling",
              "experiment.options.sizes=[4,128]"])
    results = json.loads((tmp_path / "results.json").read_text())
    assert [p["n_examples"] for p in results["scaling"]] == [4, 128]
    assert len({p.name for p in (warm_store / "artifacts" / "adapters").iterdir()} - adapters) == 1
    assert len({p["self_accuracy"] for p in results["scaling"]}) == 1  # one self reference line
    assert (tmp_path / "plots" / "scaling.png").is_file()


def test_multirun_sweep_shares_base_answers_and_writes_the_sweep_table(lora_rank_sweep):
    # `finetune.lora.r=4,8` on a copy of tiny_run's store, computed in the background (tests/helpers/background.py).
    # Job 0 (r=4, the TINY_SIZES rank) is tiny_run's config: it reuses every artifact.
    sweep, warm_store = lora_rank_sweep.sweep_dir, lora_rank_sweep.store
    jobs = sorted(d.name for d in sweep.iterdir() if (d / "results.json").is_file())
    assert jobs == ["0", "1"]
    results = [json.loads((sweep / j / "results.json").read_text()) for j in jobs]
    assert [r["config"]["finetune"]["lora"]["r"] for r in results] == [4, 8]
    # The base models' answers do not depend on the LoRA rank: the r=8 job reuses them and answers again only
    # with its own adapters (self and cross, of both models).
    assert results[0]["store"]["worker_runs"] == 0
    computed = [json.loads(m.read_text())["info"]["model"]
                for m in (warm_store / "artifacts" / "answers").glob("*/_manifest.json")]
    assert computed.count("tiny_a") == computed.count("tiny_b") == 3  # object/train, object/test, hypothetical/test
    table = json.loads((sweep / "sweep_results.json").read_text())
    assert [j["status"] for j in table["jobs"]] == ["ok", "ok"]
    assert (sweep / "sweep_results.csv").is_file()
