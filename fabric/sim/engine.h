// fabric packet simulator: the per-packet model, compiled once with capi.cpp into a cached library
// (fabric/sim/native.py) that the simulation process loads (fabric/sim/child.py).
//
// Everything a packet does happens here, in C++; Python builds the inputs before the run and reads
// the records after it. The model:
//
//  * every link direction is an ns-3 PointToPointNetDevice with a DropTail byte queue (its egress
//    port) on a PointToPointChannel with the link's propagation delay; no IP stack: switches take
//    packets from the device's receive callback and hand them to an output device themselves
//    (ns-3's global routing is O(n^2) to build and walks a list per packet);
//  * a frame is payload + FabricHeader (kHeaderBytes) + PPP (2 bytes) = payload + the project's
//    WIRE_OVERHEAD_BYTES, so every link serializes exactly the bytes the emulator's links count;
//  * hosts (HostSender) send each message as packets, round-robin per packet over the messages
//    they have in flight, back to back at the NIC rate: the sender is the NIC's serializer, so the
//    host queue never holds more than the packet being sent and never drops;
//  * switches forward by destination edge: an ECMP group per (switch, destination edge), one
//    member chosen per flow (hash of the design's fields, salted per switch) or per packet
//    (round-robin, one counter per destination edge); a scheduled fabric's edge switches (NCPs)
//    delegate to an EdgeHook (fabric/sim/ddc.h);
//  * per packet record (index = the packet's row in the run): send time, first arrival, the core
//    switch crossed, whether a queue dropped it; per link direction: 64-bit counters sampled every
//    interval.
#include "ns3/core-module.h"
#include "ns3/network-module.h"
#include "ns3/point-to-point-module.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <unordered_map>
#include <vector>

namespace fabricsim
{
using namespace ns3;

constexpr uint16_t kIpv4 = 0x0800;  // PointToPointNetDevice only frames IPv4/IPv6 protocol numbers
constexpr uint32_t kPppBytes = 2;
constexpr int kHost = 0, kEdge = 1, kCore = 2;
constexpr int kEcmp = 0, kSpray = 1, kScheduled = 2;

// ------------------------------------------------------------------------------------------------
// The packet header: what a switch needs (record, source and destination host, flow hash), padded
// so that payload + header + PPP = payload + WIRE_OVERHEAD_BYTES.
// ------------------------------------------------------------------------------------------------
uint32_t g_headerBytes = 40;

class FabricHeader : public Header
{
  public:
    uint32_t rec = 0;   // packet record index
    uint32_t src = 0;   // source host index
    uint32_t dst = 0;   // destination host index
    uint32_t flow = 0;  // flow hash (hash fields + seed)

    static TypeId GetTypeId()
    {
        static TypeId tid = TypeId("fabricsim::FabricHeader")
                                .SetParent<Header>()
                                .SetGroupName("Network")
                                .AddConstructor<FabricHeader>();
        return tid;
    }
    TypeId GetInstanceTypeId() const override { return GetTypeId(); }
    uint32_t GetSerializedSize() const override { return g_headerBytes; }
    void Serialize(Buffer::Iterator i) const override
    {
        i.WriteU32(rec);
        i.WriteU32(src);
        i.WriteU32(dst);
        i.WriteU32(flow);
        i.WriteU8(0, g_headerBytes - 16);
    }
    uint32_t Deserialize(Buffer::Iterator i) override
    {
        rec = i.ReadU32();
        src = i.ReadU32();
        dst = i.ReadU32();
        flow = i.ReadU32();
        return g_headerBytes;
    }
    void Print(std::ostream& os) const override
    {
        os << "rec=" << rec << " src=" << src << " dst=" << dst << " flow=" << flow;
    }
};

// ------------------------------------------------------------------------------------------------
// Records and run state
// ------------------------------------------------------------------------------------------------
std::vector<int64_t> g_txPs;     // NIC started sending the packet (-1: never sent)
std::vector<int64_t> g_rxPs;     // first copy fully received by the destination host (-1: never)
std::vector<int16_t> g_path;     // index of the core switch crossed (-1: none)
std::vector<uint8_t> g_dropped;  // 1: a queue dropped it
std::vector<uint8_t> g_dropSite; // where: 1 host NIC, 2 edge->host, 3 edge->core, 4 core->edge, 5 VOQ

uint64_t g_sent = 0, g_received = 0, g_drops = 0, g_duplicates = 0;
uint32_t g_senders = 0, g_sendersDone = 0;
int64_t g_lastSendPs = -1;
int64_t g_tmaxPs = 0;
bool g_finished = false;   // the run reached its end (everything accounted for, or tmax after the last send)
int g_mode = kEcmp;

void Finish()
{
    if (!g_finished)
    {
        g_finished = true;
        Simulator::Stop();
    }
}

void EndAfterTmax()
{
    Finish();
}

// Called whenever a packet leaves the network (received or dropped): once every sender is done and
// nothing is in flight, waiting out tmax would only add idle samples.
inline void CheckDone()
{
    if (g_sendersDone == g_senders && g_sent == g_received + g_drops)
    {
        Finish();
    }
}

void SenderDone()
{
    g_sendersDone++;
    if (g_sendersDone == g_senders)
    {
        g_lastSendPs = Simulator::Now().GetPicoSeconds();
        Simulator::Schedule(PicoSeconds(g_tmaxPs), &EndAfterTmax);
        CheckDone();
    }
}

inline void RecordDrop(uint32_t rec, uint8_t site)
{
    if (!g_dropped[rec])
    {
        g_dropped[rec] = 1;
        g_dropSite[rec] = site;
        g_drops++;
    }
    CheckDone();
}

// ------------------------------------------------------------------------------------------------
// Hashing (ECMP): murmur3's finalizer over the design's hash fields
// ------------------------------------------------------------------------------------------------
inline uint32_t Fmix(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

inline uint32_t Combine(uint32_t h, uint32_t v)
{
    return Fmix(h ^ (v + 0x9e3779b9u + (h << 6) + (h >> 2)));
}

// mask bits as net.ipv4.fib_multipath_hash_fields: 0x01 src_ip, 0x02 dst_ip, 0x04 proto,
// 0x10 src_port, 0x20 dst_port
uint32_t FlowHash(uint32_t seed, uint32_t mask, uint32_t srcIp, uint32_t dstIp, uint32_t proto, uint32_t sport,
                  uint32_t dport)
{
    uint32_t h = Fmix(seed ^ 0x5bd1e995u);
    if (mask & 0x01) h = Combine(h, srcIp);
    if (mask & 0x02) h = Combine(h, dstIp);
    if (mask & 0x04) h = Combine(h, proto);
    if (mask & 0x10) h = Combine(h, sport);
    if (mask & 0x20) h = Combine(h, dport);
    return h;
}

void FlowHashes(uint32_t n, uint32_t seed, uint32_t mask, const uint32_t* srcIp, const uint32_t* dstIp, uint32_t proto,
                const uint32_t* sport, uint32_t dport, uint32_t* out)
{
    for (uint32_t i = 0; i < n; i++) out[i] = FlowHash(seed, mask, srcIp[i], dstIp[i], proto, sport[i], dport);
}

// Member of an n-way group: the flow hash salted per switch (independent choices at each tier,
// as switches with their own hash seeds make), scaled onto [0, n) without a modulo bias.
inline uint32_t Pick(uint32_t flow, uint32_t salt, uint32_t n)
{
    return uint32_t((uint64_t(Fmix(flow ^ salt)) * n) >> 32);
}

// ------------------------------------------------------------------------------------------------
// Topology
// ------------------------------------------------------------------------------------------------
struct Port
{
    Ptr<PointToPointNetDevice> dev;
    Ptr<Queue<Packet>> queue;
    uint32_t node = 0, peerNode = 0, peerPort = 0;
    uint8_t dropSite = 0;
    // 64-bit counters (ns-3's queue byte counters are 32-bit: 4 GB is 80 ms of a 400G link)
    uint64_t enqBytes = 0, enqPackets = 0, dropBytes = 0, dropPackets = 0;
    uint64_t rxPackets = 0;  // packets this device received from its peer
};

struct NodeInfo
{
    int role = kHost;
    uint32_t index = 0;  // host, edge or core index
    std::vector<uint32_t> ports;  // global port ids, in device (ifindex) order
};

std::vector<Ptr<Node>> g_nodeObj;
std::vector<NodeInfo> g_node;
std::vector<Port> g_port;
std::vector<uint32_t> g_edgeOfHost;    // host -> edge index
std::vector<uint32_t> g_hostPort;      // host -> global port id of its edge switch's port towards it
std::vector<uint32_t> g_hostNicPort;   // host -> global port id of its own NIC
uint32_t g_nEdges = 0;
const Address g_anyAddress;            // point-to-point devices ignore the destination address

// Hand a packet to an output port; a full queue drops it.
inline bool SendOnPort(uint32_t pid, Ptr<Packet> p, uint32_t rec)
{
    Port& port = g_port[pid];
    uint32_t bytes = p->GetSize() + kPppBytes;
    if (port.dev->Send(p, g_anyAddress, kIpv4))
    {
        port.enqBytes += bytes;
        port.enqPackets++;
        return true;
    }
    port.dropBytes += bytes;
    port.dropPackets++;
    RecordDrop(rec, port.dropSite);
    return false;
}

class Switch;

// A scheduled fabric's edge switch (NCP) takes over both directions of its traffic.
class EdgeHook
{
  public:
    virtual ~EdgeHook() = default;
    virtual void FromHost(Switch& sw, Ptr<Packet> p, const FabricHeader& h) = 0;
    virtual void FromFabric(Switch& sw, Ptr<Packet> p, const FabricHeader& h) = 0;
};

class Switch
{
  public:
    uint32_t node = 0;
    int tier = kEdge;
    uint32_t index = 0;
    uint32_t salt = 0;
    std::vector<uint32_t> groupOff, groupLen;  // by destination edge: ECMP group in groupPorts
    std::vector<uint32_t> groupPorts;          // global port ids
    std::vector<uint32_t> rr;                  // spray: one round-robin counter per destination edge
    std::vector<uint8_t> fromHost;             // by local port (ifindex): the port faces a host
    EdgeHook* hook = nullptr;

    // The member of the group towards destination edge e for this packet.
    uint32_t Next(uint32_t e, const FabricHeader& h, bool spray)
    {
        uint32_t n = groupLen[e], off = groupOff[e];
        if (n == 1) return groupPorts[off];
        if (spray) return groupPorts[off + (rr[e]++ % n)];
        return groupPorts[off + Pick(h.flow, salt, n)];
    }

    void Forward(Ptr<Packet> p, const FabricHeader& h)
    {
        uint32_t e = g_edgeOfHost[h.dst];
        if (tier == kCore) g_path[h.rec] = int16_t(index);
        uint32_t pid = (tier == kEdge && e == index) ? g_hostPort[h.dst] : Next(e, h, g_mode != kEcmp);
        SendOnPort(pid, p, h.rec);
    }

    bool Receive(Ptr<NetDevice> dev, Ptr<const Packet> cp, uint16_t, const Address&)
    {
        uint32_t local = dev->GetIfIndex();
        g_port[g_node[node].ports[local]].rxPackets++;
        // The device hands over the channel's own copy and keeps no reference it reads again, so
        // the packet is forwarded as is (no copy per hop).
        Ptr<Packet> p = ConstCast<Packet>(cp);
        FabricHeader h;
        p->PeekHeader(h);
        if (hook)
        {
            if (fromHost[local]) hook->FromHost(*this, p, h);
            else hook->FromFabric(*this, p, h);
            return true;
        }
        Forward(p, h);
        return true;
    }
};

std::vector<Switch*> g_switchOfNode;  // node id -> switch (nullptr for hosts)
std::vector<Switch*> g_edgeSwitch;    // edge index -> switch

// ------------------------------------------------------------------------------------------------
// Hosts: the sender application and the receiver
// ------------------------------------------------------------------------------------------------
struct HostMsg
{
    int64_t startPs;
    uint32_t firstRec, packets, payload, lastPayload, dst, flow;
    uint32_t next = 0;
};

class HostSender : public Application
{
  public:
    static TypeId GetTypeId()
    {
        static TypeId tid = TypeId("fabricsim::HostSender")
                                .SetParent<Application>()
                                .SetGroupName("Applications")
                                .AddConstructor<HostSender>();
        return tid;
    }

    uint32_t m_host = 0;
    Ptr<PointToPointNetDevice> m_dev;
    uint32_t m_nicPort = 0;
    DataRate m_rate;
    std::vector<HostMsg> m_msgs;   // sorted by start time
    size_t m_arrived = 0;
    std::vector<uint32_t> m_ring;  // messages in flight, in round-robin order
    size_t m_cursor = 0;
    bool m_sending = false;
    uint32_t m_txFrame = 0;
    Time m_txTime;

    void StartApplication() override
    {
        if (!m_msgs.empty()) ScheduleArrival();
    }
    void StopApplication() override {}

    void ScheduleArrival()
    {
        Simulator::Schedule(PicoSeconds(m_msgs[m_arrived].startPs) - Simulator::Now(), &HostSender::Arrive, this);
    }

    void Arrive()
    {
        int64_t now = Simulator::Now().GetPicoSeconds();
        while (m_arrived < m_msgs.size() && m_msgs[m_arrived].startPs <= now) m_ring.push_back(uint32_t(m_arrived++));
        if (m_arrived < m_msgs.size()) ScheduleArrival();
        if (!m_sending) SendNext();
    }

    // One packet of the next message in turn, then wait exactly its serialization: the NIC is
    // free again when the next one goes (same DataRate arithmetic as the device).
    void SendNext()
    {
        if (m_ring.empty())
        {
            m_sending = false;
            if (m_arrived == m_msgs.size()) SenderDone();
            return;
        }
        if (m_cursor >= m_ring.size()) m_cursor = 0;
        HostMsg& m = m_msgs[m_ring[m_cursor]];
        uint32_t seq = m.next++;
        uint32_t payload = (seq + 1 == m.packets) ? m.lastPayload : m.payload;
        uint32_t rec = m.firstRec + seq;
        if (m.next == m.packets) m_ring.erase(m_ring.begin() + m_cursor);
        else m_cursor++;
        Ptr<Packet> p = Create<Packet>(payload);
        FabricHeader h;
        h.rec = rec;
        h.src = m_host;
        h.dst = m.dst;
        h.flow = m.flow;
        p->AddHeader(h);
        g_txPs[rec] = Simulator::Now().GetPicoSeconds();
        g_sent++;
        uint32_t frame = p->GetSize() + kPppBytes;
        if (frame != m_txFrame)  // most packets are full ones: convert once
        {
            m_txFrame = frame;
            m_txTime = m_rate.CalculateBytesTxTime(frame);
        }
        Time tx = m_txTime;
        m_sending = true;
        SendOnPort(m_nicPort, p, rec);
        Simulator::Schedule(tx, &HostSender::SendNext, this);
    }

    bool Receive(Ptr<NetDevice> dev, Ptr<const Packet> p, uint16_t, const Address&)
    {
        g_port[m_nicPort].rxPackets++;
        FabricHeader h;
        p->PeekHeader(h);
        if (g_rxPs[h.rec] < 0)
        {
            g_rxPs[h.rec] = Simulator::Now().GetPicoSeconds();
            g_received++;
            CheckDone();
        }
        else
        {
            g_duplicates++;
        }
        return true;
    }
};

std::vector<Ptr<HostSender>> g_hostApp;

// ------------------------------------------------------------------------------------------------
// Building (called once from Python with flat arrays)
// ------------------------------------------------------------------------------------------------
// Nodes: roles[i] in {kHost, kEdge, kCore}, idx[i] = index within the role.
void BuildNodes(uint32_t n, const int32_t* roles, const int32_t* idx, uint32_t nEdges, uint64_t nRecords, int mode,
                uint32_t hashSeed, uint32_t headerBytes, int64_t tmaxPs)
{
    g_mode = mode;
    g_headerBytes = headerBytes;
    g_tmaxPs = tmaxPs;
    g_nEdges = nEdges;
    g_txPs.assign(nRecords, -1);
    g_rxPs.assign(nRecords, -1);
    g_path.assign(nRecords, -1);
    g_dropped.assign(nRecords, 0);
    g_dropSite.assign(nRecords, 0);
    uint32_t nHosts = 0;
    for (uint32_t i = 0; i < n; i++) nHosts += roles[i] == kHost;
    g_edgeOfHost.assign(nHosts, 0);
    g_hostPort.assign(nHosts, 0);
    g_hostNicPort.assign(nHosts, 0);
    g_hostApp.assign(nHosts, nullptr);
    g_edgeSwitch.assign(nEdges, nullptr);
    g_switchOfNode.assign(n, nullptr);
    g_node.resize(n);
    for (uint32_t i = 0; i < n; i++)
    {
        Ptr<Node> node = CreateObject<Node>();
        g_nodeObj.push_back(node);
        g_node[i].role = roles[i];
        g_node[i].index = uint32_t(idx[i]);
        if (roles[i] != kHost)
        {
            Switch* sw = new Switch();
            sw->node = i;
            sw->tier = roles[i];
            sw->index = uint32_t(idx[i]);
            sw->salt = Fmix(hashSeed * 0x9e3779b1u + i + 1);
            sw->rr.assign(nEdges, 0);
            g_switchOfNode[i] = sw;
            if (roles[i] == kEdge) g_edgeSwitch[idx[i]] = sw;
        }
    }
}

// Links: one per entry; device a is added to node a (next ifindex), device b to node b.
// queue*: egress buffer of that end in bytes; site*: drop site code of that direction.
void BuildLinks(uint32_t n, const int32_t* a, const int32_t* b, const double* rateBps, const int64_t* delayPs,
                const int64_t* queueA, const int64_t* queueB, const int32_t* siteA, const int32_t* siteB)
{
    for (uint32_t i = 0; i < n; i++)
    {
        Ptr<PointToPointChannel> ch = CreateObject<PointToPointChannel>();
        ch->SetAttribute("Delay", TimeValue(PicoSeconds(delayPs[i])));
        uint32_t ends[2] = {uint32_t(a[i]), uint32_t(b[i])};
        int64_t queues[2] = {queueA[i], queueB[i]};
        int32_t sites[2] = {siteA[i], siteB[i]};
        uint32_t pids[2];
        for (int k = 0; k < 2; k++)
        {
            Ptr<PointToPointNetDevice> dev = CreateObject<PointToPointNetDevice>();
            dev->SetAddress(Mac48Address::Allocate());
            dev->SetDataRate(DataRate(uint64_t(rateBps[i] + 0.5)));
            dev->SetMtu(9000);
            Ptr<DropTailQueue<Packet>> q = CreateObject<DropTailQueue<Packet>>();
            q->SetMaxSize(QueueSize(QueueSizeUnit::BYTES, uint32_t(queues[k])));
            dev->SetQueue(q);
            g_nodeObj[ends[k]]->AddDevice(dev);
            dev->Attach(ch);
            Port port;
            port.dev = dev;
            port.queue = q;
            port.node = ends[k];
            port.dropSite = uint8_t(sites[k]);
            pids[k] = uint32_t(g_port.size());
            g_port.push_back(port);
            g_node[ends[k]].ports.push_back(pids[k]);
        }
        for (int k = 0; k < 2; k++)
        {
            g_port[pids[k]].peerNode = ends[1 - k];
            g_port[pids[k]].peerPort = pids[1 - k];
        }
    }
}

// Routes: for switch s (node id) and destination edge e, the group of local ports (ifindex)
// routeOff[s * nEdges + e] .. + routeLen[...] in routePorts. Hosts: their edge and the edge's
// port (ifindex) towards them.
void BuildRoutes(uint32_t nNodes, const int32_t* routeOff, const int32_t* routeLen, const int32_t* routePorts,
                 uint32_t nHosts, const int32_t* hostEdge, const int32_t* hostEdgePort)
{
    for (uint32_t s = 0; s < nNodes; s++)
    {
        Switch* sw = g_switchOfNode[s];
        if (!sw) continue;
        sw->groupOff.assign(g_nEdges, 0);
        sw->groupLen.assign(g_nEdges, 0);
        for (uint32_t e = 0; e < g_nEdges; e++)
        {
            sw->groupOff[e] = uint32_t(sw->groupPorts.size());
            sw->groupLen[e] = uint32_t(routeLen[s * g_nEdges + e]);
            for (int32_t k = 0; k < routeLen[s * g_nEdges + e]; k++)
                sw->groupPorts.push_back(g_node[s].ports[routePorts[routeOff[s * g_nEdges + e] + k]]);
        }
        sw->fromHost.assign(g_node[s].ports.size(), 0);
        for (size_t k = 0; k < g_node[s].ports.size(); k++)
            sw->fromHost[k] = g_node[g_port[g_node[s].ports[k]].peerNode].role == kHost;
    }
    for (uint32_t h = 0; h < nHosts; h++)
    {
        g_edgeOfHost[h] = uint32_t(hostEdge[h]);
        Switch* sw = g_edgeSwitch[hostEdge[h]];
        g_hostPort[h] = g_node[sw->node].ports[hostEdgePort[h]];
    }
}

// Messages (any order): the sender of each host gets its own, sorted by start time.
void BuildSenders(uint32_t nNodes, uint32_t nMsgs, const int32_t* src, const int32_t* dst, const int64_t* startPs,
                  const int64_t* firstRec, const int32_t* packets, const int32_t* payload, const int32_t* lastPayload,
                  const uint32_t* flow)
{
    for (uint32_t i = 0; i < nNodes; i++)
    {
        if (g_node[i].role != kHost) continue;
        uint32_t h = g_node[i].index;
        Ptr<HostSender> app = CreateObject<HostSender>();
        app->m_host = h;
        app->m_nicPort = g_node[i].ports[0];
        app->m_dev = g_port[app->m_nicPort].dev;
        DataRateValue rate;
        app->m_dev->GetAttribute("DataRate", rate);
        app->m_rate = rate.Get();
        g_hostNicPort[h] = app->m_nicPort;
        g_nodeObj[i]->AddApplication(app);
        app->SetStartTime(Seconds(0));
        app->m_dev->SetReceiveCallback(MakeCallback(&HostSender::Receive, PeekPointer(app)));
        g_hostApp[h] = app;
    }
    for (uint32_t m = 0; m < nMsgs; m++)
    {
        HostMsg msg{startPs[m], uint32_t(firstRec[m]), uint32_t(packets[m]), uint32_t(payload[m]),
                    uint32_t(lastPayload[m]), uint32_t(dst[m]), flow[m]};
        g_hostApp[src[m]]->m_msgs.push_back(msg);
    }
    g_senders = 0;
    for (auto& app : g_hostApp)
    {
        if (!app || app->m_msgs.empty()) continue;
        std::stable_sort(app->m_msgs.begin(), app->m_msgs.end(),
                         [](const HostMsg& x, const HostMsg& y) { return x.startPs < y.startPs; });
        g_senders++;
    }
    for (uint32_t s = 0; s < nNodes; s++)
    {
        Switch* sw = g_switchOfNode[s];
        if (!sw) continue;
        for (uint32_t pid : g_node[s].ports)
            g_port[pid].dev->SetReceiveCallback(MakeCallback(&Switch::Receive, sw));
    }
}

// ------------------------------------------------------------------------------------------------
// Link counters, sampled every interval (cumulative, per transmitting port)
// ------------------------------------------------------------------------------------------------
std::vector<int64_t> g_sampleT;
std::vector<uint32_t> g_samplePort;
std::vector<uint64_t> g_sampleTxBytes, g_sampleTxPackets, g_sampleDrops, g_sampleBacklogBytes, g_sampleBacklogPackets;
int64_t g_sampleIntervalPs = 0;

using SampleHook = void (*)(int64_t);
SampleHook g_extraSample = nullptr;  // the scheduled fabric adds its VOQs

void SampleNow()
{
    int64_t t = Simulator::Now().GetPicoSeconds();
    for (uint32_t pid = 0; pid < g_port.size(); pid++)
    {
        Port& p = g_port[pid];
        uint64_t backB = p.queue->GetNBytes(), backP = p.queue->GetNPackets();
        g_sampleT.push_back(t);
        g_samplePort.push_back(pid);
        g_sampleTxBytes.push_back(p.enqBytes - backB);
        g_sampleTxPackets.push_back(p.enqPackets - backP);
        g_sampleDrops.push_back(p.dropPackets);
        g_sampleBacklogBytes.push_back(backB);
        g_sampleBacklogPackets.push_back(backP);
    }
    if (g_extraSample) g_extraSample(t);
}

void SampleTick()
{
    SampleNow();
    if (!g_finished) Simulator::Schedule(PicoSeconds(g_sampleIntervalPs), &SampleTick);
}

void StartSampling(int64_t firstPs, int64_t intervalPs)
{
    g_sampleIntervalPs = intervalPs;
    Simulator::Schedule(PicoSeconds(firstPs), &SampleTick);
}

// ------------------------------------------------------------------------------------------------
// Accounting at the end: every packet sent is received, dropped by a queue, or still in the
// network (queued, on a wire, held by a scheduled fabric). Counted from the devices' own
// queue counters and our receive counters, independently of the per-packet records.
// ------------------------------------------------------------------------------------------------
using HeldHook = uint64_t (*)();
HeldHook g_extraHeld = nullptr;      // packets a scheduled fabric holds (VOQs, reorder buffers)
HeldHook g_extraDropped = nullptr;   // packets it dropped (VOQs)

// sent, received, dropped by queues, queued in devices, on wires, held elsewhere, dropped per record
std::vector<double> Accounting()
{
    uint64_t queued = 0, onWire = 0, dropped = 0;
    for (Port& p : g_port)
    {
        uint64_t dequeued = uint64_t(p.queue->GetTotalReceivedPackets()) - p.queue->GetNPackets();
        queued += p.queue->GetNPackets();
        dropped += p.queue->GetTotalDroppedPackets();
        onWire += dequeued - g_port[p.peerPort].rxPackets;
    }
    uint64_t held = g_extraHeld ? g_extraHeld() : 0;
    if (g_extraDropped) dropped += g_extraDropped();
    return {double(g_sent), double(g_received), double(dropped), double(queued), double(onWire), double(held),
            double(g_drops), double(g_duplicates)};
}

// ------------------------------------------------------------------------------------------------
// Reading out (into buffers Python allocated)
// ------------------------------------------------------------------------------------------------
void CopyRecords(int64_t* tx, int64_t* rx, int16_t* path, uint8_t* dropped, uint8_t* site)
{
    std::copy(g_txPs.begin(), g_txPs.end(), tx);
    std::copy(g_rxPs.begin(), g_rxPs.end(), rx);
    std::copy(g_path.begin(), g_path.end(), path);
    std::copy(g_dropped.begin(), g_dropped.end(), dropped);
    std::copy(g_dropSite.begin(), g_dropSite.end(), site);
}

size_t SampleRows()
{
    return g_sampleT.size();
}

void CopySamples(int64_t* t, uint32_t* port, uint64_t* txBytes, uint64_t* txPackets, uint64_t* drops,
                 uint64_t* backlogBytes, uint64_t* backlogPackets)
{
    std::copy(g_sampleT.begin(), g_sampleT.end(), t);
    std::copy(g_samplePort.begin(), g_samplePort.end(), port);
    std::copy(g_sampleTxBytes.begin(), g_sampleTxBytes.end(), txBytes);
    std::copy(g_sampleTxPackets.begin(), g_sampleTxPackets.end(), txPackets);
    std::copy(g_sampleDrops.begin(), g_sampleDrops.end(), drops);
    std::copy(g_sampleBacklogBytes.begin(), g_sampleBacklogBytes.end(), backlogBytes);
    std::copy(g_sampleBacklogPackets.begin(), g_sampleBacklogPackets.end(), backlogPackets);
}

int64_t NowPs()
{
    return Simulator::Now().GetPicoSeconds();
}

}  // namespace fabricsim
