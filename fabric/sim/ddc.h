// fabric packet simulator: the scheduled (DDC-style) fabric, on top of fabric/sim/engine.h.
//
// Each NCP (edge switch) holds one virtual output queue per egress host port of the fabric. A
// packet from a host waits in its VOQ and asks the egress port's credit scheduler (at the NCP
// that owns the port) for its wire bytes; the scheduler grants credits of at most one full packet
// over the ingress NCPs that asked (deficit round-robin, weighted per NCP by the design's
// scheduler.weights of its host group), spaced at the port's rate x fabric speedup, and
// holds them while the port's egress queue holds fcPackets or more (egress flow control). A credit
// releases packets from the VOQ; they are sprayed over the NCP's fabric links (round-robin, one
// counter per destination NCP), carry a sequence number per (ingress NCP, egress port), and are
// put back in order at the egress NCP (a gap is given up after the reorder timeout).
//
// Requests and credits are control cells on the fabric: they take the request/credit path's
// latency (NCP -> NCF -> NCP: two propagation delays and two cell serializations, computed by
// Python) but are not packets and take no link capacity.

namespace fabricsim
{

struct DdcConfig
{
    uint32_t creditBytes = 4138;     // one full packet's wire bytes
    uint64_t voqLimitBytes = 0;
    uint32_t fcPackets = 4;
    int64_t ctrlRemotePs = 0;        // one way, NCP to NCP through an NCF
    int64_t ctrlLocalPs = 0;         // request/credit inside one NCP
    int64_t reorderTimeoutPs = 0;
};
DdcConfig g_ddc;
std::vector<uint32_t> g_ddcSeq;      // per packet record: its sequence number in its (ingress NCP, port) stream
std::vector<double> g_grantPsPerByte;  // per egress host port: credit spacing (port rate x speedup)
std::vector<double> g_quantum;         // per ingress NCP: bytes added per round (weight x credit)

struct VoqPacket
{
    Ptr<Packet> p;
    uint32_t rec, bytes;
};

struct Voq
{
    std::deque<VoqPacket> q;
    uint64_t bytes = 0;
    int64_t credit = 0;
    uint32_t seq = 0;
    uint64_t txBytes = 0, txPackets = 0, drops = 0, maxBytes = 0;
};

struct Reorder
{
    uint32_t expected = 0;
    std::map<uint32_t, std::pair<Ptr<Packet>, uint32_t>> held;  // seq -> (packet, record)
    bool timer = false;
};

struct EgressScheduler
{
    std::vector<int64_t> demand;   // bytes asked per ingress NCP
    std::vector<double> deficit;   // deficit round-robin: bytes each ingress NCP may still be granted
    uint32_t rr = 0;               // the ingress NCP being served
    bool ticking = false;
    int64_t nextPs = 0;
    uint64_t grants = 0, grantedBytes = 0, fcPauses = 0;
};

class Ncp;
std::vector<Ncp*> g_ncp;                  // by edge index
std::vector<EgressScheduler> g_scheduler; // by egress host port (host index)
uint64_t g_reorderTimeouts = 0, g_outOfOrder = 0, g_reorderHeldMax = 0;

void Request(uint32_t dst, uint32_t ingress, uint32_t bytes);

class Ncp : public EdgeHook
{
  public:
    uint32_t m_index = 0;
    Switch* m_sw = nullptr;
    std::vector<Voq> m_voq;                   // by destination host
    std::unordered_map<uint64_t, Reorder> m_reorder;  // (ingress NCP << 32 | host) -> state

    void FromHost(Switch&, Ptr<Packet> p, const FabricHeader& h) override
    {
        Voq& v = m_voq[h.dst];
        uint32_t bytes = p->GetSize() + kPppBytes;
        if (v.bytes + bytes > g_ddc.voqLimitBytes)
        {
            v.drops++;
            RecordDrop(h.rec, 5);
            return;
        }
        v.q.push_back(VoqPacket{p, h.rec, bytes});
        v.bytes += bytes;
        v.maxBytes = std::max(v.maxBytes, v.bytes);
        int64_t delay = g_edgeOfHost[h.dst] == m_index ? g_ddc.ctrlLocalPs : g_ddc.ctrlRemotePs;
        Simulator::Schedule(PicoSeconds(delay), &Request, h.dst, m_index, bytes);
    }

    void OnCredit(uint32_t dst, uint32_t bytes)
    {
        Voq& v = m_voq[dst];
        v.credit += bytes;
        while (v.credit > 0 && !v.q.empty())
        {
            VoqPacket k = v.q.front();
            v.q.pop_front();
            v.bytes -= k.bytes;
            v.credit -= k.bytes;
            v.txBytes += k.bytes;
            v.txPackets++;
            Release(dst, k);
        }
        if (v.q.empty() && v.credit > 0) v.credit = 0;  // credit is for queued bytes only
    }

    void Release(uint32_t dst, const VoqPacket& k)
    {
        uint32_t e = g_edgeOfHost[dst];
        if (e == m_index)
        {
            SendOnPort(g_hostPort[dst], k.p, k.rec);  // local switching: straight to the egress port
            return;
        }
        g_ddcSeq[k.rec] = m_voq[dst].seq++;
        uint32_t n = m_sw->groupLen[e], off = m_sw->groupOff[e];
        SendOnPort(m_sw->groupPorts[off + (m_sw->rr[e]++ % n)], k.p, k.rec);
    }

    void FromFabric(Switch&, Ptr<Packet> p, const FabricHeader& h) override
    {
        uint64_t key = (uint64_t(g_edgeOfHost[h.src]) << 32) | h.dst;
        Reorder& r = m_reorder[key];
        uint32_t seq = g_ddcSeq[h.rec];
        if (seq < r.expected)  // its gap was given up: deliver late rather than drop
        {
            SendOnPort(g_hostPort[h.dst], p, h.rec);
            return;
        }
        if (seq != r.expected)
        {
            g_outOfOrder++;
            r.held.emplace(seq, std::make_pair(p, h.rec));
            g_reorderHeldMax = std::max<uint64_t>(g_reorderHeldMax, r.held.size());
            if (!r.timer)
            {
                r.timer = true;
                Simulator::Schedule(PicoSeconds(g_ddc.reorderTimeoutPs), &Ncp::ReorderTimeout, this, key, r.expected);
            }
            return;
        }
        SendOnPort(g_hostPort[h.dst], p, h.rec);
        r.expected++;
        Drain(r, h.dst);
    }

    void Drain(Reorder& r, uint32_t dst)
    {
        for (auto it = r.held.find(r.expected); it != r.held.end(); it = r.held.find(r.expected))
        {
            SendOnPort(g_hostPort[dst], it->second.first, it->second.second);
            r.held.erase(it);
            r.expected++;
        }
    }

    void ReorderTimeout(uint64_t key, uint32_t waitedFor)
    {
        Reorder& r = m_reorder[key];
        r.timer = false;
        if (r.held.empty()) return;
        if (r.expected == waitedFor)
        {
            g_reorderTimeouts++;
            r.expected = r.held.begin()->first;  // give up on the gap
            Drain(r, uint32_t(key & 0xffffffffu));
        }
        if (!r.held.empty())
        {
            r.timer = true;
            Simulator::Schedule(PicoSeconds(g_ddc.reorderTimeoutPs), &Ncp::ReorderTimeout, this, key, r.expected);
        }
    }
};

void Credit(uint32_t ingress, uint32_t dst, uint32_t bytes)
{
    g_ncp[ingress]->OnCredit(dst, bytes);
}

void Tick(uint32_t dst);

inline void ScheduleTick(EgressScheduler& s, uint32_t dst)
{
    Simulator::Schedule(PicoSeconds(s.nextPs) - Simulator::Now(), &Tick, dst);
}

void Tick(uint32_t dst)
{
    EgressScheduler& s = g_scheduler[dst];
    int64_t now = Simulator::Now().GetPicoSeconds();
    Port& port = g_port[g_hostPort[dst]];
    if (port.queue->GetNPackets() >= g_ddc.fcPackets)
    {
        // Egress flow control: hold credits until the port drains; look again a quarter packet later.
        s.fcPauses++;
        s.nextPs = now + int64_t(g_ddc.creditBytes * g_grantPsPerByte[dst] / 4);
        ScheduleTick(s, dst);
        return;
    }
    // Deficit round-robin over the ingress NCPs that asked: a visit adds the NCP's quantum (its
    // weight in credits); it is served while its deficit covers a credit, then the next one is.
    uint32_t n = uint32_t(s.demand.size()), src = n;
    for (uint32_t i = 0; i <= n && src == n; i++)
    {
        uint32_t c = (s.rr + i) % n;
        if (s.demand[c] <= 0)
        {
            s.deficit[c] = 0;
            continue;
        }
        int64_t want = std::min<int64_t>(g_ddc.creditBytes, s.demand[c]);
        if (i > 0) s.deficit[c] += g_quantum[c];  // a new visit (i == 0 continues the current one)
        if (s.deficit[c] >= want) src = c;
    }
    if (src == n)
    {
        bool asked = false;
        for (uint32_t c = 0; c < n; c++) asked = asked || s.demand[c] > 0;
        if (!asked)
        {
            s.ticking = false;
            return;
        }
        s.nextPs = now;  // quanta were added: the next visit grants
        ScheduleTick(s, dst);
        return;
    }
    s.rr = src;
    int64_t grant = std::min<int64_t>(g_ddc.creditBytes, s.demand[src]);
    s.deficit[src] -= double(grant);
    s.demand[src] -= grant;
    s.grants++;
    s.grantedBytes += uint64_t(grant);
    int64_t delay = src == g_edgeOfHost[dst] ? g_ddc.ctrlLocalPs : g_ddc.ctrlRemotePs;
    Simulator::Schedule(PicoSeconds(delay), &Credit, src, dst, uint32_t(grant));
    s.nextPs = std::max(s.nextPs, now) + int64_t(grant * g_grantPsPerByte[dst] + 0.5);
    ScheduleTick(s, dst);
}

void Request(uint32_t dst, uint32_t ingress, uint32_t bytes)
{
    EgressScheduler& s = g_scheduler[dst];
    s.demand[ingress] += bytes;
    if (!s.ticking)
    {
        s.ticking = true;
        s.nextPs = std::max(s.nextPs, Simulator::Now().GetPicoSeconds());
        ScheduleTick(s, dst);
    }
}

// VOQ rows: only the (NCP, destination) pairs Python asks for (those the schedule uses).
std::vector<uint32_t> g_watchNcp, g_watchDst;
std::vector<int64_t> g_voqT;
std::vector<uint32_t> g_voqWatch;
std::vector<uint64_t> g_voqTxBytes, g_voqTxPackets, g_voqDrops, g_voqBacklogBytes, g_voqBacklogPackets;

void SampleVoqs(int64_t t)
{
    for (uint32_t w = 0; w < g_watchNcp.size(); w++)
    {
        const Voq& v = g_ncp[g_watchNcp[w]]->m_voq[g_watchDst[w]];
        g_voqT.push_back(t);
        g_voqWatch.push_back(w);
        g_voqTxBytes.push_back(v.txBytes);
        g_voqTxPackets.push_back(v.txPackets);
        g_voqDrops.push_back(v.drops);
        g_voqBacklogBytes.push_back(v.bytes);
        g_voqBacklogPackets.push_back(v.q.size());
    }
}

uint64_t HeldByNcps()
{
    uint64_t n = 0;
    for (Ncp* x : g_ncp)
    {
        for (const Voq& v : x->m_voq) n += v.q.size();
        for (const auto& kv : x->m_reorder) n += kv.second.held.size();
    }
    return n;
}

uint64_t DroppedByNcps()
{
    uint64_t n = 0;
    for (Ncp* x : g_ncp)
        for (const Voq& v : x->m_voq) n += v.drops;
    return n;
}

// After BuildRoutes: every edge switch becomes an NCP. grantPsPerByte: per host (egress port).
void InstallScheduled(uint32_t nHosts, uint64_t nRecords, uint32_t creditBytes, uint64_t voqLimitBytes,
                      uint32_t fcPackets, int64_t ctrlRemotePs, int64_t ctrlLocalPs, int64_t reorderTimeoutPs,
                      const double* grantPsPerByte, const double* ncpWeight, uint32_t nWatch, const int32_t* watchNcp,
                      const int32_t* watchDst)
{
    g_ddc = DdcConfig{creditBytes, voqLimitBytes, fcPackets, ctrlRemotePs, ctrlLocalPs, reorderTimeoutPs};
    g_ddcSeq.assign(nRecords, 0);
    g_grantPsPerByte.assign(grantPsPerByte, grantPsPerByte + nHosts);
    for (uint32_t e = 0; e < g_edgeSwitch.size(); e++)
    {
        Ncp* x = new Ncp();
        x->m_index = e;
        x->m_sw = g_edgeSwitch[e];
        x->m_voq.resize(nHosts);
        g_edgeSwitch[e]->hook = x;
        g_ncp.push_back(x);
    }
    g_quantum.assign(g_edgeSwitch.size(), 0.0);
    for (uint32_t e = 0; e < g_edgeSwitch.size(); e++) g_quantum[e] = ncpWeight[e] * creditBytes;
    g_scheduler.resize(nHosts);
    for (auto& s : g_scheduler)
    {
        s.demand.assign(g_edgeSwitch.size(), 0);
        s.deficit.assign(g_edgeSwitch.size(), 0.0);
    }
    g_watchNcp.assign(watchNcp, watchNcp + nWatch);
    g_watchDst.assign(watchDst, watchDst + nWatch);
    g_extraSample = &SampleVoqs;
    g_extraHeld = &HeldByNcps;
    g_extraDropped = &DroppedByNcps;
}

// grants, granted bytes, flow-control pauses, out of order arrivals, reorder timeouts, max held,
// max VOQ bytes
std::vector<double> ScheduledStats()
{
    uint64_t grants = 0, granted = 0, pauses = 0, voqMax = 0;
    for (const auto& s : g_scheduler)
    {
        grants += s.grants;
        granted += s.grantedBytes;
        pauses += s.fcPauses;
    }
    for (Ncp* x : g_ncp)
        for (const Voq& v : x->m_voq) voqMax = std::max(voqMax, v.maxBytes);
    return {double(grants), double(granted), double(pauses), double(g_outOfOrder), double(g_reorderTimeouts),
            double(g_reorderHeldMax), double(voqMax)};
}

size_t VoqSampleRows()
{
    return g_voqT.size();
}

void CopyVoqSamples(int64_t* t, uint32_t* watch, uint64_t* txBytes, uint64_t* txPackets, uint64_t* drops,
                    uint64_t* backlogBytes, uint64_t* backlogPackets)
{
    std::copy(g_voqT.begin(), g_voqT.end(), t);
    std::copy(g_voqWatch.begin(), g_voqWatch.end(), watch);
    std::copy(g_voqTxBytes.begin(), g_voqTxBytes.end(), txBytes);
    std::copy(g_voqTxPackets.begin(), g_voqTxPackets.end(), txPackets);
    std::copy(g_voqDrops.begin(), g_voqDrops.end(), drops);
    std::copy(g_voqBacklogBytes.begin(), g_voqBacklogBytes.end(), backlogBytes);
    std::copy(g_voqBacklogPackets.begin(), g_voqBacklogPackets.end(), backlogPackets);
}

}  // namespace fabricsim
