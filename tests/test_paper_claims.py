"""The ablation claims of notebook 09 (tdlib.paper.claims) on small tables built by hand, where
each verdict is known: a difference counts beyond twice its binomial standard error (worked out
here by hand), and arms that solve no more than their shared start cannot be told apart."""

import math

import pandas as pd
import pytest

from tdlib.paper.claims import STILL, policy_claims, search_claims

RHO = {"full": 0.2, "no_reverse_path": 0.2, "no_current_image": 0.2, "no_noising": 1.0,
       "rho0.0": 0.0, "rho0.1": 0.1, "rho0.5": 0.5}
PROBLEMS, SEEDS = 256, 5


def table(rates: dict) -> pd.DataFrame:
    """Figure 5's table from ``{(arm, method, budget): solve rate}``."""
    return pd.DataFrame([{"arm": arm, "rho": RHO[arm], "method": method, "seeds": SEEDS,
                          "budget": budget, "problems": PROBLEMS, "solved_mean": rate,
                          "solved_std": 0.01}
                         for (arm, method, budget), rate in rates.items()])


def start(rate: float = 0.1) -> pd.DataFrame:
    """Every arm's start (the shared AR program) at one expansion."""
    return table({(arm, method, 1): rate for arm in RHO for method in ("td-rollout", "td-search")})


def two_se(a: float, b: float, trials: int = PROBLEMS * SEEDS) -> float:
    return 2 * math.sqrt(a * (1 - a) / trials + b * (1 - b) / trials)


def verdicts(claims: pd.DataFrame, column: str = "here") -> dict:
    keys = ["paper's claim", "method"] if "method" in claims else ["paper's claim"]
    return {tuple(row[k] for k in keys): row[column] for _, row in claims.iterrows()}


def rollout_rates(rho05: float = 0.80, budget: int = 100) -> dict:
    """TD rollouts that move past their start (0.1): full 0.60, No Current Image 0.20, No
    Reverse Path as full at 10 expansions and 0.01 behind it at ``budget``; the rho sweep
    peaks at rho = 0.5 with ``rho05``."""
    rates = {("full", "td-rollout", 10): 0.30, ("no_reverse_path", "td-rollout", 10): 0.30,
             ("full", "td-rollout", budget): 0.60,
             ("no_current_image", "td-rollout", budget): 0.20,
             ("no_reverse_path", "td-rollout", budget): 0.59,
             ("rho0.0", "td-rollout", budget): 0.30, ("rho0.1", "td-rollout", budget): 0.50,
             ("rho0.5", "td-rollout", budget): rho05,
             ("no_noising", "td-rollout", budget): 0.10}
    # TD search that never gets past the start: every arm at the start's rate
    for arm in ("full", "no_current_image", "no_reverse_path"):
        for at in (10, budget):
            rates[(arm, "td-search", at)] = 0.10
    return rates


def test_search_claims_on_a_table_whose_verdicts_are_known():
    assert two_se(0.6, 0.2) < 0.4 and two_se(0.6, 0.59) > 0.01 and two_se(0.6, 0.8) < 0.2
    claims = search_claims(table(rollout_rates()), start(), budget=100)
    assert list(claims.columns) == ["paper's claim", "method", "here", "measured"]
    assert verdicts(claims) == {
        ("No Current Image hurts", "td-rollout"): "holds",  # +40 points, 2 s.e. 3.5
        ("the reverse path helps at small budgets", "td-rollout"): "cannot be told apart",
        ("full and No Reverse Path end close", "td-rollout"): "holds",  # 1 point apart
        ("No Current Image hurts", "td-search"): STILL,
        ("the reverse path helps at small budgets", "td-search"): STILL,
        ("full and No Reverse Path end close", "td-search"): STILL,
        ("rho = 0.2 is best", "td-rollout"): "does not hold",  # rho = 0.5 leads by 20 points
    }
    measured = verdicts(claims, "measured")
    assert measured[("No Current Image hurts", "td-rollout")] == (
        f"full 60.0% vs no_current_image 20.0% (td-rollout, 100 expansions; difference +40.0%, "
        f"2 s.e. {two_se(0.6, 0.2):.1%})")
    assert measured[("rho = 0.2 is best", "td-rollout")].startswith("best rho 0.5 (80.0%); ")


def test_a_rho_within_twice_the_standard_error_of_the_full_arm_leaves_rho_0_2_best():
    claims = search_claims(table(rollout_rates(rho05=0.61)), start(), budget=100)
    assert verdicts(claims)[("rho = 0.2 is best", "td-rollout")] == "holds"


def test_a_sweep_that_never_leaves_its_start_cannot_tell_the_best_rho():
    rates = {key: 0.1 for key in rollout_rates()}
    claims = search_claims(table(rates), start(), budget=100)
    assert verdicts(claims)[("rho = 0.2 is best", "td-rollout")] == (
        "cannot be told: no rho solves more than its start")
    assert set(verdicts(claims).values()) == {STILL, "cannot be told: no rho solves more than "
                                                     "its start"}


def test_an_arm_without_rows_is_not_measured():
    rates = {key: rate for key, rate in rollout_rates().items() if key[0] != "no_current_image"}
    claims = verdicts(search_claims(table(rates), start(), budget=100))
    assert claims[("No Current Image hurts", "td-rollout")] == "not measured"
    assert claims[("No Current Image hurts", "td-search")] == "not measured"
    assert claims[("full and No Reverse Path end close", "td-rollout")] == "holds"
    empty = search_claims(table(rollout_rates()).iloc[:0], start(), budget=100)
    assert set(empty["here"]) == {"not measured"} and len(empty) == 6, "no sweep, no rho claim"


def one_step(rates: dict, n: int = 1024) -> pd.DataFrame:
    return pd.DataFrame([{"arm": arm, "rho": RHO[arm], "mutations": 1, "n": n, "solved": rate}
                         for arm, rate in rates.items()])


ONE_EDIT = {"full": 0.50, "no_current_image": 0.30, "no_reverse_path": 0.49, "no_noising": 0.10,
            "rho0.0": 0.45, "rho0.1": 0.48, "rho0.5": 0.52}


@pytest.mark.parametrize("rho05,best", [(0.52, "holds"), (0.70, "does not hold")])
def test_policy_claims_on_one_edit_rates_whose_verdicts_are_known(rho05, best):
    n = 1024
    assert two_se(0.5, 0.3, n) < 0.2 and two_se(0.5, 0.49, n) > 0.01
    assert two_se(0.52, 0.5, n) > 0.02 and two_se(0.7, 0.5, n) < 0.2
    claims = policy_claims(one_step({**ONE_EDIT, "rho0.5": rho05}))
    assert list(claims.columns) == ["paper's claim", "one greedy edit", "measured"]
    assert verdicts(claims, "one greedy edit") == {
        ("No Current Image hurts",): "holds",
        ("the reverse path helps",): "cannot be told apart",
        ("noising helps (No Noising does worse)",): "holds",
        ("rho = 0.2 is best",): best,
    }
    measured = verdicts(claims, "measured")
    assert measured[("No Current Image hurts",)] == (
        f"full 50.0% vs no_current_image 30.0% (n = 1024; difference +20.0%, "
        f"2 s.e. {two_se(0.5, 0.3, n):.1%})")
    assert measured[("rho = 0.2 is best",)] == (
        f"rho 0.0: 45.0%; rho 0.1: 48.0%; rho 0.2: 50.0%; rho 0.5: {rho05:.1%}; rho 1.0: 10.0%")


def test_policy_claims_without_an_arm_are_not_measured():
    claims = verdicts(policy_claims(one_step({k: v for k, v in ONE_EDIT.items()
                                              if k not in ("no_noising", "full")})),
                      "one greedy edit")
    assert set(claims.values()) == {"not measured"}
