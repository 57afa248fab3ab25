"""Batched, grammar-constrained decoding with a key/value cache (paper §3.3).

Every decoded output is valid by construction: the first token of an edit is masked to the
positions where a node starts, every further token to what the chosen node's rule can still
derive within the remaining token budget (:class:`tdlib.tokens.GrammarConstraint`), so a decoded
edit always yields a program of the language and a decoded program always parses.

The prompt (image prefix, context, ``<EDIT>``) runs through the network once in parallel (prefill);
each further choice costs one cached network call for the whole batch.  Tokens the grammar forces
(the only one allowed) are emitted without a call and fed with the next one, which saves about a
third of the calls on CSG2D.  Several samples per prompt share its encoding, its prefill and its
cached keys (:class:`tdlib.transformer.DecodeCache`).
Sampling draws from the generator once per network call for the batch's unfinished rows (forced
tokens draw nothing), so a seed gives the same samples for the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tdlib.env import make_env
from tdlib.footprints import batch_footprints, program_footprints
from tdlib.images import image_batch
from tdlib.mutation import Edit
from tdlib.tokens import EDIT, EOS, PAD, GrammarConstraint, Tokenizer
from tdlib.transformer import DecodeCache
from tdlib.tree import Node, SyntaxTree

PREFILL_GROUP = 16  # rows prefilled together (sorted by length: little padding)


@dataclass
class Decoded:
    """One decoded sequence: its tokens (no ``<EDIT>``/``<EOS>``) and log-probabilities."""

    tokens: list[int]
    logprob: float  # summed over every decoded token, under the constrained distribution
    first_logprob: float  # of the first token (the <POS k> of an edit)


class Decoder:
    """Decodes edits (policy), whole programs (AR baseline) or next shapes (REPL Flow)."""

    def __init__(self, model, tokenizer: Tokenizer, constraint: GrammarConstraint | None = None):
        self.model = model
        self.tok = tokenizer
        self.constraint = constraint or GrammarConstraint(tokenizer)
        self.config = model.config

    @property
    def device(self):
        return next(self.model.parameters()).device

    # ---------------------------------------------------------------- public
    @torch.no_grad()
    def edits(self, trees: list[SyntaxTree], current: torch.Tensor, target: torch.Tensor,
              temperature: float = 0.0, generator: torch.Generator | None = None,
              samples: int = 1) -> list[tuple[Edit, Decoded]]:
        """``samples`` edits per program: greedy (``temperature=0``) or sampled.

        The result is problem-major: edit ``j`` of program ``i`` is at ``i * samples + j``.  The
        samples of one program share its image encoding and prompt prefill, so a search that
        asks for several edits per program pays for those once.  Images: a ``B x C x H x W``
        tensor or ``H x W x C`` arrays (as ``env.render`` gives them), at the model's
        ``image_size``.
        """
        current, target = self.images(current, "current"), self.images(target, "target")
        if not len(current) == len(target) == len(trees):
            raise ValueError(f"{len(trees)} programs, {len(current)} current and {len(target)} "
                             "target images: one of each per program")
        contexts = [self.tok.encode_program(t) for t in trees]
        starts = []
        for tree in trees:
            choices = {k: self.constraint.start(loc.node.rule)
                       for k, loc in self.tok.node_starts(tree).items()
                       if k < self.tok.max_positions}
            starts.append(choices)
        footprints = None
        if self.config.footprints:
            env, size = self._footprint_env(), self.config.image_size
            footprints = [program_footprints(env, tree, size) for tree in trees]
        # <POS k>, then at most max_edit_tokens replacement tokens.
        decoded = self._generate(current, target, contexts, starts, temperature, generator,
                                 self.config.max_edit_tokens + 1, samples, footprints)
        return [(self.tok.decode_edit(trees[i // samples], d.tokens), d)
                for i, d in enumerate(decoded)]

    @torch.no_grad()
    def programs(self, target: torch.Tensor, temperature: float = 0.0,
                 generator: torch.Generator | None = None, samples: int = 1
                 ) -> list[tuple[Node, Decoded]]:
        """``samples`` whole programs per target image (the autoregressive baseline), problem-major
        like :meth:`edits`; the samples of one target share its encoding and prefill."""
        target = self.images(target, "target")
        current = torch.zeros_like(target)
        start = self.constraint.start()
        longest = self.config.context - self.config.prefix_tokens - 2  # <EDIT> and <EOS>
        decoded = self._generate(current, target, [[] for _ in range(len(target))],
                                 [start] * len(target), temperature, generator, longest, samples)
        return [(self.tok.decode_program(d.tokens), d) for d in decoded]

    @torch.no_grad()
    def sequences(self, current, target, contexts: list[list[int]], start_states: list[int],
                  temperature: float = 0.0, generator=None) -> list[Decoded]:
        """Free-form constrained decoding from given automaton states (e.g. REPL Flow steps)."""
        return self._generate(current, target, contexts, start_states, temperature, generator,
                              self.config.max_edit_tokens)

    def images(self, images, what: str = "") -> torch.Tensor:
        """``images`` as the ``B x C x S x S`` float tensor the network reads, ``S`` the size it
        was trained at: a tensor passes as it is, ``H x W x C`` arrays are stacked.  Another
        size or channel count is refused: the network would read it without a word and decode
        other edits."""
        if not isinstance(images, torch.Tensor):
            images = image_batch(list(images))
        c, s = self.config.channels, self.config.image_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (c, s, s):
            raise ValueError(f"{what + ' ' if what else ''}images must be {s} x {s} with {c} "
                             f"channel(s), the size this {self.config.env} model was trained at "
                             f"(render with size={s}); got shape {tuple(images.shape)}")
        return images

    def _footprint_env(self):
        env = getattr(self, "_env", None)
        if env is None:
            env = self._env = make_env(self.config.env)
        return env

    # -------------------------------------------------------------- the loop
    def _generate(self, current, target, contexts, starts, temperature, generator, longest,
                  samples=1, footprints=None):
        """Decode at most ``longest`` tokens (then ``<EOS>``) after each context's ``<EDIT>``,
        ``samples`` times per context (sequence ``i * samples + j``).

        Rows are sorted by prompt length and prefilled in groups, so little compute goes to
        padding.  A token the grammar forces (the only one allowed, e.g. the ``)`` that closes a
        circle) is appended without asking the network, and the next call feeds it together with
        the token before it: one network call per real choice, not per token.  Rows that have
        emitted ``<EOS>`` leave the batch once they are half of it.
        """
        model, cfg, con = self.model, self.config, self.constraint
        device = self.device
        if samples < 1:
            raise ValueError(f"samples must be at least 1, not {samples}")
        b = len(contexts)
        if b == 0:
            return []
        p = cfg.prefix_tokens
        lengths = np.array([len(c) + 1 for c in contexts], np.int64)  # with <EDIT>
        width = int(lengths.max(initial=1))
        # The cache holds the prompt and every emitted token but the final <EOS>.
        longest = min(longest, cfg.context - (p + width))
        if longest < 1:
            raise ValueError(f"a context of {width - 1} tokens leaves no room to decode within "
                             f"the model's context of {cfg.context}")
        rows = np.argsort(lengths, kind="stable")  # batch row r decodes sequence rows[r]

        dtype = next(model.parameters()).dtype
        cache = model.new_cache(b, p + width, device, dtype)
        order = torch.from_numpy(rows)
        logits = torch.empty(b, cfg.vocab_size, device=device)
        prompts = np.full((b, width), PAD, np.int64)
        for r, i in enumerate(rows):
            prompts[r, :lengths[i] - 1] = contexts[i]
            prompts[r, lengths[i] - 1] = EDIT
        with _autocast(device):
            current, target = current[order].to(device), target[order].to(device)
            prefix = model.encoder(current, target)
            for g in range(0, b, PREFILL_GROUP):
                group = slice(g, g + PREFILL_GROUP)
                n = lengths[rows[group]]
                view = [layer[:, group] for layer in cache]
                footprint = None
                if footprints is not None:
                    masks, parts = batch_footprints([footprints[i] for i in rows[group]],
                                                    int(n.max()))
                    footprint = model.footprint_embedding(prefix[group], current[group],
                                                          target[group], masks.to(device),
                                                          parts.to(device))
                logits[group] = model.prefill(
                    prefix[group], torch.from_numpy(prompts[group, :int(n.max())]).to(device),
                    torch.from_numpy(n).to(device), view, footprint).float()
        # Every prompt's cache serves its samples, which are consecutive batch rows.
        cache = DecodeCache(cache, torch.from_numpy(p + lengths[rows]).to(device), samples,
                            longest)
        if samples > 1:  # every prompt's logits, once per sample
            copies = torch.from_numpy(np.repeat(np.arange(b), samples)).to(device)
            logits = logits.index_select(0, copies)
            rows = (rows[:, None] * samples + np.arange(samples)).ravel()
            starts = [start for start in starts for _ in range(samples)]
            b *= samples
        at = np.zeros(b, np.int64)  # per batch row: the output index of its next token

        # Per sequence: the automaton state, or -1 while its <POS k> is still to be chosen.
        states = np.zeros(b, np.int64)
        pos_choices: list[dict | None] = [None] * b
        first_mask = None
        for i, start in enumerate(starts):
            if isinstance(start, dict):
                pos_choices[i] = start
                states[i] = -1
            else:
                states[i] = start
        if any(c is not None for c in pos_choices):
            first_mask = np.zeros((b, self.tok.vocab_size), bool)
            for i, choices in enumerate(pos_choices):
                if choices is not None:
                    # Only nodes whose shortest replacement fits what is left after <POS k>.
                    fits = [k for k, state in choices.items() if con.shortest(state) <= longest]
                    first_mask[i, [self.tok.pos_offset + k for k in fits]] = True

        progress = _Progress(con, self.tok.pos_offset, states, pos_choices, longest)
        done = progress.done
        logprob = np.zeros(b)
        first_logprob = np.zeros(b)
        first = True
        while True:
            live = ~done[rows]
            allowed = np.zeros((len(rows), self.tok.vocab_size), bool)
            choosing = live & (states[rows] >= 0)
            if choosing.any():
                allowed[choosing] = progress.allowed(rows[choosing])
            if first and first_mask is not None:
                picking = states[rows] < 0
                allowed[picking] = first_mask[rows[picking]]
            allowed[~live, PAD] = True
            stuck = np.flatnonzero(~allowed.any(1))
            if len(stuck):
                raise ValueError(f"sequence {int(rows[stuck[0]])} has no valid continuation "
                                 f"within {longest} tokens (context too long for the model?)")
            masked = logits.masked_fill(~torch.from_numpy(allowed).to(device), float("-inf"))
            if temperature > 0:
                # Draws for the live rows only: what a sequence draws does not depend on which
                # finished rows are still in the batch.
                drawing = torch.from_numpy(live)
                probs = torch.softmax(masked[drawing.to(device)] / temperature, dim=-1)
                choice = torch.zeros(len(rows), dtype=torch.long)
                choice[drawing] = torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0]
            else:
                choice = masked.argmax(dim=-1).cpu()
            logp = torch.log_softmax(masked, dim=-1)
            chosen_logp = logp.gather(1, choice.to(device)[:, None])[:, 0].cpu().numpy()
            active = np.flatnonzero(live)
            logprob[rows[active]] += chosen_logp[active]
            if first:
                first_logprob[rows[active]] = chosen_logp[active]
            first = False
            # What each row feeds the network next: its choice, then any tokens it forces.
            feeds = [[] for _ in rows]
            progress.emit(rows[active], choice.numpy()[active], active, feeds)
            progress.jump_forward(rows, feeds)
            if done.all():
                break
            for r in np.flatnonzero(done[rows]):  # a forced <EOS> ended it: nothing to feed
                feeds[r] = []
            keep = np.flatnonzero(~done[rows])
            if len(keep) <= len(rows) // 2:  # finished rows leave the batch
                cache.keep_rows(torch.from_numpy(keep).to(device))
                rows, at, feeds = rows[keep], at[keep], [feeds[r] for r in keep]
            n = np.array([len(f) for f in feeds], np.int64)
            tokens = np.full((len(rows), max(1, int(n.max()))), PAD, np.int64)
            for r, f in enumerate(feeds):
                tokens[r, :len(f)] = f
            with _autocast(device):
                logits = model.extend(torch.from_numpy(tokens).to(device),
                                      torch.from_numpy(n).to(device), torch.from_numpy(at).to(device),
                                      cache, int((at + n).max())).float()
            at = at + n
        return [Decoded(progress.out[i], float(logprob[i]), float(first_logprob[i]))
                for i in range(b)]


class _Progress:
    """What every sequence of one decoding call has emitted so far, and its automaton state."""

    def __init__(self, constraint: GrammarConstraint, pos_offset: int, states: np.ndarray,
                 pos_choices: list, longest: int):
        self.constraint, self.pos_offset = constraint, pos_offset
        self.states = states  # automaton state, or -1 while <POS k> is still to be chosen
        self.pos_choices = pos_choices  # per sequence: {k: state after <POS k>} or None
        self.out: list[list[int]] = [[] for _ in states]
        self.done = np.zeros(len(states), bool)
        self.budget = np.full(len(states), longest + 1)  # tokens left to emit, <EOS> included

    def allowed(self, seqs: np.ndarray) -> np.ndarray:
        return self.constraint.allowed(self.states[seqs], self.budget[seqs])

    def emit(self, seqs, tokens, batch_rows, feeds) -> None:
        """Sequences ``seqs`` (in batch rows ``batch_rows``) take ``tokens``; every token but
        ``<EOS>`` is also appended to its row's feed (what the network reads next)."""
        states = self.states
        self.budget[seqs] -= 1
        ending = tokens == EOS
        self.done[seqs[ending]] = True
        seqs, tokens, batch_rows = seqs[~ending], tokens[~ending], batch_rows[~ending]
        for i, token, r in zip(seqs, tokens, batch_rows):
            self.out[i].append(int(token))
            feeds[r].append(int(token))
        chose_pos = states[seqs] < 0
        for i, token in zip(seqs[chose_pos], tokens[chose_pos]):
            states[i] = self.pos_choices[i][int(token) - self.pos_offset]
        stepping, step_tokens = seqs[~chose_pos], tokens[~chose_pos]
        if len(stepping):
            nxt = self.constraint.transitions[states[stepping], step_tokens]
            for j in np.flatnonzero(nxt < 0):  # first visit: build the state
                nxt[j] = self.constraint.step(int(states[stepping[j]]), int(step_tokens[j]))
            states[stepping] = nxt

    def jump_forward(self, seqs, feeds) -> None:
        """Emit every token the grammar forces (the only one allowed within the budget)."""
        while True:
            live = np.flatnonzero(~self.done[seqs])
            if not len(live):
                return
            allowed = self.allowed(seqs[live])
            forced = allowed.sum(1) == 1
            if not forced.any():
                return
            rows = live[forced]
            self.emit(seqs[rows], allowed[forced].argmax(1), rows, feeds)


def _autocast(device):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.device(device).type == "cuda")
