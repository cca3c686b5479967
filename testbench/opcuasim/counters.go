package opcuasim

import (
	"strings"
	"sync"

	"github.com/gopcua/opcua/ua"
)

// Counters is a snapshot of the operations that reached the PLC, whether
// they succeeded or not, so an operation a gateway refused shows as zero
// here. Each element of a request counts once (a Read of three nodes adds 3
// to Reads). Reads, Browses and MonitoredItems leave out nodes of namespace 0
// (the standard Server object), which every client reads while connecting.
type Counters struct {
	Reads          uint64 // Read: nodes to read
	Writes         uint64 // Write: nodes to write, any namespace
	Calls          uint64 // Call: methods to call, any namespace
	Browses        uint64 // Browse: nodes to browse
	MonitoredItems uint64 // CreateMonitoredItems: items to create
}

type stats struct {
	mu       sync.Mutex
	c        Counters
	writesTo map[string]uint64 // NodeID string
	calls    map[string]uint64 // method browse name, "Object.Method", or the method NodeID string
}

func (st *stats) reset() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.c = Counters{}
	st.writesTo = make(map[string]uint64)
	st.calls = make(map[string]uint64)
}

func (st *stats) add(f func(c *Counters)) {
	st.mu.Lock()
	f(&st.c)
	st.mu.Unlock()
}

func (st *stats) write(nid *ua.NodeID) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.c.Writes++
	if nid != nil {
		st.writesTo[nid.String()]++
	}
}

func (st *stats) call(keys ...string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.c.Calls++
	for _, k := range keys {
		st.calls[k]++
	}
}

// Counters returns a snapshot of the operation counters.
func (p *PLC) Counters() Counters {
	p.stats.mu.Lock()
	defer p.stats.mu.Unlock()
	return p.stats.c
}

// ResetCounters zeroes all counters.
func (p *PLC) ResetCounters() { p.stats.reset() }

// WritesTo is the number of write operations that named nodeID, applied or
// refused. nodeID is a NodeId string ("ns=2;s=Feeder.Protection.TimeDelay")
// or the string identifier of a node in the PLC's namespace
// ("Feeder.Protection.TimeDelay").
func (p *PLC) WritesTo(nodeID string) uint64 {
	key := ua.NewStringNodeID(p.space.ns, nodeID).String()
	if strings.Contains(nodeID, "=") {
		if nid, err := ua.ParseNodeID(nodeID); err == nil {
			key = nid.String()
		}
	}
	p.stats.mu.Lock()
	defer p.stats.mu.Unlock()
	return p.stats.writesTo[key]
}

// Calls is the number of method calls that reached the PLC for a method.
// name is the method's browse name ("Close" counts Breaker.Close and
// Firmware.Close), its parent and browse name ("Breaker.Close",
// "Firmware.Write"), or, for a method the PLC does not know, the method's
// NodeId string.
func (p *PLC) Calls(name string) uint64 {
	p.stats.mu.Lock()
	defer p.stats.mu.Unlock()
	return p.stats.calls[name]
}
