package opcuasim

import (
	"slices"
	"strings"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
)

// The service handlers below replace gopcua's for Read, Write, Call, Browse
// and TranslateBrowsePathsToNodeIds, and wrap CreateMonitoredItems, so the
// PLC can count what reaches it and give the status codes of OPC 10000-4.

// MaxOperations bounds the elements of one request; more get
// Bad_TooManyOperations.
const MaxOperations = 1000

func header(req *ua.RequestHeader, st ua.StatusCode) *ua.ResponseHeader {
	return &ua.ResponseHeader{
		Timestamp:          time.Now(),
		RequestHandle:      req.RequestHandle,
		ServiceResult:      st,
		ServiceDiagnostics: &ua.DiagnosticInfo{},
		StringTable:        []string{},
		AdditionalHeader:   ua.NewExtensionObject(nil),
	}
}

func fault(req *ua.RequestHeader, st ua.StatusCode) ua.Response {
	return &ua.ServiceFault{ResponseHeader: header(req, st)}
}

// check rejects a request without a valid session or with a bad number of
// elements.
func (p *PLC) check(h *ua.RequestHeader, n int) ua.StatusCode {
	switch {
	case p.srv.Session(h) == nil:
		return ua.StatusBadSessionIDInvalid
	case n == 0:
		return ua.StatusBadNothingToDo
	case n > MaxOperations:
		return ua.StatusBadTooManyOperations
	}
	return ua.StatusOK
}

func (p *PLC) handleRead(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.ReadRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	if st := p.check(req.RequestHeader, len(req.NodesToRead)); st != ua.StatusOK {
		return fault(req.RequestHeader, st), nil
	}
	results := make([]*ua.DataValue, len(req.NodesToRead))
	var counted uint64
	for i, rv := range req.NodesToRead {
		if rv == nil || rv.NodeID == nil {
			results[i] = badValue(ua.StatusBadNodeIDInvalid)
			continue
		}
		ns := rv.NodeID.Namespace()
		if ns != 0 {
			counted++
		}
		switch {
		case ns == p.space.ns:
			if rv.IndexRange != "" {
				results[i] = badValue(ua.StatusBadIndexRangeNoData)
				continue
			}
			results[i] = p.space.Attribute(rv.NodeID, rv.AttributeID)
		default:
			space, err := p.srv.Namespace(int(ns))
			if err != nil {
				results[i] = badValue(ua.StatusBadNodeIDUnknown)
				continue
			}
			results[i] = space.Attribute(rv.NodeID, rv.AttributeID)
		}
	}
	p.stats.add(func(c *Counters) { c.Reads += counted })
	return &ua.ReadResponse{ResponseHeader: header(req.RequestHeader, ua.StatusOK), Results: results}, nil
}

func (p *PLC) handleWrite(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.WriteRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	if st := p.check(req.RequestHeader, len(req.NodesToWrite)); st != ua.StatusOK {
		return fault(req.RequestHeader, st), nil
	}
	results := make([]ua.StatusCode, len(req.NodesToWrite))
	for i, w := range req.NodesToWrite {
		if w == nil {
			p.stats.write(nil)
			results[i] = ua.StatusBadNodeIDInvalid
			continue
		}
		p.stats.write(w.NodeID)
		results[i] = p.writeValue(w.NodeID, w.AttributeID, w.IndexRange, w.Value)
	}
	return &ua.WriteResponse{ResponseHeader: header(req.RequestHeader, ua.StatusOK), Results: results}, nil
}

// writeValue applies one write and announces the changes it caused.
func (p *PLC) writeValue(nid *ua.NodeID, attr ua.AttributeID, indexRange string, dv *ua.DataValue) ua.StatusCode {
	n := p.space.lookup(nid)
	switch {
	case n == nil && nid != nil && nid.Namespace() != p.space.ns && p.srv != nil && p.srv.Node(nid) != nil:
		return ua.StatusBadNotWritable // the standard nodes are read-only here
	case n == nil:
		return ua.StatusBadNodeIDUnknown
	case attr != ua.AttributeIDValue || n.class != ua.NodeClassVariable || !n.writable():
		return ua.StatusBadNotWritable
	case indexRange != "":
		return ua.StatusBadIndexRangeNoData // every writable variable is a scalar
	case dv == nil || dv.Value == nil || dv.Value.Has(ua.VariantArrayValues) || uint32(dv.Value.Type()) != n.dataType:
		return ua.StatusBadTypeMismatch
	case dv.EncodingMask&ua.DataValueStatusCode != 0 && dv.Status != ua.StatusOK:
		return ua.StatusBadWriteNotSupported // writing a status is not supported
	}
	p.mu.Lock()
	st := n.set(dv.Value.Value())
	if st == ua.StatusOK {
		p.m.changed()
	}
	changed := p.snapshotLocked()
	p.mu.Unlock()
	p.notify(changed)
	return st
}

func (p *PLC) handleCall(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.CallRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	if st := p.check(req.RequestHeader, len(req.MethodsToCall)); st != ua.StatusOK {
		return fault(req.RequestHeader, st), nil
	}
	results := make([]*ua.CallMethodResult, len(req.MethodsToCall))
	for i, c := range req.MethodsToCall {
		if c == nil {
			p.stats.call("?")
			results[i] = &ua.CallMethodResult{StatusCode: ua.StatusBadNodeIDInvalid}
			continue
		}
		results[i] = p.call(c)
	}
	return &ua.CallResponse{ResponseHeader: header(req.RequestHeader, ua.StatusOK), Results: results}, nil
}

// resolveMethod finds the method a call names: a method node of the object,
// or a FileType method (namespace 0) called on a FileType instance.
func (p *PLC) resolveMethod(objID, methodID *ua.NodeID) (*node, ua.StatusCode) {
	obj := p.space.lookup(objID)
	if obj == nil || obj.class != ua.NodeClassObject {
		return nil, ua.StatusBadNodeIDUnknown
	}
	if obj.typeDef == typeFile {
		if name, ok := fileTypeMethods[numericID(methodID)]; ok {
			for _, k := range obj.kids {
				if k.class == ua.NodeClassMethod && k.name == name {
					return k, ua.StatusOK
				}
			}
		}
	}
	m := p.space.lookup(methodID)
	if m == nil || m.class != ua.NodeClassMethod || m.parent != obj {
		return nil, ua.StatusBadMethodInvalid
	}
	return m, ua.StatusOK
}

// callKeys names a call for the counters: the method's browse name and
// "Parent.Method" when the method id is known, even if the call is refused;
// else the method's NodeId string.
func (p *PLC) callKeys(c *ua.CallMethodRequest) []string {
	if m := p.space.lookup(c.MethodID); m != nil && m.class == ua.NodeClassMethod {
		return []string{m.name, m.parentName() + "." + m.name}
	}
	if name, ok := fileTypeMethods[numericID(c.MethodID)]; ok {
		if obj := p.space.lookup(c.ObjectID); obj != nil && obj.typeDef == typeFile {
			return []string{name, obj.name + "." + name}
		}
		return []string{name, "FileType." + name}
	}
	if c.MethodID == nil {
		return []string{"?"}
	}
	return []string{c.MethodID.String()}
}

func (p *PLC) call(c *ua.CallMethodRequest) *ua.CallMethodResult {
	p.stats.call(p.callKeys(c)...)
	m, st := p.resolveMethod(c.ObjectID, c.MethodID)
	if m == nil {
		return &ua.CallMethodResult{StatusCode: st}
	}

	in := c.InputArguments
	switch {
	case len(in) < len(m.inArgs):
		return &ua.CallMethodResult{StatusCode: ua.StatusBadArgumentsMissing}
	case len(in) > len(m.inArgs):
		return &ua.CallMethodResult{StatusCode: ua.StatusBadTooManyArguments}
	}
	argResults := make([]ua.StatusCode, len(in))
	bad := false
	for i, a := range m.inArgs {
		if in[i] == nil || in[i].Has(ua.VariantArrayValues) || uint32(in[i].Type()) != a.DataType.IntID() {
			argResults[i] = ua.StatusBadTypeMismatch
			bad = true
		}
	}
	if bad {
		return &ua.CallMethodResult{StatusCode: ua.StatusBadInvalidArgument, InputArgumentResults: argResults}
	}

	p.mu.Lock()
	out, st := m.call(in)
	if st == ua.StatusOK {
		p.m.changed()
	}
	changed := p.snapshotLocked()
	p.mu.Unlock()
	p.notify(changed)

	res := &ua.CallMethodResult{StatusCode: st}
	if len(in) > 0 {
		res.InputArgumentResults = argResults
	}
	if st == ua.StatusOK {
		res.OutputArguments = out
	}
	return res
}

func (p *PLC) handleBrowse(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.BrowseRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	if st := p.check(req.RequestHeader, len(req.NodesToBrowse)); st != ua.StatusOK {
		return fault(req.RequestHeader, st), nil
	}
	results := make([]*ua.BrowseResult, len(req.NodesToBrowse))
	var counted uint64
	for i, bd := range req.NodesToBrowse {
		if bd == nil || bd.NodeID == nil {
			results[i] = &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDInvalid}
			continue
		}
		if bd.NodeID.Namespace() != 0 {
			counted++
		}
		space, err := p.srv.Namespace(int(bd.NodeID.Namespace()))
		if err != nil {
			results[i] = &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
			continue
		}
		results[i] = space.Browse(bd)
	}
	p.stats.add(func(c *Counters) { c.Browses += counted })
	return &ua.BrowseResponse{ResponseHeader: header(req.RequestHeader, ua.StatusOK), Results: results}, nil
}

func (p *PLC) handleTranslate(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.TranslateBrowsePathsToNodeIDsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	if st := p.check(req.RequestHeader, len(req.BrowsePaths)); st != ua.StatusOK {
		return fault(req.RequestHeader, st), nil
	}
	results := make([]*ua.BrowsePathResult, len(req.BrowsePaths))
	for i, bp := range req.BrowsePaths {
		if bp == nil {
			results[i] = &ua.BrowsePathResult{StatusCode: ua.StatusBadNodeIDInvalid}
			continue
		}
		results[i] = p.translate(bp)
	}
	return &ua.TranslateBrowsePathsToNodeIDsResponse{ResponseHeader: header(req.RequestHeader, ua.StatusOK), Results: results}, nil
}

// translate resolves a browse path that starts at the Root or Objects folder
// or at a node of the PLC's namespace and follows forward hierarchical
// references.
func (p *PLC) translate(bp *ua.BrowsePath) *ua.BrowsePathResult {
	if bp.RelativePath == nil || len(bp.RelativePath.Elements) == 0 {
		return &ua.BrowsePathResult{StatusCode: ua.StatusBadNothingToDo}
	}
	elems := bp.RelativePath.Elements
	var cur *node
	start := bp.StartingNode
	switch {
	case start == nil:
		return &ua.BrowsePathResult{StatusCode: ua.StatusBadNodeIDInvalid}
	case isNumeric(start, 0) && start.IntID() == id.RootFolder:
		if e := elems[0]; e.TargetName == nil || e.TargetName.NamespaceIndex != 0 || e.TargetName.Name != "Objects" || e.IsInverse {
			return &ua.BrowsePathResult{StatusCode: ua.StatusBadNoMatch}
		}
		elems = elems[1:]
		if len(elems) == 0 {
			return found(ua.NewNumericNodeID(0, id.ObjectsFolder))
		}
		fallthrough
	case isNumeric(start, 0) && start.IntID() == id.ObjectsFolder:
		e := elems[0]
		if e.IsInverse || e.TargetName == nil || e.TargetName.NamespaceIndex != p.space.ns || e.TargetName.Name != p.space.root.name {
			return &ua.BrowsePathResult{StatusCode: ua.StatusBadNoMatch}
		}
		cur, elems = p.space.root, elems[1:]
	default:
		cur = p.space.lookup(start)
		if cur == nil {
			if p.srv.Node(start) != nil {
				return &ua.BrowsePathResult{StatusCode: ua.StatusBadNoMatch}
			}
			return &ua.BrowsePathResult{StatusCode: ua.StatusBadNodeIDUnknown}
		}
	}
	for _, e := range elems {
		if e.TargetName == nil || e.TargetName.Name == "" {
			return &ua.BrowsePathResult{StatusCode: ua.StatusBadBrowseNameInvalid}
		}
		if e.IsInverse {
			return &ua.BrowsePathResult{StatusCode: ua.StatusBadNoMatch}
		}
		next := p.space.child(cur, e.TargetName)
		if next == nil || !refMatches(e.ReferenceTypeID, e.IncludeSubtypes, next.ref) {
			return &ua.BrowsePathResult{StatusCode: ua.StatusBadNoMatch}
		}
		cur = next
	}
	return found(cur.id)
}

// isNumeric reports whether nid is a numeric NodeId in namespace ns, in any
// of its encodings.
func isNumeric(nid *ua.NodeID, ns uint16) bool {
	if nid == nil || nid.Namespace() != ns {
		return false
	}
	switch nid.Type() {
	case ua.NodeIDTypeTwoByte, ua.NodeIDTypeFourByte, ua.NodeIDTypeNumeric:
		return true
	}
	return false
}

// numericID is the identifier of a numeric NodeId of namespace 0, else 0.
func numericID(nid *ua.NodeID) uint32 {
	if !isNumeric(nid, 0) {
		return 0
	}
	return nid.IntID()
}

func found(nid *ua.NodeID) *ua.BrowsePathResult {
	return &ua.BrowsePathResult{
		StatusCode: ua.StatusOK,
		Targets:    []*ua.BrowsePathTarget{{TargetID: &ua.ExpandedNodeID{NodeID: nid}, RemainingPathIndex: 0xFFFFFFFF}},
	}
}

// handleCreateMonitoredItems counts the items and hands the request to
// gopcua's monitored item service, which samples values through
// space.Attribute whenever the PLC announces a change.
func (p *PLC) handleCreateMonitoredItems(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.CreateMonitoredItemsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	if st := p.check(req.RequestHeader, len(req.ItemsToCreate)); st != ua.StatusOK {
		return fault(req.RequestHeader, st), nil
	}
	var counted uint64
	for _, it := range req.ItemsToCreate {
		if it.ItemToMonitor != nil && it.ItemToMonitor.NodeID != nil && it.ItemToMonitor.NodeID.Namespace() != 0 {
			counted++
		}
	}
	p.stats.add(func(c *Counters) { c.MonitoredItems += counted })
	return p.srv.MonitoredItemService.CreateMonitoredItems(sc, r, reqID)
}

// handleGetEndpoints describes the public endpoint only, never the internal
// one behind the relay. Unlike gopcua, which answers an EndpointUrl it does
// not know exactly with no endpoints at all, it falls back to every public
// endpoint, as OPC 10000-4 5.4.4 asks.
func (p *PLC) handleGetEndpoints(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.GetEndpointsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	var all, match []*ua.EndpointDescription
	for _, ep := range p.publicEndpoints() {
		all = append(all, ep)
		if strings.EqualFold(strings.TrimSuffix(ep.EndpointURL, "/"), strings.TrimSuffix(req.EndpointURL, "/")) {
			match = append(match, ep)
		}
	}
	if len(match) == 0 {
		match = all
	}
	return &ua.GetEndpointsResponse{ResponseHeader: header(req.RequestHeader, ua.StatusOK), Endpoints: match}, nil
}

func (p *PLC) handleFindServers(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.FindServersRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	var servers []*ua.ApplicationDescription
	if eps := p.publicEndpoints(); len(eps) > 0 {
		servers = append(servers, eps[0].Server)
	}
	return &ua.FindServersResponse{ResponseHeader: header(req.RequestHeader, ua.StatusOK), Servers: servers}, nil
}

// publicEndpoints are gopcua's endpoint descriptions without the internal
// endpoint, with discovery URLs that name the public endpoint.
func (p *PLC) publicEndpoints() []*ua.EndpointDescription {
	var urls []string
	var out []*ua.EndpointDescription
	for _, ep := range p.srv.Endpoints() {
		if ep.EndpointURL == p.internal {
			continue
		}
		if !slices.Contains(urls, ep.EndpointURL) {
			urls = append(urls, ep.EndpointURL)
		}
		c := *ep
		app := *ep.Server
		c.Server = &app
		out = append(out, &c)
	}
	for _, ep := range out {
		ep.Server.DiscoveryURLs = urls
	}
	return out
}
