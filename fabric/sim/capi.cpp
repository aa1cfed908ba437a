// fabric packet simulator: the model's C ABI. This file, engine.h and ddc.h are one translation
// unit, compiled once by the system C++ compiler into a cached shared library
// (fabric/sim/native.py) that the simulation process loads with ctypes (fabric/sim/child.py).
//
// C linkage because ctypes can call nothing else: no overloading, no std::vector across the
// boundary (the caller passes buffers it allocated), no bool globals read in place. Every
// function here only forwards to the model or to ns-3's Simulator; the model's logic stays in
// engine.h and ddc.h. The Python signatures of these functions are in fabric/sim/native.py: a
// change here changes them too.
#include "engine.h"
#include "ddc.h"

#include <cstddef>

using namespace fabricsim;

namespace
{
// Copy a fixed list of figures into the caller's buffer; returns how many there are, so the caller
// can tell that its list of names and this one still agree.
size_t Fill(const std::vector<double>& values, double* out, size_t capacity)
{
    std::copy_n(values.begin(), std::min(values.size(), capacity), out);
    return values.size();
}
}  // namespace

extern "C"
{
// Before anything else: a 400G link serializes a 4 KB packet in 82.76 ns; ns would round it.
void fabricsim_SetTimeResolutionPs()
{
    Time::SetResolution(Time::PS);
}

void fabricsim_BuildNodes(uint32_t n, const int32_t* roles, const int32_t* idx, uint32_t nEdges, uint64_t nRecords,
                          int32_t mode, uint32_t hashSeed, uint32_t headerBytes, int64_t tmaxPs)
{
    BuildNodes(n, roles, idx, nEdges, nRecords, mode, hashSeed, headerBytes, tmaxPs);
}

void fabricsim_BuildLinks(uint32_t n, const int32_t* a, const int32_t* b, const double* rateBps, const int64_t* delayPs,
                          const int64_t* queueA, const int64_t* queueB, const int32_t* siteA, const int32_t* siteB)
{
    BuildLinks(n, a, b, rateBps, delayPs, queueA, queueB, siteA, siteB);
}

void fabricsim_BuildRoutes(uint32_t nNodes, const int32_t* routeOff, const int32_t* routeLen, const int32_t* routePorts,
                           uint32_t nHosts, const int32_t* hostEdge, const int32_t* hostEdgePort)
{
    BuildRoutes(nNodes, routeOff, routeLen, routePorts, nHosts, hostEdge, hostEdgePort);
}

void fabricsim_FlowHashes(uint32_t n, uint32_t seed, uint32_t mask, const uint32_t* srcIp, const uint32_t* dstIp,
                          uint32_t proto, const uint32_t* sport, uint32_t dport, uint32_t* out)
{
    FlowHashes(n, seed, mask, srcIp, dstIp, proto, sport, dport, out);
}

void fabricsim_BuildSenders(uint32_t nNodes, uint32_t nMsgs, const int32_t* src, const int32_t* dst,
                            const int64_t* startPs, const int64_t* firstRec, const int32_t* packets,
                            const int32_t* payload, const int32_t* lastPayload, const uint32_t* flow)
{
    BuildSenders(nNodes, nMsgs, src, dst, startPs, firstRec, packets, payload, lastPayload, flow);
}

void fabricsim_InstallScheduled(uint32_t nHosts, uint64_t nRecords, uint32_t creditBytes, uint64_t voqLimitBytes,
                                uint32_t fcPackets, int64_t ctrlRemotePs, int64_t ctrlLocalPs,
                                int64_t reorderTimeoutPs, const double* grantPsPerByte, const double* ncpWeight,
                                uint32_t nWatch, const int32_t* watchNcp, const int32_t* watchDst)
{
    InstallScheduled(nHosts, nRecords, creditBytes, voqLimitBytes, fcPackets, ctrlRemotePs, ctrlLocalPs,
                     reorderTimeoutPs, grantPsPerByte, ncpWeight, nWatch, watchNcp, watchDst);
}

void fabricsim_StartSampling(int64_t firstPs, int64_t intervalPs)
{
    StartSampling(firstPs, intervalPs);
}

// Run the event loop for this much simulated time (or until the model finishes and stops it).
void fabricsim_RunForPs(int64_t ps)
{
    Simulator::Stop(PicoSeconds(ps));
    Simulator::Run();
}

uint64_t fabricsim_EventCount()
{
    return Simulator::GetEventCount();
}

int64_t fabricsim_NowPs()
{
    return NowPs();
}

bool fabricsim_Finished()
{
    return g_finished;
}

uint64_t fabricsim_SentPackets()
{
    return g_sent;
}

int64_t fabricsim_LastSendPs()
{
    return g_lastSendPs;
}

void fabricsim_SampleNow()
{
    SampleNow();
}

void fabricsim_CopyRecords(int64_t* tx, int64_t* rx, int16_t* path, uint8_t* dropped, uint8_t* site)
{
    CopyRecords(tx, rx, path, dropped, site);
}

size_t fabricsim_SampleRows()
{
    return SampleRows();
}

void fabricsim_CopySamples(int64_t* t, uint32_t* port, uint64_t* txBytes, uint64_t* txPackets, uint64_t* drops,
                           uint64_t* backlogBytes, uint64_t* backlogPackets)
{
    CopySamples(t, port, txBytes, txPackets, drops, backlogBytes, backlogPackets);
}

size_t fabricsim_Accounting(double* out, size_t capacity)
{
    return Fill(Accounting(), out, capacity);
}

size_t fabricsim_VoqSampleRows()
{
    return VoqSampleRows();
}

void fabricsim_CopyVoqSamples(int64_t* t, uint32_t* watch, uint64_t* txBytes, uint64_t* txPackets, uint64_t* drops,
                              uint64_t* backlogBytes, uint64_t* backlogPackets)
{
    CopyVoqSamples(t, watch, txBytes, txPackets, drops, backlogBytes, backlogPackets);
}

size_t fabricsim_ScheduledStats(double* out, size_t capacity)
{
    return Fill(ScheduledStats(), out, capacity);
}
}  // extern "C"
