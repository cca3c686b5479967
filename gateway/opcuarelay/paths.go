package opcuarelay

import (
	"context"
	"fmt"
	"sync"

	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/policy"
)

// Limits of resolving a subtree path: a rule that names a path covers at
// most this many nodes, this deep; a bigger subtree is cut and logged.
const (
	maxPathNodes = 20000
	maxPathDepth = 16
)

// pathSet holds the browse paths of the rules resolved against one PLC
// session: for each path, the NodeIds it covers.
type pathSet struct {
	mu    sync.Mutex
	nodes map[string]map[string]bool // path key → NodeId strings
}

func (p *pathSet) Under(bp *policy.OPCUAPath, node *ua.NodeID) bool {
	if node == nil {
		return false
	}
	p.mu.Lock()
	set := p.nodes[bp.Key]
	p.mu.Unlock()
	return set[node.String()]
}

func (p *pathSet) has(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.nodes[key]
	return ok
}

// resolvePaths resolves the paths of the rules that may apply to this
// session and are not resolved yet. A path the PLC does not have covers no
// node; a PLC error leaves it unresolved (it covers nothing) and is tried
// again with the next request.
func (s *session) resolvePaths(ctx context.Context, paths []policy.OPCUAPath) {
	for i := range paths {
		bp := &paths[i]
		if s.paths.has(bp.Key) {
			continue
		}
		set, err := s.resolvePath(ctx, bp)
		if err != nil {
			s.c.s.d.Log.Warn("opc ua browse path not resolved; rules naming it match nothing for now",
				"session", s.id, "path", bp.Key, "err", err)
			continue
		}
		s.paths.mu.Lock()
		if s.paths.nodes == nil {
			s.paths.nodes = make(map[string]map[string]bool)
		}
		s.paths.nodes[bp.Key] = set
		s.paths.mu.Unlock()
	}
}

func (s *session) resolvePath(ctx context.Context, bp *policy.OPCUAPath) (map[string]bool, error) {
	set := map[string]bool{}
	idx, ok := s.ns.Index(bp.Namespace)
	if !ok {
		return set, nil // the PLC has no such namespace
	}
	rel := &ua.RelativePath{}
	for _, n := range bp.Names {
		rel.Elements = append(rel.Elements, &ua.RelativePathElement{ReferenceTypeID: ua.NewNumericNodeID(0, 33),
			IncludeSubtypes: true, TargetName: &ua.QualifiedName{NamespaceIndex: idx, Name: n}})
	}
	resp, err := s.plc.Do(ctx, &ua.TranslateBrowsePathsToNodeIDsRequest{BrowsePaths: []*ua.BrowsePath{{
		StartingNode: ua.NewNumericNodeID(0, 85), RelativePath: rel}}})
	if err != nil {
		return nil, err
	}
	r, ok := resp.(*ua.TranslateBrowsePathsToNodeIDsResponse)
	if !ok || len(r.Results) != 1 || r.Results[0] == nil {
		return nil, fmt.Errorf("TranslateBrowsePathsToNodeIds: %v", resp.Header().ServiceResult)
	}
	if r.Results[0].StatusCode != ua.StatusOK || len(r.Results[0].Targets) == 0 {
		return set, nil // no such path on this PLC
	}
	var level []*ua.NodeID
	for _, t := range r.Results[0].Targets {
		if t != nil && t.TargetID != nil && t.TargetID.NodeID != nil && t.TargetID.ServerIndex == 0 {
			set[t.TargetID.NodeID.String()] = true
			level = append(level, t.TargetID.NodeID)
		}
	}
	for depth := 0; bp.Subtree && len(level) > 0 && depth < maxPathDepth; depth++ {
		var next []*ua.NodeID
		for _, n := range level {
			refs, err := s.browse(ctx, n, 33, false, 0)
			if err != nil {
				return nil, err
			}
			for _, ref := range refs {
				if ref.NodeID == nil || ref.NodeID.NodeID == nil || ref.NodeID.ServerIndex != 0 {
					continue
				}
				k := ref.NodeID.NodeID.String()
				if set[k] {
					continue
				}
				if len(set) >= maxPathNodes {
					s.c.s.d.Log.Warn("opc ua browse path covers too many nodes; cut", "path", bp.Key, "nodes", len(set))
					return set, nil
				}
				set[k] = true
				next = append(next, ref.NodeID.NodeID)
			}
		}
		level = next
	}
	return set, nil
}
