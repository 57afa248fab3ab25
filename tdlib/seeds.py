"""Seeds derived from other seeds: one recipe, so that streams that must not overlap never do.

A derived seed is the first 63 bits of ``numpy.random.SeedSequence(words)``: the words name a
stream (the run's seed, a domain constant, a worker or rank, the hash of a purpose), and two
different lists of words give unrelated seeds.  Three kinds of stream are derived so:

* training examples of one DataLoader worker: ``[seed, rank, worker]`` (:func:`worker_seed`);
* held-out problems of the trainer's metrics: ``[seed, EVAL_DOMAIN, crc32(purpose)]``
  (:func:`held_out_rng`);
* test sets: ``[seed, TESTSET_DOMAIN, crc32(stream)]`` (:func:`testset_rng`).

The domain constants keep the three apart.  Two more seeds are plain arithmetic on their run's
seed: example ``i`` of a training run draws from ``Random((seed << 48) + i)`` (:func:`example_rng`,
so a resumed run sees the same examples), and the search on test problem ``i`` from
``crc32("seed:method:i")`` (:func:`tdlib.methods.problem_seed`).  Every committed checkpoint, test
set and table was made with these values: changing a recipe changes every number downstream.
"""

from __future__ import annotations

import random
import zlib

import numpy as np

EVAL_DOMAIN = 0xE7A1  # held-out problems of the metrics
TESTSET_DOMAIN = 0x7E57  # test sets


def derived_seed(*words: int) -> int:
    """A 63-bit seed from a list of integers (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence(list(words)).generate_state(2, np.uint64)[0] >> 1)


def text_key(text: str) -> int:
    """A text as one seed word (its CRC-32)."""
    return zlib.crc32(text.encode())


def worker_seed(seed: int, worker: int, rank: int = 0) -> int:
    """A distinct, reproducible seed per (seed, process rank, DataLoader worker)."""
    return derived_seed(seed, rank, worker)


def example_rng(seed: int, index: int) -> random.Random:
    """The random source of example ``index`` of a training run seeded ``seed``."""
    return random.Random((int(seed) << 48) + int(index))


def held_out_rng(seed: int, purpose: str) -> random.Random:
    """The random source of held-out problems drawn for ``purpose`` (never a training stream)."""
    return random.Random(derived_seed(seed, EVAL_DOMAIN, text_key(purpose)))


def testset_rng(seed: int, stream: str) -> random.Random:
    """The random source a test set draws its problems' seeds from."""
    return random.Random(derived_seed(seed, TESTSET_DOMAIN, text_key(stream)))
