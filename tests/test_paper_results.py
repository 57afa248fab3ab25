"""The study's evaluation tables (tdlib.paper): solve-rate curves, the Figure 4 and 5 tables and the
training-curve fits, against brute force over synthetic runs."""

import csv
import json
import runpy
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from tdlib.checkpoint import load_model
from tdlib.decode import Decoder
from tdlib.env import make_env
from tdlib.evaluation import FIELDS
from tdlib.metrics import mutation_problems, one_step_solve_rate
from tdlib.paper.arms import RAINBOW_ARMS, arm_one_step
from tdlib.paper.curve_fits import doubling_fit, examples_to_reach
from tdlib.paper.plans import PLANS, output_name
from tdlib.paper.plots import plot_arms, plot_solved
from tdlib.paper.runs import best_programs, load_runs, select_runs
from tdlib.paper.solve_rates import (ablation_table, configuration_table, difference_se,
                                      solved_table, solved_within)
from tdlib.presets import shipped_folder
from tdlib.tokens import Tokenizer


def write_run(folder, testset, method, score, seed, budget, expansions, policy=""):
    """A run file as ``tdlib evaluate`` writes it; ``expansions[i]`` None: problem i unsolved."""
    path = output_name(folder, testset, method, score, budget, seed, policy)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        for i, e in enumerate(expansions):
            writer.writerow({"index": i, "solved": int(e is not None),
                             "expansions": "" if e is None else e,
                             "spent": budget if e is None else e, "best_error": 0.1 * i,
                             "best_program": f"program {method} {i}", "seconds": 1.0})
    settings = {"testset": f"{testset}.jsonl", "method": method, "score": score, "seed": seed,
                "budget": budget, "beam": 64, "k": 3}
    if policy:
        settings["checkpoints"] = {"policy": f"results/checkpoints/{policy}"}
    path.with_suffix(".csv.json").write_text(json.dumps(settings))
    return path


def random_expansions(rng, n, budget):
    return [int(e) if rng.random() < 0.6 else None for e in rng.integers(1, budget + 1, n)]


def test_solved_within_matches_brute_force(tmp_path, rng):
    runs_in = {}
    for seed in range(3):
        for method, score in [("td-search", "value"), ("ar", "value")]:
            e = random_expansions(rng, 20, 500)
            write_run(tmp_path, "csg2d", method, score, seed, 500, e)
            runs_in[(method, seed)] = e
    runs = load_runs(tmp_path)
    assert set(runs["score"]) == {"value", ""}, "only scored methods keep their score"
    budgets = [1, 7, 100, 500, 1000]
    curves = solved_within(runs, budgets)
    for (method, seed), e in runs_in.items():
        for b in budgets:
            got = curves[(curves["method"] == method) & (curves["seed"] == seed)
                         & (curves["at"] == b)]["solved"].item()
            if b > 500:
                assert np.isnan(got), "a budget the run never reached is not measured"
            else:
                assert got == pytest.approx(sum(x is not None and x <= b for x in e) / len(e))


def test_solved_table_mean_and_std_over_seeds(tmp_path, rng):
    per_seed = []
    for seed in range(4):
        e = random_expansions(rng, 16, 100)
        write_run(tmp_path, "tinysvg", "td-rollout", "value", seed, 100, e)
        per_seed.append(sum(x is not None and x <= 10 for x in e) / 16)
    write_run(tmp_path, "tinysvg", "ar", "value", 0, 1000, [5, None, 900, None])
    table = solved_table(load_runs(tmp_path), budgets=(10, 100, 1000, 5000))
    row = table[(table["method"] == "td-rollout") & (table["budget"] == 10)].iloc[0]
    assert row["seeds"] == 4 and row["problems"] == 16 and row["env"] == "tinysvg"
    assert row["solved_mean"] == pytest.approx(np.mean(per_seed))
    assert row["solved_std"] == pytest.approx(np.std(per_seed, ddof=1))
    assert set(table[table["method"] == "td-rollout"]["budget"]) == {10, 100}
    ar = table[table["method"] == "ar"].set_index("budget")
    assert ar["solved_mean"].to_dict() == {10: 0.25, 100: 0.25, 1000: 0.5}, "5000 never reached"
    assert ar["solved_std"].isna().all(), "one seed has no spread to report"


def test_select_runs_keeps_complete_runs_of_the_largest_budget_and_says_why(tmp_path, rng):
    write_run(tmp_path, "csg2d", "ar", "value", 0, 100, [5, None, 50, None])
    write_run(tmp_path, "csg2d", "ar", "value", 0, 1000, [5, 500, 50, None])
    write_run(tmp_path, "csg2d", "ar", "value", 1, 1000, [5, 500])  # in progress
    write_run(tmp_path, "csg2d", "repl", "value", 0, 1000, [None] * 4)
    (tmp_path / "csg2d_repl_b1000_s1.csv").write_text("")  # just started: no rows yet
    (tmp_path / "csg2d_repl_b1000_s1.csv.json").write_text(
        (tmp_path / "csg2d_repl_b1000_s0.csv.json").read_text())
    runs = load_runs(tmp_path)
    chosen, left_out = select_runs(runs)
    assert sorted(chosen["file"].unique()) == ["csg2d_ar_b1000_s0.csv", "csg2d_repl_b1000_s0.csv"]
    assert left_out == ["csg2d_ar_b1000_s1.csv: partial, 2 of 4 problems",
                        "csg2d_ar_b100_s0.csv: a run of the same settings at a larger budget "
                        "is used"]
    with pytest.raises(ValueError, match="several runs of one seed"):
        solved_table(runs)
    table = solved_table(chosen, (100, 1000))
    assert table.set_index(["method", "budget"])["solved_mean"].to_dict() == {
        ("ar", 100): 0.5, ("ar", 1000): 0.75, ("repl", 100): 0.0, ("repl", 1000): 0.0}


def test_runs_with_other_settings_are_kept_apart(tmp_path):
    path = write_run(tmp_path, "csg2d", "td-search", "value", 0, 50, [4, None])
    other = tmp_path / "beam16.csv"
    other.write_text(path.read_text())
    settings = json.loads(path.with_suffix(".csv.json").read_text())
    other.with_suffix(".csv.json").write_text(json.dumps({**settings, "beam": 16}))
    runs = load_runs(tmp_path)
    assert sorted(runs["variant"].unique()) == ["", "beam=16"]
    chosen, left_out = select_runs(runs)
    assert chosen["file"].nunique() == 2 and not left_out
    assert len(solved_table(chosen, (10,))) == 2


def test_load_runs_ignores_files_without_settings(tmp_path):
    write_run(tmp_path, "csg2d", "repl", "value", 0, 10, [3])
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    runs = load_runs(tmp_path)
    assert list(runs["file"].unique()) == ["csg2d_repl_b10_s0.csv"]
    assert load_runs(tmp_path / "empty").empty


def test_plot_draws_one_curve_per_method_and_best_programs_pick_the_seed(tmp_path):
    write_run(tmp_path, "csg2d", "td-search", "value", 0, 50, [4, None])
    write_run(tmp_path, "csg2d", "td-search", "value", 1, 50, [None, 9])
    write_run(tmp_path, "csg2d", "random-search", "pixel", 0, 50, [None, None])
    runs = load_runs(tmp_path)
    fig, ax = plt.subplots()
    plot_solved(ax, runs, "csg2d")
    assert len(ax.get_lines()) == 2
    mean = ax.get_lines()[1].get_ydata()  # td-search (value) sorts after random-search
    assert mean[0] == 0 and mean[-1] == pytest.approx(0.5)
    plt.close(fig)
    best = best_programs(runs, "csg2d", [1], seed=1)
    assert best.to_dict("records") == [{"index": 1, "method": "TD search (value)",
                                        "program": "program td-search 1", "solved": True,
                                        "best_error": pytest.approx(0.1)}]


def test_plans_name_distinct_files():
    names = {run.output("x", 1000, seed)
             for runs in PLANS.values() for run in runs for seed in range(3)}
    assert len(names) == 3 * sum(len(runs) for runs in PLANS.values())


def test_the_evaluation_queue_names_its_runs_and_refuses_unknown_ones(tmp_path, capsys):
    tool = Path(__file__).resolve().parents[1] / "tools" / "run_evaluations.py"
    main = runpy.run_path(str(tool))["main"]
    assert main(["--queue", "csg2d_hard/0,2/ar,td-search-value", "tinysvg/1", "--dry-run",
                 "--output-dir", str(tmp_path / "out")]) == 0
    outputs = [line.split(" -o ")[1].split()[0] for line in capsys.readouterr().out.splitlines()]
    assert [Path(o).name for o in outputs] == [
        "csg2d_hard_td-search-value_b1000_s0.csv", "csg2d_hard_ar_b1000_s0.csv",
        "csg2d_hard_td-search-value_b1000_s2.csv", "csg2d_hard_ar_b1000_s2.csv",
        "tinysvg_td-search-value_b1000_s1.csv", "tinysvg_ar_b1000_s1.csv",
        "tinysvg_td-rollout_b1000_s1.csv"]
    assert not (tmp_path / "out").exists(), "a dry run writes nothing"
    for bad in ("csg2d/0/AR", "csg2d", "nowhere/0"):
        with pytest.raises(SystemExit):
            main(["--queue", bad, "--dry-run"])
        assert "error" in capsys.readouterr().err


def test_ablation_arms_are_kept_apart_and_tabled_against_brute_force(tmp_path, rng):
    truth = {}
    for arm in ("full", "no_current_image", "rho0.5"):
        for seed in range(3):
            e = random_expansions(rng, 12, 200)
            write_run(tmp_path, "rainbow", "td-rollout", "pixel", seed, 200, e,
                      RAINBOW_ARMS[arm][0])
            truth[(arm, seed)] = e
    write_run(tmp_path, "csg2d", "td-rollout", "value", 0, 200, [1] * 12)  # the shipped policy
    runs, left_out = select_runs(load_runs(tmp_path))
    assert not left_out and runs["file"].nunique() == 10, "one run per arm and seed is kept"
    table = ablation_table(runs, budgets=(10, 200))
    assert set(table["arm"]) == {"full", "no_current_image", "rho0.5"}
    for arm in ("full", "no_current_image", "rho0.5"):
        for b in (10, 200):
            rates = [sum(x is not None and x <= b for x in truth[(arm, s)]) / 12 for s in range(3)]
            row = table[(table["arm"] == arm) & (table["budget"] == b)].iloc[0]
            assert row["rho"] == RAINBOW_ARMS[arm][1] and row["seeds"] == 3
            assert row["solved_mean"] == pytest.approx(np.mean(rates))
            assert row["solved_std"] == pytest.approx(np.std(rates, ddof=1))
    assert set(solved_table(runs)["testset"]) == {"csg2d"}, "Figure 4 leaves arms out"
    fig, ax = plt.subplots()
    plot_arms(ax, runs, "td-rollout", ["full", "no_reverse_path", "no_current_image"])
    assert len(ax.get_lines()) == 2, "an arm that was not run draws no curve"
    band = max(c.get_paths()[0].vertices[:, 1].max() for c in ax.collections)
    assert band <= ax.get_ylim()[1] <= min(1.0, max(0.05, 1.2 * band + 0.05)) + 1e-9, \
        "the axis shows the curves and their bands, not an empty 0-1 range"
    plt.close(fig)


def test_difference_se_matches_simulated_binomial_differences():
    rng = np.random.default_rng(3)
    a = {"solved_mean": 0.3, "problems": 256, "seeds": 3}
    b = {"solved_mean": 0.1, "problems": 128, "seeds": 2}
    draws = (rng.binomial(768, 0.3, 20000) / 768) - (rng.binomial(256, 0.1, 20000) / 256)
    assert difference_se(a, b) == pytest.approx(draws.std(), rel=0.03)
    assert difference_se({**a, "solved_mean": 0.0}, {**b, "solved_mean": 1.0}) == 0.0


def test_arm_one_step_puts_every_arm_to_the_same_problems(tmp_path):
    """Two arms with the same weights solve the same share; an arm without a checkpoint is left
    out; each rate is one greedy edit's on the held-out mutation problems."""
    source = shipped_folder("rainbow_policy_full")
    for arm in ("full", "rho0.5"):
        shutil.copytree(source, tmp_path / RAINBOW_ARMS[arm][0])
    table = arm_one_step(n=12, mutations=(1, 2), checkpoints=tmp_path)
    assert list(table["arm"]) == ["full", "full", "rho0.5", "rho0.5"]
    assert list(table["rho"]) == [0.2, 0.2, 0.5, 0.5]
    by_arm = table.pivot(index="mutations", columns="arm", values="solved")
    assert (by_arm["full"] == by_arm["rho0.5"]).all()
    env = make_env("rainbow")
    model, _ = load_model(source)
    decoder = Decoder(model, Tokenizer(env.grammar, model.config.max_positions))
    for k in (1, 2):
        expected = one_step_solve_rate(decoder, env, mutation_problems(env, 12, k, 0),
                                       model.config.image_size, 0)
        assert by_arm.loc[k, "full"] == expected


def test_doubling_fit_recovers_a_log_linear_curve_and_reads_off_a_bar():
    examples = np.array([1.25e5, 5e5, 1e6, 3e6, 6.7e6])
    rates = 0.12 + 0.04 * np.log2(examples / 1e6)
    per_doubling, at_1m = doubling_fit(examples, rates)
    assert per_doubling == pytest.approx(0.04) and at_1m == pytest.approx(0.12)
    needed = examples_to_reach(0.5, per_doubling, at_1m)
    # 0.38 above the 1 M rate at 0.04 a doubling: 9.5 doublings
    assert needed == pytest.approx(1e6 * 2 ** 9.5)
    assert examples_to_reach(0.5, 0.0, 0.3) == float("inf")


def test_doubling_fit_matches_an_independent_least_squares_solve(rng):
    examples = rng.uniform(1e5, 1e7, 12)
    rates = rng.uniform(0, 0.4, 12)
    x = np.log2(examples / 1e6)
    design = np.stack([x, np.ones_like(x)], axis=1)
    expected, *_ = np.linalg.lstsq(design, rates, rcond=None)
    assert doubling_fit(examples, rates) == pytest.approx(tuple(expected))


def test_doubling_fit_refuses_what_no_line_fits():
    with pytest.raises(ValueError, match="two or more distinct"):
        doubling_fit([1e6, 1e6], [0.1, 0.2])
    with pytest.raises(ValueError, match="one length"):
        doubling_fit([1e6, 2e6, 4e6], [0.1, 0.2])


def test_a_plan_run_in_a_worker_and_in_process_writes_the_same_settings(tmp_path):
    """``Run.evaluate_args`` (the worker's command) and ``Run.run`` (a notebook's process)
    make one search: the settings file of each names the same starts and start temperature."""
    from tdlib.evaluation import main as evaluate_main
    from tdlib.paper.plans import Run
    run = Run("csg2d_hard", "random-search", "pixel", starts=3, start_temperature=0.5)
    assert "starts3t0.5" in run.output(tmp_path, 4, 0).name
    in_process = run.run(4, 0, tmp_path / "a", limit=1, progress=False)
    assert evaluate_main(run.evaluate_args(4, 0, tmp_path / "b", limit=1)) == 0
    settings = [json.loads(Path(f"{folder / in_process.name}.json").read_text())
                for folder in (tmp_path / "a", tmp_path / "b")]
    for record in settings:
        record.pop("models")
    assert settings[0] == settings[1]
    assert (settings[0]["starts"], settings[0]["start_temperature"]) == (3, 0.5)


def test_runs_of_another_value_network_are_kept_apart_and_out_of_figure_4(tmp_path, rng):
    shipped = write_run(tmp_path, "csg2d", "td-search", "value", 0, 100, [5, None, 7])
    (tmp_path / "x").mkdir()
    other = write_run(tmp_path / "x", "csg2d", "td-search", "value", 0, 100, [None, None, 7])
    settings = json.loads(other.with_suffix(".csv.json").read_text())
    settings["checkpoints"] = {"value": "results/training/another_value"}
    moved = tmp_path / "other.csv"
    other.replace(moved)
    moved.with_suffix(".csv.json").write_text(json.dumps(settings))
    runs, left_out = select_runs(load_runs(tmp_path))
    assert not left_out and runs["file"].nunique() == 2
    assert set(runs["value"]) == {"", "another_value"}
    table = solved_table(runs, budgets=(100,))
    assert table["solved_mean"].tolist() == [pytest.approx(2 / 3)]  # the shipped run alone
    assert shipped.name in set(runs["file"])


def test_the_configuration_table_keeps_candidate_networks_apart_against_brute_force(tmp_path,
                                                                                    rng):
    truth = {}
    for seed in range(2):
        for value in ("", "cand"):
            e = random_expansions(rng, 12, 300)
            (tmp_path / value).mkdir(exist_ok=True)
            path = write_run(tmp_path / value, "csg2d_hard", "td-search", "value", seed, 300, e)
            settings = json.loads(path.with_suffix(".csv.json").read_text())
            if value:
                settings["checkpoints"] = {"value": f"results/training/{value}"}
            moved = tmp_path / "all" / f"{value}_{path.name}"
            moved.parent.mkdir(exist_ok=True)
            path.replace(moved)
            moved.with_suffix(".csv.json").write_text(json.dumps(settings))
            truth[(value, seed)] = e
    runs, _ = select_runs(load_runs(tmp_path / "all"))
    table = configuration_table(runs, (100, 300))
    for value in ("", "cand"):
        for budget in (100, 300):
            rates = [np.mean([x is not None and x <= budget for x in truth[(value, s)]])
                     for s in range(2)]
            row = table[(table["value"] == value) & (table["budget"] == budget)].iloc[0]
            assert row["solved_mean"] == pytest.approx(np.mean(rates))
            assert row["solved_std"] == pytest.approx(np.std(rates, ddof=1))
            assert (row["seeds"], row["problems"]) == (2, 12)


def test_the_benchmark_report_keeps_a_search_variant_apart_from_the_plain_search(tmp_path, rng):
    """results/benchmarks.md's search section: one row per configuration, counted by brute force."""
    report = runpy.run_path(str(Path(__file__).resolve().parents[1] / "benchmarks" / "report.py"))
    plain = random_expansions(rng, 12, 300)
    started = random_expansions(rng, 12, 300)
    write_run(tmp_path, "csg2d_hard", "td-search", "value", 0, 300, plain)
    (tmp_path / "variant").mkdir()  # the same file name: written apart, then renamed
    variant = write_run(tmp_path / "variant", "csg2d_hard", "td-search", "value", 0, 300, started)
    settings = json.loads(variant.with_suffix(".csv.json").read_text())
    settings.update(starts=64, start_temperature=0.1)
    (tmp_path / "starts64.csv.json").write_text(json.dumps(settings))
    shutil.move(variant, tmp_path / "starts64.csv")
    rows = [line.split(" | ") for line in report["evaluation_speed"](tmp_path).splitlines()
            if line.startswith("| csg2d_hard")]
    assert len(rows) == 2
    by_label = {row[1]: row for row in rows}
    for label, expansions in [("TD search (value)", plain),
                              ("TD search (value) [start_temperature=0.1 starts=64]", started)]:
        solved = sum(e is not None for e in expansions)
        assert by_label[label][3] == f"{solved} / {len(expansions)}"
