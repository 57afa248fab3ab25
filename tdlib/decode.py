"""Batched, grammar-constrained decoding with a key/value cache (paper §3.3).

Every decoded output is valid by construction: the first token of an edit is masked to the
positions where a node starts, every further token to what the chosen node's rule can still
derive within the remaining token budget (:class:`tdlib.tokens.GrammarConstraint`), so a decoded
edit always yields a program of the language and a decoded program always parses.

The prompt (image prefix, context, ``<EDIT>``) runs through the network once in parallel (prefill);
each further token costs one cached step for the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tdlib.mutation import Edit
from tdlib.tokens import EDIT, EOS, PAD, GrammarConstraint, Tokenizer
from tdlib.tree import Node, SyntaxTree


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
              temperature: float = 0.0, generator: torch.Generator | None = None
              ) -> list[tuple[Edit, Decoded]]:
        """One edit per program: greedy (``temperature=0``) or sampled."""
        contexts = [self.tok.encode_program(t) for t in trees]
        starts = []
        for tree in trees:
            choices = {k: self.constraint.start(loc.node.rule)
                       for k, loc in self.tok.node_starts(tree).items()
                       if k < self.tok.max_positions}
            starts.append(choices)
        # <POS k>, then at most max_edit_tokens replacement tokens.
        decoded = self._generate(current, target, contexts, starts, temperature, generator,
                                 self.config.max_edit_tokens + 1)
        return [(self.tok.decode_edit(tree, d.tokens), d) for tree, d in zip(trees, decoded)]

    @torch.no_grad()
    def programs(self, target: torch.Tensor, temperature: float = 0.0,
                 generator: torch.Generator | None = None) -> list[tuple[Node, Decoded]]:
        """Whole programs from target images alone (the autoregressive baseline)."""
        current = torch.zeros_like(target)
        start = self.constraint.start()
        longest = self.config.context - self.config.prefix_tokens - 2  # <EDIT> and <EOS>
        decoded = self._generate(current, target, [[] for _ in range(len(target))],
                                 [start] * len(target), temperature, generator, longest)
        return [(self.tok.decode_program(d.tokens), d) for d in decoded]

    @torch.no_grad()
    def sequences(self, current, target, contexts: list[list[int]], start_states: list[int],
                  temperature: float = 0.0, generator=None) -> list[Decoded]:
        """Free-form constrained decoding from given automaton states (e.g. REPL Flow steps)."""
        return self._generate(current, target, contexts, start_states, temperature, generator,
                              self.config.max_edit_tokens)

    # -------------------------------------------------------------- the loop
    def _generate(self, current, target, contexts, starts, temperature, generator, longest):
        """Decode at most ``longest`` tokens (then ``<EOS>``) after each context's ``<EDIT>``."""
        model, cfg, con = self.model, self.config, self.constraint
        device = self.device
        b = len(contexts)
        p = cfg.prefix_tokens
        width = max((len(c) for c in contexts), default=0)
        # The cache holds the prompt and every emitted token but the final <EOS>.
        longest = min(longest, cfg.context - (p + width + 1))
        total = p + width + 1 + longest
        if longest < 1:
            raise ValueError(f"a context of {width} tokens leaves no room to decode within the "
                             f"model's context of {cfg.context}")

        tokens = torch.full((b, width + 1), PAD, dtype=torch.long)
        positions = torch.zeros((b, p + width + 1), dtype=torch.long)
        positions[:, :p] = torch.arange(p)
        key_valid = torch.zeros((b, total), dtype=torch.bool)
        key_valid[:, :p] = True
        for i, ctx in enumerate(contexts):
            pad = width - len(ctx)
            tokens[i, pad:width] = torch.tensor(ctx, dtype=torch.long)
            tokens[i, width] = EDIT
            positions[i, p + pad:] = torch.arange(p, p + len(ctx) + 1)
            key_valid[i, p + pad:p + width + 1] = True
        next_position = positions[:, -1] + 1
        tokens, positions, key_valid = tokens.to(device), positions.to(device), key_valid.to(device)
        next_position = next_position.to(device)

        dtype = next(model.parameters()).dtype
        cache = model.new_cache(b, total, device, dtype)
        with _autocast(device):
            logits = model.prefill(current.to(device), target.to(device), tokens, positions,
                                   key_valid, cache).float()

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
                    fits = [k for k, state in choices.items()
                            if con.next_min[state].min() <= longest - 1]
                    first_mask[i, [self.tok.pos_offset + k for k in fits]] = True

        out = [[] for _ in range(b)]
        logprob = np.zeros(b)
        first_logprob = np.zeros(b)
        done = np.zeros(b, bool)
        at = p + width + 1
        for t in range(longest + 1):
            budget = np.full(b, longest + 1 - t)
            allowed = np.zeros((b, self.tok.vocab_size), bool)
            live = ~done & (states >= 0)
            if live.any():
                allowed[live] = con.allowed(states[live], budget[live])
            if t == 0 and first_mask is not None:
                rows = states < 0
                allowed[rows] = first_mask[rows]
            allowed[done, PAD] = True
            stuck = np.flatnonzero(~allowed.any(1))
            if len(stuck):
                raise ValueError(f"sequence {int(stuck[0])} has no valid continuation within "
                                 f"{longest} tokens (context too long for the model?)")
            mask = torch.from_numpy(allowed).to(device)
            masked = logits.masked_fill(~mask, float("-inf"))
            if temperature > 0:
                probs = torch.softmax(masked / temperature, dim=-1)
                choice = torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0]
            else:
                choice = masked.argmax(dim=-1).cpu()
            chosen = masked.gather(1, choice.to(device)[:, None])[:, 0]
            chosen_logp = (chosen - torch.logsumexp(masked, dim=-1)).cpu().numpy()
            choice_np = choice.numpy()
            active = ~done
            logprob[active] += chosen_logp[active]
            if t == 0:
                first_logprob[active] = chosen_logp[active]
            done |= active & (choice_np == EOS)
            emitting = np.flatnonzero(active & (choice_np != EOS))
            for i in emitting:
                out[i].append(int(choice_np[i]))
            picking = emitting[states[emitting] < 0]  # rows that just chose their <POS k>
            stepping = emitting[states[emitting] >= 0]
            for i in picking:
                states[i] = pos_choices[i][int(choice_np[i]) - self.tok.pos_offset]
            if len(stepping):
                nxt = con.transitions[states[stepping], choice_np[stepping]]
                for j in np.flatnonzero(nxt < 0):  # first visit: build the state
                    nxt[j] = con.step(int(states[stepping[j]]), int(choice_np[stepping[j]]))
                states[stepping] = nxt
            if done.all() or t == longest:
                break
            key_valid[:, at] = True
            step_tokens = choice.to(device)
            with _autocast(device):
                logits = model.step(step_tokens, next_position, key_valid, cache, at).float()
            next_position = next_position + 1
            at += 1
        return [Decoded(out[i], float(logprob[i]), float(first_logprob[i])) for i in range(b)]


def _autocast(device):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.device(device).type == "cuda")
