"""Ship candidate networks together with the evaluations made with them, in one step.

A retrained network makes every committed evaluation that reads it stale, so the candidates are
evaluated first, into a staging folder, while the shipped networks and their evaluations stay as
they are (``--candidate`` names the candidate's folder to every job that reads its kind):

    python tools/run_evaluations.py --queue csg2d/0,1,2,3,4 csg2d_hard/0,1,2,3,4 \\
        --candidate policy=results/training/csg2d_policy_next --output-dir results/eval_next
    python tools/ship_candidate.py csg2d_policy=results/training/csg2d_policy_next \\
        --previous csg2d_policy=csg2d_policy_210k --staged results/eval_next

``--previous`` keeps the shipped checkpoint under a new name (the records of checkpoints that
started from it are rewritten to name it so, with a note); the candidate is copied in without its
optimizer state; then each staged evaluation moves into ``results/eval`` over the file of the same
name, once its settings show that it read exactly the candidate's weights (their ``checkpoints``
entry, which named the candidate's folder, is dropped: it is the shipped network now).  The
registry, ``tdlib.presets.SHIPPED_MODELS``, is edited by hand (the tool says what to add); the
tests in ``tests/test_shipped.py`` then check that everything agrees.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from tdlib.evaluation import file_sha256
from tdlib.layout import project_root

CHECKPOINTS = Path("results") / "checkpoints"
EVAL = Path("results") / "eval"


def _records(root: Path):
    for record in sorted((root / "results").glob("**/model.json")):
        yield record, json.loads(record.read_text())


def repoint(root: Path, old: str, new: str, why: str) -> list[Path]:
    """Rewrite every record under ``results/`` that started from the folder ``old`` (its
    ``train.init_from`` and ``initialised_from.folder``) to name ``new``, noting ``why``;
    returns the records rewritten."""
    rewritten = []
    for path, record in _records(root):
        started = record.get("initialised_from") or {}
        if record.get("train", {}).get("init_from") != old and started.get("folder") != old:
            continue
        record["train"]["init_from"] = new
        if started:
            started["folder"] = new
        record["init_from_renamed"] = f"the source folder was {old} when this ran; {why}"
        path.write_text(json.dumps(record, indent=2) + "\n")
        rewritten.append(path)
    return rewritten


def rename_shipped(root: Path, old: str, new: str) -> list[Path]:
    """Move ``results/checkpoints/<old>`` to ``<new>``, repointing the records that started
    from it; returns those records."""
    source, target = root / CHECKPOINTS / old, root / CHECKPOINTS / new
    if not (source / "model.json").exists():
        raise ValueError(f"{source} holds no checkpoint to rename")
    if target.exists():
        raise ValueError(f"{target} exists; choose another name for the previous network")
    source.rename(target)
    return repoint(root, str(CHECKPOINTS / old), str(CHECKPOINTS / new),
                   f"it was renamed {new} when a retrained network shipped in its place "
                   "(same weights)")


def ship(root: Path, name: str, candidate: Path) -> Path:
    """Copy a candidate checkpoint (all but its optimizer state) to ``results/checkpoints/<name>``."""
    candidate = candidate if candidate.is_absolute() else root / candidate
    if not (candidate / "model.json").exists():
        raise ValueError(f"{candidate} holds no checkpoint")
    target = root / CHECKPOINTS / name
    if target.exists():
        raise ValueError(f"{target} exists; keep it under another name with --previous "
                         f"{name}=NEW_NAME")
    target.mkdir(parents=True)
    for path in sorted(candidate.iterdir()):
        if path.is_file() and not path.name.startswith("train_state"):
            shutil.copy2(path, target / path.name)
    repoint(root, str(candidate.relative_to(root)), str(target.relative_to(root)),
            f"it ships as {name} (same weights)")
    return target


def staged_moves(root: Path, staged: Path, candidates: list[Path]) -> list[tuple[Path, dict]]:
    """Check every evaluation of ``staged`` before anything changes: each network it read from
    a folder of its own must be one of ``candidates``, with the weights that folder holds.
    Returns each settings file with the settings it will have in ``results/eval``."""
    staged = staged if staged.is_absolute() else root / staged
    if not staged.is_dir():
        raise ValueError(f"{staged} is not a folder of evaluations")
    known = {(root / c).resolve(): c for c in candidates}
    moves = []
    for settings_path in sorted(staged.glob("*.csv.json")):
        settings = json.loads(settings_path.read_text())
        named = settings.get("checkpoints", {})
        for kind, folder in list(named.items()):
            candidate = known.get((root / folder).resolve())
            if candidate is None:
                raise ValueError(f"{settings_path.name} read {kind} {folder}, which this call "
                                 "does not ship")
            weights = file_sha256(root / candidate / "model.safetensors")
            if settings["models"][kind].get("weights_sha256") != weights:
                raise ValueError(f"{settings_path.name} read other {kind} weights than "
                                 f"{candidate} holds now")
            del named[kind]
        if not named:
            settings.pop("checkpoints", None)
        moves.append((settings_path, settings))
    return moves


def promote(root: Path, moves: list[tuple[Path, dict]]) -> list[Path]:
    """Move checked evaluations into ``results/eval``, over files of the same name."""
    promoted = []
    for settings_path, settings in moves:
        csv = settings_path.with_suffix("")
        (root / EVAL / settings_path.name).write_text(
            json.dumps(settings, indent=1, sort_keys=True) + "\n")
        csv.replace(root / EVAL / csv.name)
        settings_path.unlink()
        promoted.append(root / EVAL / csv.name)
    return promoted


def _pairs(items: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise SystemExit(f"ship_candidate: {what} {item!r} is not NAME=VALUE")
        pairs[key] = value
    return pairs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidates", nargs="+", metavar="NAME=FOLDER",
                        help="shipped name and the candidate checkpoint folder to ship as it")
    parser.add_argument("--previous", nargs="*", default=[], metavar="NAME=NEW_NAME",
                        help="keep the shipped NAME under NEW_NAME (else NAME must be new)")
    parser.add_argument("--staged", type=Path, help="folder of evaluations made with the "
                                                    "candidates, to move into results/eval")
    args = parser.parse_args(argv)
    root = project_root()
    candidates = _pairs(args.candidates, "candidate")
    try:
        moves = staged_moves(root, args.staged, [Path(f) for f in candidates.values()]) \
            if args.staged else []
        for name, new in _pairs(args.previous, "--previous").items():
            for path in rename_shipped(root, name, new):
                print(f"{path.relative_to(root)}: now starts from {new}")
            print(f"kept {name} as {new}: register it in SHIPPED_MODELS (the entry {name} had)")
        for name, folder in candidates.items():
            target = ship(root, name, Path(folder))
            print(f"shipped {folder} as {target.relative_to(root)}: its SHIPPED_MODELS entry "
                  "must say how it was made (see its model.json)")
        for path in promote(root, moves):
            print(f"promoted {path.relative_to(root)}")
    except (ValueError, OSError) as err:
        print(f"ship_candidate: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
