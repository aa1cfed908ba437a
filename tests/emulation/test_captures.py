"""`fabric run --capture LINK` writes a pcap that scapy opens and whose probe packets are exactly
the run's packets that crossed that link (packets.parquet), read back by `fabric pcap`."""

from __future__ import annotations

from fabric.analysis import pcap as P
from tests.emulation.conftest import messages, small_spec

K = 1000.0
PAYLOAD = 4096


def test_capture_matches_packet_records(emulate):
    from scapy.utils import rdpcap

    from fabric.probe import scapy_layer

    spec = small_spec()
    rows = [(0.00, "h1", "h0", 30 * PAYLOAD * K, "kv"),          # same leaf, into h0
            (0.01, "h6", "h0", 30 * PAYLOAD * K, "kv"),          # across the spines, into h0
            (0.02, "h0", "h7", 20 * PAYLOAD * K, "background"),  # out of h0
            (0.03, "h2", "h8", 20 * PAYLOAD * K, "background")]  # never touches h0's link
    run_dir, run_json, packets, _, _ = emulate(spec, messages(rows), scale=K, captures=["h0-leaf0"])
    pcap = run_dir / "captures" / "h0-leaf0.pcap"
    assert pcap.exists() and run_json["captures"] == ["h0-leaf0"]

    probe = scapy_layer()
    frames = rdpcap(str(pcap))
    probes = [f for f in frames if probe in f]
    assert len(probes) >= 80, f"only {len(probes)} probe packets in {len(frames)} frames"

    # The run's own records: what crossed h0's link is everything h0 sent and everything that
    # reached h0 (nothing is lost at this load).
    crossed = packets[(packets.src == "h0") | ((packets.dst == "h0") & (packets.copies > 0))]
    assert (packets.copies > 0).all()
    expected = set(zip(crossed.msg_id, crossed.seq))

    result = P.analyze_capture(pcap, run_dir=P.find_run_dir(pcap))
    assert result["run"]["noise_probe_copies"] > 0  # the idle probes h0<->h5 cross it too
    assert result["run"]["unknown_wire_id_copies"] == 0
    cap_frames, _ = P.read_capture(pcap)
    mapped, _ = P.apply_run_map(cap_frames, P.run_id_map(run_dir))
    rec = P.packet_records(mapped)
    got = rec[rec.copies > 0]
    assert set(zip(got.msg_id, got.seq)) == expected
    assert (rec.copies <= 1).all(), "a packet was captured twice on one interface"
    # Same sizes, endpoints and paths as the receiver recorded.
    both = got.merge(crossed, on=["msg_id", "seq"], suffixes=("_cap", "_run"))
    assert len(both) == len(expected)
    assert (both.src_cap == both.src_run).all() and (both.dst_cap == both.dst_run).all()
    assert (both.bytes_cap == both.bytes_run).all()
    into_h0 = both[both.dst_run == "h0"]
    assert (into_h0.path_cap == into_h0.path_run).all()
    assert set(into_h0[into_h0.src_run == "h6"].path_cap) <= {0, 1}
    assert set(into_h0[into_h0.src_run == "h1"].path_cap) == {-1}
    # The capture point sits just before h0's socket: the receiver's kernel timestamp follows the
    # capture's by microseconds (the pcap's timestamps are truncated to whole microseconds).
    # (The run's arrival adds each packet's serialization over the hops it crossed: ser_ns.)
    lag = (into_h0.rx_ns_run - into_h0.ser_ns_run - into_h0.rx_ns_cap).to_numpy()
    assert lag.min() >= -1_000 and lag.max() < 500_000, f"receiver - capture timestamp: {lag.min()}..{lag.max()} ns"

    flows = result["flows"]
    assert set(flows) == {"h1->h0", "h6->h0", "h0->h7"}
    for name, n in (("h1->h0", 30), ("h6->h0", 30), ("h0->h7", 20)):
        assert flows[name]["packets"] == n and flows[name]["loss"]["lost"] == 0, (name, flows[name]["loss"])
    assert flows["h6->h0"]["owd_us"]["p50"] > 0
    assert isinstance(result["flows"]["h6->h0"]["rfc3550_j_us"], float)
    # Without the run directory: IPv4 addresses and wire ids, the same packets plus the noise probes.
    raw = P.analyze_capture(pcap)
    assert raw["run"] is None
    assert all(k.count(".") == 6 for k in raw["flows"]), list(raw["flows"])
    assert sum(f["captured"] for f in raw["flows"].values()) == len(expected) + result["run"]["noise_probe_copies"]
