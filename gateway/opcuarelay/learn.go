package opcuarelay

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/protocols/opcua"
)

// learnMethods finds, for each instance method a Call names that the
// session does not know yet, the method of the object's type that it
// instantiates (FileType Write on a firmware object is program, whatever
// its instance NodeId). It asks the PLC with brana's own Browse and Read.
// An error leaves the method unknown, and the Call is refused.
func (s *session) learnMethods(ctx context.Context, call *ua.CallRequest) error {
	learned := 0
	for _, m := range call.MethodsToCall {
		if m == nil || m.MethodID == nil || m.ObjectID == nil {
			continue
		}
		s.mu.Lock()
		meth, obj := s.aliases.Resolve(m.MethodID), s.aliases.Resolve(m.ObjectID)
		known := meth.Namespace() == 0 || s.methods.TypeMethod(meth) != nil || s.noType[meth.String()]
		s.mu.Unlock()
		if known {
			continue
		}
		// Each unknown method costs brana Browses at the PLC before any
		// decision: bounded per request and per session.
		if learned++; learned > maxLearnPerCall {
			return fmt.Errorf("more than %d methods of unknown type in one Call", maxLearnPerCall)
		}
		s.mu.Lock()
		full := len(s.noType) >= opcua.MaxRegistered
		s.mu.Unlock()
		if full {
			return fmt.Errorf("the session has called more than %d distinct unknown methods", opcua.MaxRegistered)
		}
		tm, err := s.typeMethod(ctx, obj, meth)
		if err != nil {
			return err
		}
		s.mu.Lock()
		if tm == nil {
			s.noType[meth.String()] = true
		} else if err := s.methods.Learn(meth, tm); err != nil {
			s.mu.Unlock()
			return err
		}
		s.mu.Unlock()
	}
	return nil
}

// maxLearnPerCall bounds the methods of unknown type one Call may name.
const maxLearnPerCall = 16

const (
	refHasComponent      = 47
	refHasTypeDefinition = 40
	refHasSubtype        = 45
	baseObjectType       = 58
)

// typeMethod returns the type-level method that meth on obj instantiates,
// or nil if it instantiates none.
func (s *session) typeMethod(ctx context.Context, obj, meth *ua.NodeID) (*ua.NodeID, error) {
	name, err := s.browseName(ctx, obj, meth)
	if err != nil || name == "" {
		return nil, err
	}
	types, err := s.browse(ctx, obj, refHasTypeDefinition, false, 0)
	if err != nil {
		return nil, err
	}
	if len(types) == 0 {
		return nil, nil
	}
	t := types[0].NodeID.NodeID
	for depth := 0; depth < 8 && t != nil; depth++ {
		if t.Namespace() == 0 {
			if t.IntID() == baseObjectType {
				return nil, nil
			}
			// Standard types are known without asking.
			if n, ok := ns0Method(id.Name(t.IntID()) + "_" + name); ok {
				return ua.NewNumericNodeID(0, n), nil
			}
		}
		comps, err := s.browse(ctx, t, refHasComponent, false, ua.NodeClassMethod)
		if err != nil {
			return nil, err
		}
		for _, r := range comps {
			if r.BrowseName != nil && r.BrowseName.Name == name && r.NodeID != nil {
				return r.NodeID.NodeID, nil
			}
		}
		supers, err := s.browse(ctx, t, refHasSubtype, true, 0)
		if err != nil || len(supers) == 0 {
			return nil, err
		}
		t = supers[0].NodeID.NodeID
	}
	return nil, nil
}

// browseName finds meth among the components of obj, the way a client
// sees it, and returns its BrowseName ("" when obj has no such method).
func (s *session) browseName(ctx context.Context, obj, meth *ua.NodeID) (string, error) {
	comps, err := s.browse(ctx, obj, refHasComponent, false, ua.NodeClassMethod)
	if err != nil {
		return "", err
	}
	for _, r := range comps {
		if r.NodeID != nil && r.NodeID.NodeID != nil && r.NodeID.NodeID.String() == meth.String() && r.BrowseName != nil {
			return r.BrowseName.Name, nil
		}
	}
	return "", nil
}

func (s *session) browse(ctx context.Context, n *ua.NodeID, ref uint32, inverse bool, class ua.NodeClass) ([]*ua.ReferenceDescription, error) {
	dir := ua.BrowseDirectionForward
	if inverse {
		dir = ua.BrowseDirectionInverse
	}
	resp, err := s.plc.Do(ctx, &ua.BrowseRequest{View: &ua.ViewDescription{ViewID: ua.NewTwoByteNodeID(0)},
		NodesToBrowse: []*ua.BrowseDescription{{NodeID: n, BrowseDirection: dir, ReferenceTypeID: ua.NewNumericNodeID(0, ref),
			IncludeSubtypes: true, NodeClassMask: uint32(class), ResultMask: uint32(ua.BrowseResultMaskAll)}}})
	if err != nil {
		return nil, err
	}
	r, ok := resp.(*ua.BrowseResponse)
	if !ok || len(r.Results) != 1 || r.Results[0] == nil {
		return nil, fmt.Errorf("browsing %s: %v", n, resp.Header().ServiceResult)
	}
	if st := r.Results[0].StatusCode; st != ua.StatusOK {
		if st == ua.StatusBadNodeIDUnknown {
			return nil, nil
		}
		return nil, fmt.Errorf("browsing %s: %v", n, st)
	}
	return r.Results[0].References, nil
}

var (
	ns0Once    sync.Once
	ns0Methods map[string]uint32
)

// ns0Method looks a standard method up by its symbolic name, e.g.
// "FileType_Open".
func ns0Method(name string) (uint32, bool) {
	ns0Once.Do(func() {
		ns0Methods = make(map[string]uint32)
		for i := uint32(1); i < 40000; i++ {
			if n := id.Name(i); n != "" && strings.Count(n, "_") == 1 {
				ns0Methods[n] = i
			}
		}
	})
	n, ok := ns0Methods[name]
	return n, ok
}
