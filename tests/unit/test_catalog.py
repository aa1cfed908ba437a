"""Catalog: KV bytes against the published geometry, sources on every entry, lookups, formulas."""

from __future__ import annotations

import pytest

from fabric import catalog
from fabric.errors import WorkloadError

# (layers, kv_heads, head_dim) from each model's config.json; KV bytes/token in BF16 per
# docs/economics.md §3. DeepSeek-V3 (MLA): 61 layers x (512 latent + 64 rope) x 2 bytes.
PUBLISHED = {
    "Llama-3-8B": (2 * 32 * 8 * 128 * 2, 128 * 1024),
    "Llama-3-70B": (2 * 80 * 8 * 128 * 2, 320 * 1024),
    "Llama-3.1-405B": (2 * 126 * 8 * 128 * 2, 504 * 1024),
    "Qwen3-235B-A22B": (2 * 94 * 4 * 128 * 2, 188 * 1024),
    "DeepSeek-V3": (61 * (512 + 64) * 2, 70272),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_kv_bytes_per_token_matches_published_geometry(name):
    formula, reference = PUBLISHED[name]
    m = catalog.model(name)
    assert m.kv_bytes_per_token == formula == reference


def test_llama70b_kv_and_deepseek_latent():
    assert catalog.model("Llama-3-70B").kv_bytes_per_token == 327_680
    # 1.34 GB at 4k context (docs/economics.md §3)
    assert catalog.model("Llama-3-70B").kv_bytes(4096) == pytest.approx(1.342e9, rel=1e-3)
    assert catalog.model("DeepSeek-V3").kv_bytes_per_token / 1024 == pytest.approx(68.6, abs=0.05)


def test_moe_geometry_and_payloads():
    ds = catalog.model("DeepSeek-V3")
    assert (ds.experts, ds.top_k, ds.moe_layers, ds.layers) == (256, 8, 58, 61)
    assert ds.params_total == 671e9 and ds.params_active == 37e9
    # ≈7.4 KB dispatch (FP8 + scales) and ≈14.3 KB combine (BF16) per token per expert
    assert ds.dispatch_bytes_per_token == 7392
    assert ds.combine_bytes_per_token == 14336
    assert ds.expert_popularity_exponent == 1.0
    qw = catalog.model("Qwen3-235B-A22B")
    assert (qw.experts, qw.top_k, qw.moe_layers) == (128, 8, 94)
    assert qw.expert_popularity_exponent == 1.2
    assert not catalog.model("Llama-3-70B").is_moe


def test_every_entry_names_a_source_or_an_assumption():
    entries = list(catalog.load_models().values()) + list(catalog.load_accelerators().values())
    assert len(entries) >= 12
    for entry in entries:
        assert entry.source.strip() or entry.assumptions, entry.name
        if entry.source:
            # a source must point somewhere checkable: a URL, a paper or the project's own doc
            assert any(s in entry.source for s in ("http", "arXiv", "docs/economics.md")), entry.name
    for acc in catalog.load_accelerators().values():
        # the efficiencies (tokenizer rates for a CPU server) behind the derived compute rates are
        # assumptions and must say so
        word = "tokenize_tokens_per_s" if acc.is_cpu else "mfu"
        assert any(word in a for a in acc.assumptions), acc.name


def test_required_accelerators_and_fields():
    accs = catalog.load_accelerators()
    for name in ("H100", "H200", "B200", "MI300X", "Gaudi3", "Trainium2", "LPU"):
        a = accs[name]
        assert a.nic_count >= 1 and a.nic_rate_bps >= 100e9
        assert a.power_w > 0 and a.bf16_tflops > 0 and a.hbm_bandwidth_bytes_per_s > 0
        assert isinstance(a.price_per_hour_usd, dict)
        assert set(a.price_per_hour_usd) <= set(catalog.PRICE_TIERS)
        assert a.purchase_price_usd is None or a.purchase_price_usd > 0
        assert isinstance(a.assumptions, tuple)
    # tiers from docs/economics.md §1
    assert accs["H100"].price_per_hour_usd == {"hyperscaler": 1.17, "neocloud": 1.55, "rental": 1.78}
    assert accs["H200"].price_per_hour_usd == {"hyperscaler": 1.22, "neocloud": 1.59, "rental": 2.05}
    assert accs["B200"].price_per_hour_usd == {"hyperscaler": 1.73, "neocloud": 2.07, "rental": 2.60}
    assert accs["MI300X"].price_per_hour_usd == {"hyperscaler": 0.95, "neocloud": 1.16, "rental": 1.30}
    assert accs["Gaudi3"].price_per_hour_usd == {}
    assert accs["H100"].nic_rate_bps == 400_000_000_000


def test_compute_rates_follow_documented_formulas():
    h100, m = catalog.accelerator("H100"), catalog.model("Llama-3-70B")
    assert h100.prefill_tokens_per_s(m) == pytest.approx(989e12 * 0.4 / (2 * 70.6e9))
    assert h100.prefill_tokens_per_s(m, mfu=0.2) == pytest.approx(h100.prefill_tokens_per_s(m) / 2)
    # memory-bound decode: weights / 8 plus the batch's KV / 8, at 70% of 3.35 TB/s
    expected = (70.6e9 * 2 + 64 * 2048 * 327680) / 8 / (3.35e12 * 0.7)
    assert h100.decode_step_s(m, 64, 2048, shards=8) == pytest.approx(expected)
    # faster memory -> shorter step
    assert catalog.accelerator("H200").decode_step_s(m, 64, 2048, 8) < h100.decode_step_s(m, 64, 2048, 8)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(WorkloadError, match="Llama-3-70B") as exc:
        catalog.model("Llama-9-1T")
    assert "unknown model 'Llama-9-1T'" in str(exc.value)
    with pytest.raises(WorkloadError, match="H100"):
        catalog.accelerator("TPUv9")
    assert catalog.accelerator("h100").name == "H100"


def test_entry_without_source_or_assumption_is_refused():
    entry = {"layers": 2, "hidden": 64, "attention_heads": 2, "attention": "gqa", "kv_heads": 1,
             "head_dim": 32, "weight_bytes_per_param": 2, "params_total": 1e6, "params_active": 1e6}
    with pytest.raises(WorkloadError, match="source"):
        catalog.parse_model("Tiny", entry)
    assert catalog.parse_model("Tiny", {**entry, "assumptions": ["made up for a test"]}).kv_bytes_per_token == 256
    with pytest.raises(WorkloadError, match="Tiny.colour"):
        catalog.parse_model("Tiny", {**entry, "source": "x", "colour": "red"})
