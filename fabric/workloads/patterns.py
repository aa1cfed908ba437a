"""The traffic-pattern registry: every pattern type a profile may name, declared once.

A :class:`PatternType` says how a profile's ``type: NAME`` section is parsed, which generator turns
it into schedule rows, which message kinds (traffic classes) those rows carry and what each kind
does for the token derating η, the endpoints later patterns may refer to (``same_edge_as: kv.decode``),
and the profile key that sets its offered load. Everything else reads from here:

* profile parsing (:mod:`fabric.workloads.profile`): the valid types, their parsers and endpoints;
* generation (:func:`fabric.workloads.generate`): the generators, and the key named when a load is refused;
* the schedule contract (:mod:`fabric.schedule`): ``KINDS`` and ``ETA_KINDS``;
* the report (:mod:`fabric.report.summary`): the order classes are shown in, and which kinds set each η.

Adding a pattern type is its parser (next to the others in ``profile.py``), its generator, and one
entry in :data:`PATTERNS`; ``tests/unit/test_patterns.py`` checks the entry is all the parser, the
generator and the schedule need.

Import order: :mod:`fabric.schedule` imports this module, so nothing that this module imports
(the ``fabric.workloads`` package, its parsers and generators) may import ``fabric.schedule`` at
module level; ``fabric.workloads.generate`` imports it when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from fabric.workloads import collectives, disagg, moe, profile, synthetic

# The token deratings a message kind can set (docs/economics.md): KV transfers set TTFT (η_KV),
# MoE all-to-all and tensor-parallel all-reduce set TPOT (η_MoE, η_TP).
ETA_ROLES = ("kv", "moe", "tp")


@dataclass(frozen=True)
class MessageKind:
    """One traffic class of the schedule (its ``kind`` column)."""

    name: str
    eta_role: str | None       # which η its completion sets (one of ETA_ROLES), None if none
    # Its completion is a figure fabric reports (an η, or an incast's completion time), so the scale
    # choice keeps its messages several packets long and fidelity checks their resolution.
    completion_matters: bool
    description: str


@dataclass(frozen=True)
class PatternType:
    """One pattern type of a workload profile."""

    name: str                  # the profile's `type:`
    parser: Callable           # (Section, common fields, reference check) -> profile.Pattern subclass
    generator: Callable        # (pattern, HostContext, numpy Generator, Rows) -> notes (list[str])
    kinds: tuple[MessageKind, ...]
    endpoints: tuple[str, ...]  # host sets other patterns may refer to as `<pattern name>.<endpoint>`
    load_key: str | None       # key under the pattern that sets its offered load; None: its `load`/`rate`
    description: str

    @property
    def eta_role(self) -> str | None:
        """The η this pattern's traffic sets (None for patterns that only load the fabric)."""
        roles = {k.eta_role for k in self.kinds} - {None}
        return roles.pop() if roles else None


_KV = MessageKind("kv", "kv", True, "a request's KV cache, prefill → decode, in shards")
# The front end's hops: kilobytes, one or two packets by nature at any scale, so their resolution is
# not a fidelity signal; their completion still enters TTFT (fabric.economics.derating).
_TOKENS = MessageKind("tokens", None, False, "a prompt's token ids, front end → prefill")
_STREAM = MessageKind("stream", None, False, "a decode step's output tokens, decode → front end")
_DISPATCH = MessageKind("a2a_dispatch", "moe", True, "MoE token dispatch to the experts' ranks")
_COMBINE = MessageKind("a2a_combine", "moe", True, "MoE expert outputs back to the tokens' ranks")
_ALLREDUCE = MessageKind("allreduce", "tp", True, "tensor-parallel ring all-reduce chunks")
_INCAST = MessageKind("incast", None, True, "many senders to one receiver at once")
_PERMUTATION = MessageKind("permutation", None, False, "every host to one other host")
_VICTIM = MessageKind("victim", None, False, "a steady flow whose tails show interference")
_BACKGROUND = MessageKind("background", None, False, "uniform background load")

# Declared in the order reports show their classes.
PATTERNS: dict[str, PatternType] = {p.name: p for p in (
    PatternType("disaggregated", profile.parse_disaggregated, disagg.disaggregated, (_KV, _TOKENS, _STREAM),
                ("prefill", "decode", "tokenize", "detokenize"), "arrivals",
                "disaggregated serving: requests arrive, prefill hosts send each one's KV cache to a decode host"),
    PatternType("moe_decode", profile.parse_moe_decode, moe.moe_decode, (_DISPATCH, _COMBINE),
                ("ranks",), "batch_per_rank", "MoE decode steps: all-to-all dispatch and combine per layer"),
    PatternType("allreduce", profile.parse_allreduce, collectives.allreduce, (_ALLREDUCE,),
                ("ranks",), "tokens", "tensor-parallel all-reduce per layer and step"),
    PatternType("incast", profile.parse_incast, synthetic.incast, (_INCAST,),
                ("receiver", "senders"), "message", "periodic incast"),
    PatternType("permutation", profile.parse_permutation, synthetic.permutation, (_PERMUTATION,),
                ("hosts",), None, "random permutation traffic"),
    PatternType("victim", profile.parse_victim, synthetic.victim, (_VICTIM,),
                ("src", "dst"), None, "a victim flow"),
    PatternType("background", profile.parse_background, synthetic.background, (_BACKGROUND,),
                ("hosts", "destinations"), None, "background load"),
)}

# Kinds no pattern generates but a schedule may hold: measurement probes, shown after the others.
OTHER_KINDS: tuple[MessageKind, ...] = (
    MessageKind("probe", None, False, "measurement probes (no pattern type generates them)"),
)

# Two pattern types may share a kind: it is listed once, where it first appears.
ALL_KINDS: tuple[MessageKind, ...] = tuple({k.name: k for p in reversed(PATTERNS.values()) for k in reversed(p.kinds)}
                                           .values())[::-1] + OTHER_KINDS
KINDS: tuple[str, ...] = tuple(k.name for k in ALL_KINDS)
ETA_KINDS: tuple[str, ...] = tuple(k.name for k in ALL_KINDS if k.completion_matters)


def kinds_of_role(role: str) -> tuple[str, ...]:
    """The message kinds whose completion sets η ``role`` (``kv``, ``moe`` or ``tp``)."""
    if role not in ETA_ROLES:
        raise ValueError(f"unknown η role {role!r}; valid: {', '.join(ETA_ROLES)}")
    return tuple(k.name for k in ALL_KINDS if k.eta_role == role)


def eta_role_of(pattern_type: str) -> str | None:
    """The η a pattern type's traffic sets, None for a load-only or unknown type (e.g. from an older run.json)."""
    p = PATTERNS.get(pattern_type)
    return p.eta_role if p else None
