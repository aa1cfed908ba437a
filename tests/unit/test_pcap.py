"""`fabric pcap` without root: a crafted capture (a duplicate, a reordered, a lost, a foreign and
a truncated packet) gives known records and metrics; the scapy layer and the struct fast path
agree byte for byte; both decoding engines agree; the command through typer's CliRunner."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import typer
from typer.testing import CliRunner

from fabric.analysis import pcap as P
from fabric.probe import HEADER, HEADER_BYTES, MAGIC, PROBE_UDP_PORT, pack_header, scapy_layer, unpack_header
from fabric.rundir import PACKET_COLUMNS

pytest.importorskip("scapy")
from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.l2 import ARP, CookedLinux, Ether  # noqa: E402
from scapy.packet import Raw  # noqa: E402
from scapy.utils import PcapNgWriter, PcapWriter  # noqa: E402

FP = scapy_layer()
T0 = 1_700_000_000_000_000_000  # ns; every time below is a whole microsecond (fits µs pcaps)
US = 1_000
MS = 1_000_000
A, B, R = "10.0.0.1", "10.0.0.5", "10.0.0.3"

# Flow A -> R: message 7, six packets 1 ms apart; seq 4 lost, seq 3 captured twice, seq 2 late
# enough to arrive after seq 3. OWD (µs) per seq as captured:
OWD_A_US = {0: 100, 1: 150, 2: 1300, 3: 120, 5: 110}
OWD_B_US = {0: 40, 1: 60}


def _probe(src, dst, msg_id, seq, count, tx_ns, dscp=0, sport=49200, payload=4096):
    pad = payload - HEADER_BYTES
    return (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=src, dst=dst, tos=dscp << 2)
            / UDP(sport=sport, dport=PROBE_UDP_PORT)
            / FP(msg_id=msg_id, seq=seq, count=count, tx_ns=tx_ns) / Raw(b"\0" * pad))


def _frames():
    """(packet or raw bytes, capture time ns), in capture-file order."""
    tx_a = {s: T0 + s * MS for s in range(6)}
    out = []
    for seq in (0, 1, 3, 2):
        out.append((_probe(A, R, 7, seq, 6, tx_a[seq], dscp=2), tx_a[seq] + OWD_A_US[seq] * US))
    out.append((_probe(A, R, 7, 3, 6, tx_a[3], dscp=2), tx_a[3] + 200 * US))  # duplicate, later
    # seq 5 with source port 53 (scapy would call it DNS), and the last packet is short.
    out.append((_probe(A, R, 7, 5, 6, tx_a[5], dscp=2, sport=53, payload=1000), tx_a[5] + OWD_A_US[5] * US))
    tx_b = {s: T0 + 500 * US + s * MS for s in range(2)}
    for seq in (0, 1):
        out.append((_probe(B, R, 9, seq, 2, tx_b[seq]), tx_b[seq] + OWD_B_US[seq] * US))
    # Foreign traffic: ARP, UDP to another port, a probe-port datagram with another magic, a
    # probe cut by the snap length inside its header.
    out.append((Ether() / ARP(), T0 + 10 * MS))
    out.append((Ether() / IP(src=A, dst=R) / UDP(sport=5000, dport=5001) / Raw(b"x" * 64), T0 + 11 * MS))
    bad = bytearray(64)
    HEADER.pack_into(bad, 0, 0xDEADBEEF, 7, 0, 6, T0)
    out.append((Ether() / IP(src=A, dst=R) / UDP(sport=49200, dport=PROBE_UDP_PORT) / Raw(bytes(bad)), T0 + 12 * MS))
    cut = bytes(_probe(A, R, 8, 0, 1, T0))[:14 + 20 + 8 + 10]
    out.append((cut, T0 + 13 * MS))
    return out


def _write(path, fmt, frames=None, link=Ether):
    frames = frames or _frames()
    if fmt == "pcapng":
        writer = PcapNgWriter(str(path))
    else:
        writer = PcapWriter(str(path), nano=(fmt == "pcap-ns"), linktype=1 if link is Ether else 113)
    for pkt, t_ns in frames:
        p = link(pkt) if isinstance(pkt, (bytes, bytearray)) else pkt
        p.time = Decimal(t_ns) / Decimal(10**9)
        writer.write(p)
    writer.close()
    return path


@pytest.fixture(params=["pcap-us", "pcap-ns", "pcapng"])
def capture(request, tmp_path):
    return _write(tmp_path / f"c.{request.param}", request.param)


# --------------------------------------------------------------------------------------------
# The header: scapy layer == struct fast path
# --------------------------------------------------------------------------------------------

def test_scapy_layer_and_struct_path_agree_byte_for_byte():
    fields = dict(msg_id=2**40 + 5, seq=123456, count=2**31 - 1, tx_ns=T0 + 987654321)
    buf = bytearray(HEADER_BYTES)
    pack_header(buf, **fields)
    assert bytes(FP(**fields)) == bytes(buf)
    layer = FP(bytes(buf))
    assert (layer.magic, layer.msg_id, layer.seq, layer.count, layer.tx_ns) == (MAGIC, *fields.values())
    assert unpack_header(bytes(FP(**fields))) == tuple(fields.values())
    # Bound to the UDP port: a whole frame dissects down to our layer.
    frame = Ether(bytes(_probe(A, R, fields["msg_id"], fields["seq"], fields["count"], fields["tx_ns"])))
    assert frame[FP].tx_ns == fields["tx_ns"]
    assert unpack_header(bytes(FP(magic=0xDEADBEEF))) is None


# --------------------------------------------------------------------------------------------
# Records and metrics with known answers
# --------------------------------------------------------------------------------------------

def test_reader_counts_skipped_frames(capture):
    frames, stats = P.read_capture(capture)
    assert stats["frames"] == 12
    assert stats["probe_copies"] == 8
    assert stats["skipped"] == {"not_ipv4": 1, "not_probe_port": 1, "truncated": 1, "not_probe_header": 1}
    assert stats["timestamp_resolution_ns"] == (1 if capture.suffix == ".pcap-ns" else 1000)
    assert stats["format"] == ("pcapng" if capture.suffix == ".pcapng" else "pcap")


def test_records_collapse_duplicates_and_add_lost_rows(capture):
    frames, _ = P.read_capture(capture)
    rec = P.packet_records(frames)
    assert list(rec.columns) == list(PACKET_COLUMNS)
    assert {c: str(t) for c, t in rec.dtypes.items()} == PACKET_COLUMNS
    a = rec[rec.src == A].set_index("seq")
    assert list(a.index) == [0, 1, 2, 3, 4, 5]
    assert (a.msg_id == 7).all() and (a.dst == R).all()
    assert a.loc[4, "rx_ns"] == -1 and a.loc[4, "copies"] == 0 and a.loc[4, "tx_ns"] == -1
    assert a.loc[3, "copies"] == 2
    assert a.loc[3, "rx_ns"] == T0 + 3 * MS + 120 * US  # the first copy, not the later one
    for seq, owd in OWD_A_US.items():
        assert a.loc[seq, "rx_ns"] - a.loc[seq, "tx_ns"] == owd * US
    assert a.loc[5, "bytes"] == 1000 and a.loc[0, "bytes"] == 4096
    assert (a.drop(index=4).path == 1).all()  # DSCP 2 -> spine 1
    b = rec[rec.src == B]
    assert len(b) == 2 and (b.copies == 1).all() and (b.path == -1).all()


def _rfc3550_reference(transit):
    j = 0.0
    for prev, cur in zip(transit[:-1], transit[1:]):
        j += (abs(cur - prev) - j) / 16
    return j


def test_flow_metrics_known_answers(capture):
    frames, _ = P.read_capture(capture)
    flows = P.flow_metrics(P.packet_records(frames))
    assert list(flows) == [f"{A}->{R}", f"{B}->{R}"]
    f = flows[f"{A}->{R}"]
    assert (f["packets"], f["captured"], f["messages"]) == (6, 5, 1)
    o = f["owd_us"]
    assert (o["n"], o["n_rx"], o["n_lost"]) == (6, 5, 1)
    assert o["min"] == 100 and o["p50"] == 120 and o["max"] == float("inf")
    assert o["rx_p50"] == 120 and o["rx_max"] == 1300 and o["rx_mean"] == pytest.approx(356)
    assert f["pdv_us"]["p99_minus_min"] == 1200
    # IPDV over consecutive sequence numbers in sending order; the pairs around seq 4 undefined.
    assert f["ipdv_us"]["n_pairs"] == 3 and f["ipdv_us"]["n_undefined"] == 2
    assert f["ipdv_us"]["min"] == -1180 and f["ipdv_us"]["max"] == 1150
    # J over transit in capture order: 100, 150, 120 (seq 3), 1300 (seq 2), 110.
    assert f["rfc3550_j_us"] == pytest.approx(_rfc3550_reference([100, 150, 120, 1300, 110]), rel=1e-12)
    assert f["rfc3550_j_us"] == pytest.approx(147.7385, abs=1e-3)
    assert f["loss"] == {"sent": 6, "received": 5, "lost": 1, "ratio": 1 / 6, "tmax_ns": None, "duplicates": 1}
    assert f["loss_episodes"]["n_episodes"] == 1 and f["loss_episodes"]["max_length"] == 1
    assert f["reorder"]["n_reordered"] == 1 and f["reorder"]["max_extent"] == 1
    assert f["paths"] == {"1": 5}
    assert f["delivered_bytes"] == 4 * 4096 + 1000
    g = flows[f"{B}->{R}"]
    assert g["loss"]["lost"] == 0 and g["owd_us"]["max"] == 60 and g["reorder"]["n_reordered"] == 0
    assert g["rfc3550_j_us"] == pytest.approx(20 / 16)


def test_tmax_turns_late_packets_into_loss(capture):
    frames, _ = P.read_capture(capture)
    f = P.flow_metrics(P.packet_records(frames), tmax_ns=1 * MS)[f"{A}->{R}"]
    assert f["loss"]["lost"] == 2 and f["loss"]["tmax_ns"] == MS  # seq 2 took 1.3 ms
    assert f["owd_us"]["rx_max"] == 150


def _as_cooked(pkt):
    """The same frame as ``tcpdump -i any`` records it (Linux cooked header instead of Ethernet)."""
    raw = pkt if isinstance(pkt, (bytes, bytearray)) else bytes(pkt)
    ethertype = int.from_bytes(raw[12:14], "big")
    return CookedLinux(proto=ethertype) / Raw(raw[14:])


@pytest.mark.parametrize("link", ["ethernet", "linux-cooked"])
def test_both_engines_agree(tmp_path, link):
    frames = _frames()
    if link == "linux-cooked":
        frames = [(_as_cooked(p), t) for p, t in frames]
    path = _write(tmp_path / "c.pcap", "pcap-ns", frames, link=Ether if link == "ethernet" else CookedLinux)
    fast, s_fast = P.read_capture(path, engine="auto")
    slow, s_slow = P.read_capture(path, engine="scapy")
    assert s_fast["linktypes"] == [1 if link == "ethernet" else 113]
    assert s_fast["skipped"] == s_slow["skipped"] == {"not_ipv4": 1, "not_probe_port": 1, "truncated": 1,
                                                      "not_probe_header": 1}
    assert len(fast) == 8
    assert fast.equals(slow)


def test_not_a_capture_is_a_clear_error(tmp_path):
    from fabric.errors import SpecError

    bogus = tmp_path / "x.pcap"
    bogus.write_text("hello")
    with pytest.raises(SpecError, match="not a pcap"):
        P.read_capture(bogus)


def test_run_directory_maps_wire_ids_and_addresses(tmp_path, capture):
    import pandas as pd

    from fabric.rundir import node_facts
    from fabric.topology import build_fabric
    from tests.rundirs import SMALL_DESIGN, parse_fabric_spec, write_run

    # Two noise probes (wire ids 0, 1); the load's wire ids 2.. are schedule rows 0..
    noise = pd.DataFrame({"msg_id": [0, 1], "seq": 0, "src": "h0", "dst": "h1", "bytes": 64,
                          "tx_ns": 0, "rx_ns": 1, "copies": 1, "path": -1})
    ids = [100 + i for i in range(10)]
    messages = pd.DataFrame({"msg_id": ids, "src": "h0", "dst": "h2", "kind": "kv", "group": "", "request_id": -1,
                             "step": -1, "bytes": 64, "bytes_emulated": 64, "packets": 1, "packets_received": 1,
                             "t_sched_ns": 0, "t_tx_first_ns": 0, "t_tx_last_ns": 0, "t_rx_last_ns": 1})
    g = build_fabric(parse_fabric_spec(SMALL_DESIGN, "test"))
    nodes = node_facts(g)
    nodes["h0"]["address"], nodes["h2"]["address"] = A, R  # the capture's addresses
    run = write_run(tmp_path / "run", {"noise": noise, "messages": messages}, g=g, nodes=nodes)
    result = P.analyze_capture(capture, run_dir=run)
    assert result["run"]["noise_probe_copies"] == 0
    # Wire 7 -> schedule row 5 -> msg_id 105; wire 9 -> 107; B's address is not a known host.
    assert set(result["flows"]) == {"h0->h2", f"{B}->h2"}
    frames, _ = P.read_capture(capture)
    mapped, dropped = P.apply_run_map(frames, P.run_id_map(run))
    assert set(mapped.msg_id) == {105, 107}
    mapped, dropped = P.apply_run_map(frames.assign(msg_id=frames.msg_id - 6), P.run_id_map(run))
    assert dropped["noise_probe_copies"] == 6  # all six copies of wire 7 - 6 = 1 < 2 probes
    assert set(mapped.msg_id) == {101}         # wire 9 - 6 = 3 -> schedule row 1


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

runner = CliRunner()


def _small_app() -> typer.Typer:
    from fabric.commands.pcap import pcap

    app = typer.Typer()
    app.command("pcap")(pcap)

    @app.command("noop")  # a second command keeps "pcap" a sub-command, as in fabric.cli
    def _noop() -> None:
        pass
    return app


def _fabric_app():
    from fabric.cli import app

    names = {c.name for c in app.registered_commands}
    if "pcap" not in names:
        pytest.skip("fabric.cli does not register the pcap command yet (app.command(\"pcap\")(pcap.pcap))")
    return app


@pytest.fixture(params=["small", "fabric"])
def app(request):
    return _small_app() if request.param == "small" else _fabric_app()


def test_cli_table(app, tmp_path):
    path = _write(tmp_path / "c.pcap", "pcap-us")
    result = runner.invoke(app, ["pcap", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{A}->{R}" in result.output and f"{B}->{R}" in result.output
    assert "sender tx -> this capture point" in result.output
    assert "12 frames, 8 probe packets" in result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith(f"{A}->{R}"))
    assert "16.667%" in line and "147.7" in line


def test_cli_json_and_tmax(app, tmp_path):
    path = _write(tmp_path / "c.pcap", "pcap-ns")
    result = runner.invoke(app, ["pcap", str(path), "--json", "--tmax", "1ms"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    f = data["flows"][f"{A}->{R}"]
    assert f["loss"]["lost"] == 2 and data["tmax_ns"] == MS
    assert f["owd_us"]["max"] == "inf"  # JSON has no infinity
    assert data["addresses"] == "IPv4 address strings"
    assert "capture point" in data["notes"]["owd"]


def test_cli_refuses_bad_input(app, tmp_path):
    path = _write(tmp_path / "c.pcap", "pcap-us")
    result = runner.invoke(app, ["pcap", str(path), "--tmax", "soon"])
    assert result.exit_code == 2 and "duration" in result.output
    result = runner.invoke(app, ["pcap", str(tmp_path / "missing.pcap")])
    assert result.exit_code == 2


def test_cli_not_a_capture_is_one_line_exit_1(tmp_path):
    app = _fabric_app()
    bogus = tmp_path / "x.pcap"
    bogus.write_text("hello")
    result = runner.invoke(app, ["pcap", str(bogus)])
    assert result.exit_code == 1
    assert "not a pcap" in result.output
