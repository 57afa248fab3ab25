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
        """Decode at most ``longest`` tokens (then ``<EOS>``) after each context's ``<EDIT>``.

        Rows are sorted by prompt length and prefilled in groups, so little compute goes to
        padding; rows that have emitted ``<EOS>`` leave the batch once they are half of it.
        """
        model, cfg, con = self.model, self.config, self.constraint
        device = self.device
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
        cache = model.new_cache(b, p + width + longest, device, dtype)
        order = torch.from_numpy(rows)
        logits = torch.empty(b, cfg.vocab_size, device=device)
        with _autocast(device):
            prefix = model.encoder(current[order].to(device), target[order].to(device))
            for g in range(0, b, PREFILL_GROUP):
                group = rows[g:g + PREFILL_GROUP]
                w = int(lengths[group].max())
                tokens = torch.full((len(group), w), PAD, dtype=torch.long)
                for j, i in enumerate(group):
                    tokens[j, :lengths[i]] = torch.tensor(list(contexts[i]) + [EDIT])
                view = [(k[g:g + len(group)], v[g:g + len(group)]) for k, v in cache]
                logits[g:g + len(group)] = model.prefill(
                    prefix[g:g + len(group)], tokens.to(device),
                    torch.from_numpy(lengths[group]).to(device), view).float()
        at_host = p + lengths[rows]
        at = torch.from_numpy(at_host).to(device)

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

        out = [[] for _ in range(b)]
        logprob = np.zeros(b)
        first_logprob = np.zeros(b)
        done = np.zeros(b, bool)
        for t in range(longest + 1):
            row_states, row_done = states[rows], done[rows]
            allowed = np.zeros((len(rows), self.tok.vocab_size), bool)
            live = ~row_done & (row_states >= 0)
            if live.any():
                allowed[live] = con.allowed(row_states[live], np.full(live.sum(), longest + 1 - t))
            if t == 0 and first_mask is not None:
                picking = row_states < 0
                allowed[picking] = first_mask[rows[picking]]
            allowed[row_done, PAD] = True
            stuck = np.flatnonzero(~allowed.any(1))
            if len(stuck):
                raise ValueError(f"sequence {int(rows[stuck[0]])} has no valid continuation "
                                 f"within {longest} tokens (context too long for the model?)")
            masked = logits.masked_fill(~torch.from_numpy(allowed).to(device), float("-inf"))
            if temperature > 0:
                probs = torch.softmax(masked / temperature, dim=-1)
                choice = torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0]
            else:
                choice = masked.argmax(dim=-1).cpu()
            chosen = masked.gather(1, choice.to(device)[:, None])[:, 0]
            chosen_logp = (chosen - torch.logsumexp(masked, dim=-1)).cpu().numpy()
            choice_np = choice.numpy()
            active = np.flatnonzero(~row_done)
            seqs = rows[active]
            logprob[seqs] += chosen_logp[active]
            if t == 0:
                first_logprob[seqs] = chosen_logp[active]
            ending = choice_np[active] == EOS
            done[seqs[ending]] = True
            emitting, tokens_out = seqs[~ending], choice_np[active[~ending]]
            for i, token in zip(emitting, tokens_out):
                out[i].append(int(token))
            chose_pos = states[emitting] < 0
            for i, token in zip(emitting[chose_pos], tokens_out[chose_pos]):
                states[i] = pos_choices[i][int(token) - self.tok.pos_offset]
            stepping, step_tokens = emitting[~chose_pos], tokens_out[~chose_pos]
            if len(stepping):
                nxt = con.transitions[states[stepping], step_tokens]
                for j in np.flatnonzero(nxt < 0):  # first visit: build the state
                    nxt[j] = con.step(int(states[stepping[j]]), int(step_tokens[j]))
                states[stepping] = nxt
            if done.all() or t == longest:
                break
            keep = np.flatnonzero(~done[rows])
            if len(keep) <= len(rows) // 2:  # finished rows leave the batch
                index = torch.from_numpy(keep).to(device)
                cache = [(k.index_select(0, index), v.index_select(0, index)) for k, v in cache]
                rows, at, choice = rows[keep], at[index], choice[torch.from_numpy(keep)]
                at_host = at_host[keep]
            with _autocast(device):
                logits = model.step(choice.to(device), at, cache, int(at_host.max()) + 1).float()
            at, at_host = at + 1, at_host + 1
        return [Decoded(out[i], float(logprob[i]), float(first_logprob[i])) for i in range(b)]


def _autocast(device):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.device(device).type == "cuda")
