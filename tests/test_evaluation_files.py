"""Evaluation files lose nothing and mix nothing: torn rows, other test sets, two writers."""

import csv
import fcntl
import json
from dataclasses import replace

import pytest

from tdlib.evaluation import evaluate_testset, main as evaluate_main
from tdlib.layout import project_root
from tdlib.methods import SearchConfig

HARD = project_root() / "results" / "testsets" / "csg2d_hard.jsonl"
CONFIG = SearchConfig("random-search", budget=10, score="pixel", beam=4)


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def without_seconds(table):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in table]


@pytest.mark.parametrize("torn", ["4,0,,10,0.0", "1", "5,1,3,3,0.012345,(Circle 4 8"])
def test_a_row_torn_by_a_dying_run_is_dropped_and_run_again(tmp_path, torn, capsys):
    straight = rows(evaluate_testset(HARD, CONFIG, tmp_path / "s.csv", limit=6, progress=False))
    part = tmp_path / "p.csv"
    evaluate_testset(HARD, CONFIG, part, limit=4, progress=False)
    with open(part, "a") as f:
        f.write(torn)  # what a full disk or a kill leaves: no newline
    resumed = rows(evaluate_testset(HARD, CONFIG, part, limit=6, resume=True, progress=False))
    assert without_seconds(resumed) == without_seconds(straight)
    assert "dropped a row cut short" in capsys.readouterr().err


def test_a_resume_with_another_test_set_of_the_same_name_is_refused(tmp_path):
    other = tmp_path / "other" / HARD.name
    other.parent.mkdir()
    lines = HARD.read_text().splitlines(keepends=True)
    other.write_text("".join(lines[:1] + lines[2:]))  # problem 0 left out: another set
    out = tmp_path / "e.csv"
    evaluate_testset(HARD, CONFIG, out, limit=1, progress=False)
    with pytest.raises(ValueError, match="differs in testset_sha256"):
        evaluate_testset(other, CONFIG, out, limit=2, resume=True, progress=False)
    assert len(rows(out)) == 1


def test_a_file_another_evaluation_is_writing_is_refused(tmp_path):
    out = tmp_path / "busy.csv"
    evaluate_testset(HARD, CONFIG, out, limit=1, progress=False)
    with open(out, "a") as holder:  # as the first run holds it while it works
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(ValueError, match="being written by another evaluation"):
            evaluate_testset(HARD, CONFIG, out, limit=2, resume=True, progress=False)
    assert len(rows(out)) == 1
    evaluate_testset(HARD, CONFIG, out, limit=2, resume=True, progress=False)  # free again
    assert [r["index"] for r in rows(out)] == ["0", "1"]


def test_unwritable_outputs_end_in_one_line(tmp_path, capsys):
    base = ["--method", "random-search", "--score", "pixel", "--budget", "5", "--testset",
            str(HARD), "--limit", "1", "--no-progress"]
    assert evaluate_main(base + ["-o", str(tmp_path), "--resume"]) == 2
    assert "is a folder" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert evaluate_main(base + ["-o", str(blocker / "e.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tdlib evaluate: cannot write") and len(err.splitlines()) == 1


def test_committed_settings_without_a_test_set_hash_still_resume(tmp_path):
    out = tmp_path / "old.csv"
    evaluate_testset(HARD, CONFIG, out, limit=1, progress=False)
    settings = out.with_suffix(".csv.json")
    record = json.loads(settings.read_text())
    del record["testset_sha256"]  # as files written before the hash was recorded
    settings.write_text(json.dumps(record))
    evaluate_testset(HARD, CONFIG, out, limit=2, resume=True, progress=False)
    assert len(rows(out)) == 2


def test_settings_from_before_a_search_setting_existed_resume_at_its_default_only(tmp_path):
    out = tmp_path / "old.csv"
    evaluate_testset(HARD, CONFIG, out, limit=1, progress=False)
    settings = out.with_suffix(".csv.json")
    record = json.loads(settings.read_text())
    del record["start_temperature"]  # as files written before the setting existed
    settings.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="differs in start_temperature"):
        evaluate_testset(HARD, replace(CONFIG, start_temperature=0.1), out, limit=2, resume=True,
                         progress=False)
    settings.write_text(json.dumps(record))
    evaluate_testset(HARD, CONFIG, out, limit=2, resume=True, progress=False)
    assert len(rows(out)) == 2


@pytest.mark.parametrize("change, message", [
    (lambda lines: lines[:3] + ['{"index": 3, "program": "(Circle 4 8"}'] + lines[4:],
     "line 4: "),
    (lambda lines: lines[:2] + ["{not json"] + lines[3:], "line 3: not JSON"),
    (lambda lines: lines[:5] + ['{"index": "five"}'], "line 6: a problem has an integer index"),
    (lambda lines: ['{"tdlib_testset": 1, "spec": {"env": "logo"}}'] + lines[1:], "line 1: "),
])
def test_a_malformed_test_set_is_refused_naming_its_file_and_line(tmp_path, capsys, change,
                                                                  message):
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(change(HARD.read_text().splitlines())) + "\n")
    assert evaluate_main(["--method", "ar", "--testset", str(broken), "-o",
                          str(tmp_path / "e.csv"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{broken}, {message}" in err and len(err.splitlines()) == 1, err


def test_a_settings_file_that_is_not_a_record_is_refused(tmp_path):
    out = tmp_path / "e.csv"
    evaluate_testset(HARD, CONFIG, out, limit=1, progress=False)
    out.with_suffix(".csv.json").write_text("[]")
    with pytest.raises(ValueError, match="holds list, not an evaluation's settings"):
        evaluate_testset(HARD, CONFIG, out, limit=2, resume=True, progress=False)
