"""Sourced default data: models and accelerators (network parts live in :mod:`fabric.catalog.network`).

The YAML files next to this module are the catalog; this module loads them into frozen
dataclasses and derives the few figures the schedule needs from them, with the formula stated:

* KV bytes per token (docs/economics.md §2): GQA models ``2 × layers × kv_heads × head_dim × bytes``;
  MLA models (DeepSeek-V3) store one latent per layer, ``layers × (kv_lora_rank + rope_dim) × bytes``,
  which the catalog records as ``kv_heads = 1``, ``head_dim = kv_lora_rank + rope_dim``.
* MoE payload per token per selected expert: dispatch ``hidden`` FP8 bytes plus one FP32 scale
  per 128 values, combine ``hidden × 2`` BF16 bytes (DeepEP's formats).
* Prefill tokens/s and decode step time per accelerator (see :class:`Accelerator`), from peak
  dense BF16 TFLOPS and HBM bandwidth times assumed efficiencies (``mfu``, ``hbm_efficiency``),
  which every entry lists under ``assumptions``.

Every entry carries a ``source`` string and an ``assumptions`` tuple; values no public document
gives are listed there. Unknown names raise :class:`~fabric.errors.WorkloadError` listing the
valid ones.

Examples
--------
>>> model("Llama-3-70B").kv_bytes_per_token
327680
>>> model("DeepSeek-V3").kv_bytes_per_token
70272
>>> accelerator("H100").price_per_hour_usd["neocloud"]
1.55
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

from fabric.errors import WorkloadError
from fabric.units import UnitError, parse_rate_bps
from fabric.yamlspec import Section, load_yaml_mapping

CATALOG_DIR = Path(__file__).resolve().parent
MODELS_FILE = CATALOG_DIR / "models.yaml"
ACCELERATORS_FILE = CATALOG_DIR / "accelerators.yaml"
PRICE_TIERS = ("hyperscaler", "neocloud", "rental")
ATTENTION_KINDS = ("gqa", "mla")
# What one host of a design is: an accelerator with its NICs, or a CPU front-end server.
HOST_KINDS = ("accelerator", "cpu")
# DeepEP quantizes dispatch payloads to FP8 with one FP32 scale per 128 values.
FP8_SCALE_BLOCK = 128


@dataclass(frozen=True)
class Model:
    """A model's network-relevant geometry (one catalog entry of ``models.yaml``).

    Dense models have ``experts = top_k = moe_layers = 0``.
    """

    name: str
    layers: int
    hidden: int
    attention_heads: int
    attention: str
    kv_heads: int
    head_dim: int
    kv_bytes_per_element: int
    kv_bytes_per_token: int
    weight_bytes_per_param: float
    params_total: float
    params_active: float
    experts: int
    shared_experts: int
    top_k: int
    moe_layers: int
    expert_popularity_exponent: float
    source: str
    assumptions: tuple[str, ...] = ()

    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def weight_bytes(self) -> float:
        """Bytes of all weights at the released precision."""
        return self.params_total * self.weight_bytes_per_param

    @property
    def dispatch_bytes_per_token(self) -> int:
        """Bytes one token sends to one selected expert in an MoE dispatch (FP8 + scales)."""
        return self.hidden + math.ceil(self.hidden / FP8_SCALE_BLOCK) * 4

    @property
    def combine_bytes_per_token(self) -> int:
        """Bytes one expert returns for one token in an MoE combine (BF16)."""
        return self.hidden * 2

    def kv_bytes(self, tokens: int | float) -> float:
        """KV-cache bytes of ``tokens`` tokens of context."""
        return self.kv_bytes_per_token * tokens


@dataclass(frozen=True)
class Accelerator:
    """One accelerator (one fabric host): network ports, cost, power and compute.

    Compute timing (DESIGN: grounded, formula shown, efficiencies are assumptions)::

        prefill tokens/s = bf16_tflops × 1e12 × mfu / (2 × params_active)
        decode step s    = max(bytes read / (hbm_bandwidth × hbm_efficiency),
                               2 × params_active × tokens / (bf16_tflops × 1e12 × mfu))
    """

    name: str
    vendor: str
    nic_count: int
    nic_rate_bps: int
    price_per_hour_usd: dict[str, float]
    purchase_price_usd: float | None
    power_w: float
    bf16_tflops: float
    hbm_bytes: float
    hbm_bandwidth_bytes_per_s: float
    mfu: float
    hbm_efficiency: float
    source: str
    assumptions: tuple[str, ...] = ()
    # "accelerator", or "cpu": a front-end server (tokenize, detokenize) that serves no model. A
    # CPU entry's price and power are the whole server's; its compute is its tokenizer rates.
    kind: str = "accelerator"
    cores: int = 0
    tokenize_tokens_per_s: float = 0.0      # the whole server, every core busy
    detokenize_tokens_per_s: float = 0.0
    # dict fields make the dataclass unhashable by default; hash on the name instead.
    __hash__ = object.__hash__

    @property
    def is_cpu(self) -> bool:
        return self.kind == "cpu"

    def tokenize_s(self, tokens: float) -> float:
        """One request's tokenization on one core (a request is not split over cores)."""
        return tokens / (self.tokenize_tokens_per_s / self.cores)

    def detokenize_s(self, tokens: float) -> float:
        """Detokenizing ``tokens`` output tokens of one request on one core."""
        return tokens / (self.detokenize_tokens_per_s / self.cores)

    def prefill_tokens_per_s(self, model: Model, mfu: float | None = None) -> float:
        """Prefill throughput of ONE accelerator on ``model`` (tokens/s), compute-bound.

        ``2 × params_active`` FLOPs per token (forward pass); attention's quadratic term is left
        out, which under-states prefill time for very long prompts.
        """
        mfu = self.mfu if mfu is None else mfu
        return self.bf16_tflops * 1e12 * mfu / (2.0 * model.params_active)

    def decode_step_s(self, model: Model, batch: int, context_tokens: float, shards: int = 1,
                      hbm_efficiency: float | None = None, mfu: float | None = None) -> float:
        """Time of one decode step of ``batch`` sequences spread over ``shards`` accelerators.

        Memory term: every step reads the weights held per accelerator (all weights ÷ shards;
        with expert parallelism each rank holds its share of the experts) plus the KV cache of
        the batch (``batch × context_tokens × kv_bytes_per_token ÷ shards``). Compute term:
        ``2 × params_active`` FLOPs per token. The step takes the larger of the two.
        """
        eff = self.hbm_efficiency if hbm_efficiency is None else hbm_efficiency
        mfu = self.mfu if mfu is None else mfu
        bytes_read = (model.weight_bytes + batch * context_tokens * model.kv_bytes_per_token) / shards
        memory_s = bytes_read / (self.hbm_bandwidth_bytes_per_s * eff)
        compute_s = 2.0 * model.params_active * batch / shards / (self.bf16_tflops * 1e12 * mfu)
        return max(memory_s, compute_s)


def _number(sec: Section, name: str, minimum: float = 0.0, allow_zero: bool = False):
    """A positive number; accepts strings like ``80e9`` (PyYAML reads them as strings)."""
    value = sec.raw(name)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise sec.fail(name, f"got {value!r}; expected a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise sec.fail(name, f"got {value!r}; expected a number")
    if value < minimum or (value == minimum and not allow_zero):
        raise sec.fail(name, f"got {value!r}; must be greater than {minimum}")
    return value


def _provenance(sec: Section) -> tuple[str, tuple[str, ...]]:
    source = str(sec.raw("source", "") or "").strip()
    assumptions = sec.raw("assumptions", [])
    if not isinstance(assumptions, list) or not all(isinstance(a, str) and a.strip() for a in assumptions):
        raise sec.fail("assumptions", f"got {assumptions!r}; expected a list of sentences saying why")
    if not source and not assumptions:
        raise sec.fail("source", "every catalog entry needs a source or an assumptions list saying why there is none")
    return source, tuple(a.strip() for a in assumptions)


def parse_model(name: str, data: dict, source_file: str = "<models>") -> Model:
    """Validate one ``models.yaml`` entry and compute its KV bytes per token."""
    sec = Section(data, source_file, name, WorkloadError)
    source, assumptions = _provenance(sec)
    layers = sec.integer("layers", minimum=1)
    hidden = sec.integer("hidden", minimum=1)
    heads = sec.integer("attention_heads", minimum=1)
    attention = sec.choice("attention", ATTENTION_KINDS)
    kv_elem = sec.integer("kv_bytes_per_element", 2, minimum=1, maximum=4)
    if attention == "gqa":
        kv_heads = sec.integer("kv_heads", minimum=1)
        head_dim = sec.integer("head_dim", minimum=1)
        kv_per_token = 2 * layers * kv_heads * head_dim * kv_elem
    else:
        # One latent (kv_lora_rank) plus the decoupled RoPE key per layer, shared by K and V.
        kv_heads = 1
        head_dim = sec.integer("kv_lora_rank", minimum=1) + sec.integer("qk_rope_head_dim", minimum=0)
        kv_per_token = layers * head_dim * kv_elem
    weight_bpp = _number(sec, "weight_bytes_per_param")
    params_total = _number(sec, "params_total")
    params_active = _number(sec, "params_active")
    if params_active > params_total:
        raise sec.fail("params_active", f"got {params_active:g}; cannot exceed params_total {params_total:g}")
    experts = shared = top_k = moe_layers = 0
    exponent = 0.0
    if sec.has("moe"):
        moe = sec.section("moe")
        experts = moe.integer("experts", minimum=2)
        shared = moe.integer("shared_experts", 0, minimum=0)
        top_k = moe.integer("top_k", minimum=1, maximum=experts)
        moe_layers = moe.integer("moe_layers", minimum=1, maximum=layers)
        exponent = moe.number("expert_popularity_exponent", 1.0, minimum=0.0, maximum=4.0)
        moe.finish()
    else:
        sec.raw("moe", None)
    sec.finish()
    return Model(name=name, layers=layers, hidden=hidden, attention_heads=heads, attention=attention,
                 kv_heads=kv_heads, head_dim=head_dim, kv_bytes_per_element=kv_elem,
                 kv_bytes_per_token=int(kv_per_token), weight_bytes_per_param=float(weight_bpp),
                 params_total=float(params_total), params_active=float(params_active),
                 experts=experts, shared_experts=shared, top_k=top_k, moe_layers=moe_layers,
                 expert_popularity_exponent=exponent, source=source, assumptions=assumptions)


def parse_accelerator(name: str, data: dict, source_file: str = "<accelerators>") -> Accelerator:
    """Validate one ``accelerators.yaml`` entry (an accelerator, or a ``kind: cpu`` front-end server)."""
    sec = Section(data, source_file, name, WorkloadError)
    source, assumptions = _provenance(sec)
    kind = sec.choice("kind", HOST_KINDS, "accelerator")
    vendor = sec.text("vendor")
    nic_count = sec.integer("nic_count", minimum=1)
    try:
        nic_rate = parse_rate_bps(sec.raw("nic_rate"))
    except UnitError as exc:
        raise sec.fail("nic_rate", str(exc)) from None
    tiers_raw = sec.raw("price_per_hour_usd", {})
    if not isinstance(tiers_raw, dict):
        raise sec.fail("price_per_hour_usd", f"got {tiers_raw!r}; expected a mapping of {', '.join(PRICE_TIERS)}")
    tiers: dict[str, float] = {}
    for tier, price in tiers_raw.items():
        if tier not in PRICE_TIERS:
            raise sec.fail(f"price_per_hour_usd.{tier}", f"unknown tier; valid: {', '.join(PRICE_TIERS)}")
        if isinstance(price, bool) or not isinstance(price, (int, float)) or price <= 0:
            raise sec.fail(f"price_per_hour_usd.{tier}", f"got {price!r}; expected a positive price in USD")
        tiers[tier] = float(price)
    purchase = sec.raw("purchase_price_usd", None)
    if purchase is not None:
        purchase = float(_number(sec, "purchase_price_usd"))
    power_w = float(_number(sec, "power_w"))
    if kind == "cpu":
        # A front-end server: no model compute, its tokenizer rates instead.
        acc = Accelerator(
            name=name, vendor=vendor, nic_count=nic_count, nic_rate_bps=nic_rate, price_per_hour_usd=tiers,
            purchase_price_usd=purchase, power_w=power_w, bf16_tflops=0.0, hbm_bytes=0.0,
            hbm_bandwidth_bytes_per_s=0.0, mfu=0.0, hbm_efficiency=0.0, source=source, assumptions=assumptions,
            kind=kind, cores=sec.integer("cores", minimum=1),
            tokenize_tokens_per_s=float(_number(sec, "tokenize_tokens_per_s")),
            detokenize_tokens_per_s=float(_number(sec, "detokenize_tokens_per_s")))
        sec.finish()
        return acc
    acc = Accelerator(
        name=name, vendor=vendor, nic_count=nic_count, nic_rate_bps=nic_rate,
        price_per_hour_usd=tiers, purchase_price_usd=purchase,
        power_w=power_w, bf16_tflops=float(_number(sec, "bf16_tflops")),
        hbm_bytes=float(_number(sec, "hbm_bytes")),
        hbm_bandwidth_bytes_per_s=float(_number(sec, "hbm_bandwidth")),
        mfu=sec.number("mfu", 0.4, minimum=0.0, maximum=1.0, exclusive_minimum=True),
        hbm_efficiency=sec.number("hbm_efficiency", 0.7, minimum=0.0, maximum=1.0, exclusive_minimum=True),
        source=source, assumptions=assumptions,
    )
    sec.finish()
    return acc


def _load(path: Path, parse) -> dict:
    data = load_yaml_mapping(path, WorkloadError)
    return {str(name): parse(str(name), entry, str(path)) for name, entry in data.items()}


@functools.lru_cache(maxsize=None)
def _models_cached(path: str) -> dict[str, Model]:
    return _load(Path(path), parse_model)


@functools.lru_cache(maxsize=None)
def _accelerators_cached(path: str) -> dict[str, Accelerator]:
    return _load(Path(path), parse_accelerator)


def load_models(path: str | Path | None = None) -> dict[str, Model]:
    """All catalog models by name (from ``models.yaml``, or ``path`` if given)."""
    return dict(_models_cached(str(path or MODELS_FILE)))


def load_accelerators(path: str | Path | None = None) -> dict[str, Accelerator]:
    """All catalog accelerators by name (from ``accelerators.yaml``, or ``path`` if given)."""
    return dict(_accelerators_cached(str(path or ACCELERATORS_FILE)))


def _lookup(table: dict, name: str, what: str, source: str):
    if name in table:
        return table[name]
    # Accept case differences ("h100"), which people type, but nothing looser.
    folded = {k.lower(): k for k in table}
    if str(name).lower() in folded:
        return table[folded[str(name).lower()]]
    raise WorkloadError(source, what, f"unknown {what} {name!r}; valid: {', '.join(sorted(table))}")


def model(name: str) -> Model:
    """The catalog model called ``name``; unknown names raise WorkloadError listing valid ones."""
    return _lookup(load_models(), name, "model", str(MODELS_FILE))


def accelerator(name: str) -> Accelerator:
    """The catalog accelerator called ``name``; unknown names raise WorkloadError listing valid ones."""
    return _lookup(load_accelerators(), name, "accelerator", str(ACCELERATORS_FILE))


__all__ = ["Model", "Accelerator", "load_models", "load_accelerators", "model", "accelerator",
           "PRICE_TIERS", "parse_model", "parse_accelerator"]
