"""The package's structure: the study's record (tdlib.paper) sits on the library and never under
it, the library's modules import each other without a circle, and derived seeds keep the values
that every committed checkpoint, test set and table was made with."""

import ast
import random
import zlib
from pathlib import Path

import numpy as np
import pytest

from tdlib import seeds
from tdlib.methods import SearchConfig, problem_seed

PACKAGE = Path(__file__).resolve().parents[1] / "tdlib"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, runtime_only: bool = False) -> set[str]:
    """Every ``tdlib`` module ``path`` imports, anywhere in it (with ``runtime_only``, those
    under ``if TYPE_CHECKING:`` left out)."""
    tree = ast.parse(path.read_text())
    skipped = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped.update(id(n) for n in ast.walk(node))
    names = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name == "tdlib" or name.startswith("tdlib.")}


LIBRARY = [p for p in sorted(PACKAGE.rglob("*.py")) if "paper" not in p.relative_to(PACKAGE).parts]


def test_the_library_never_imports_the_study_record():
    assert len(LIBRARY) > 30
    offenders = {module_name(p): sorted(n for n in imported_modules(p)
                                        if n == "tdlib.paper" or n.startswith("tdlib.paper."))
                 for p in LIBRARY}
    assert not {m: n for m, n in offenders.items() if n}, offenders


def test_the_library_has_no_import_circle():
    modules = {module_name(p): p for p in LIBRARY}
    graph = {name: {n for n in imported_modules(path, runtime_only=True) if n in modules} - {name}
             for name, path in modules.items()}
    state = {}

    def visit(name, trail):
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", "import circle: " + " -> ".join(trail + [name])
        state[name] = "open"
        for other in sorted(graph[name]):
            if other != "tdlib":  # every module's package; tdlib/__init__ imports a few leaves
                visit(other, trail + [name])
        state[name] = "done"

    for name in sorted(graph):
        visit(name, [])


def _reference_held_out_rng(seed, purpose):
    eval_domain = 0xE7A1
    key = np.random.SeedSequence([seed, eval_domain, zlib.crc32(purpose.encode())])
    return random.Random(int(key.generate_state(2, np.uint64)[0] >> 1))


def _reference_worker_seed(seed, worker, rank=0):
    return int(np.random.SeedSequence([seed, rank, worker]).generate_state(2, np.uint64)[0] >> 1)


def _reference_testset_rng(seed, env, hard):
    stream = zlib.crc32(f"{env}:{'hard' if hard else 'plain'}".encode())
    return random.Random(int(np.random.SeedSequence([seed, 0x7E57, stream])
                             .generate_state(2, np.uint64)[0] >> 1))


@pytest.mark.parametrize("seed", [0, 1, 2, 7, 12345])
def test_derived_seeds_keep_the_values_committed_results_were_made_with(seed):
    """Each derivation against its formula written out here on its own (numpy's SeedSequence
    and CRC-32 directly): the same seed, hence the same random draws."""
    for purpose in ("observe", "value", "reliance", "repl", "ar:csg2d", "mutation:csg2d:1"):
        assert (seeds.held_out_rng(seed, purpose).getrandbits(64)
                == _reference_held_out_rng(seed, purpose).getrandbits(64))
    for worker in range(3):
        for rank in range(2):
            assert seeds.worker_seed(seed, worker, rank) == _reference_worker_seed(seed, worker, rank)
    for env in ("csg2d", "csg2d-sketch", "tinysvg", "rainbow"):
        for hard in (False, True):
            stream = f"{env}:{'hard' if hard else 'plain'}"
            assert (seeds.testset_rng(seed, stream).getrandbits(63)
                    == _reference_testset_rng(seed, env, hard).getrandbits(63))
    for index in (0, 1, 31, 10 ** 6):
        assert (seeds.example_rng(seed, index).getrandbits(64)
                == random.Random((seed << 48) + index).getrandbits(64))
        for method in ("td-search", "ar"):
            config = SearchConfig(method, seed=seed)
            assert problem_seed(config, index) == zlib.crc32(f"{seed}:{method}:{index}".encode())


def test_a_derived_seed_is_63_bits_and_its_words_keep_streams_apart():
    values = {seeds.derived_seed(0, domain, 1) for domain in (seeds.EVAL_DOMAIN,
                                                              seeds.TESTSET_DOMAIN, 0)}
    assert len(values) == 3 and all(0 <= v < 2 ** 63 for v in values)
    assert seeds.text_key("observe") == zlib.crc32(b"observe")
