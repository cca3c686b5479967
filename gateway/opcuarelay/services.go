package opcuarelay

import (
	"errors"

	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/protocols/opcua"
)

// arrayService knows where a service keeps its per-element array and its
// per-element results, so that refused elements can be cut out of the
// request and answered Bad_UserAccessDenied in their own slots.
type arrayService struct {
	keep     func(req ua.Request, d opcua.Denials) error   // leaves only allowed entries in req
	merge    func(resp ua.Response, d opcua.Denials) error // puts refused results back in order
	refused  func(d opcua.Denials) ua.Response             // the answer when every element is refused
	statuses func(resp ua.Response) []ua.StatusCode        // per-element outcome, for the audit log
}

var errShape = errors.New("the PLC answered with another response type")

// array builds an arrayService. items and results point at the arrays,
// diag at the DiagnosticInfos (cleared when merging: they would no longer
// line up), refused is the result of a refused element.
func array[Rq ua.Request, Rs ua.Response, In, Out any](
	items func(Rq) *[]In, newResp func() Rs, results func(Rs) *[]Out, diag func(Rs) *[]*ua.DiagnosticInfo,
	refused func() Out, status func(Out) ua.StatusCode,
) *arrayService {
	return &arrayService{
		keep: func(req ua.Request, d opcua.Denials) error {
			r, ok := req.(Rq)
			if !ok {
				return errShape
			}
			kept, err := opcua.Keep(d, *items(r))
			if err != nil {
				return err
			}
			*items(r) = kept
			return nil
		},
		merge: func(resp ua.Response, d opcua.Denials) error {
			if _, ok := resp.(*ua.ServiceFault); ok {
				return nil // the PLC's fault answers the whole request
			}
			r, ok := resp.(Rs)
			if !ok {
				return errShape
			}
			if resp.Header().ServiceResult != ua.StatusOK {
				// A bad service result answers the whole request: results
				// of the forwarded subset would sit in the wrong slots.
				*results(r) = nil
				if diag != nil {
					*diag(r) = nil
				}
				return nil
			}
			all, err := opcua.Merge(d, *results(r), func(int) Out { return refused() })
			if err != nil {
				return err
			}
			*results(r) = all
			if diag != nil {
				*diag(r) = nil
			}
			return nil
		},
		refused: func(d opcua.Denials) ua.Response {
			r := newResp()
			out := make([]Out, len(d))
			for i := range out {
				out[i] = refused()
			}
			*results(r) = out
			return r
		},
		statuses: func(resp ua.Response) []ua.StatusCode {
			r, ok := resp.(Rs)
			if !ok {
				return nil
			}
			res := *results(r)
			st := make([]ua.StatusCode, len(res))
			for i, x := range res {
				st[i] = status(x)
			}
			return st
		},
	}
}

func deniedCode() ua.StatusCode            { return ua.StatusBadUserAccessDenied }
func codeOf(s ua.StatusCode) ua.StatusCode { return s }

// services lists the services whose elements are decided one by one.
// Any other service is forwarded whole or refused whole.
var services = map[string]*arrayService{
	"Read": array(func(r *ua.ReadRequest) *[]*ua.ReadValueID { return &r.NodesToRead },
		func() *ua.ReadResponse { return &ua.ReadResponse{} },
		func(r *ua.ReadResponse) *[]*ua.DataValue { return &r.Results },
		func(r *ua.ReadResponse) *[]*ua.DiagnosticInfo { return &r.DiagnosticInfos },
		opcua.DeniedDataValue, func(v *ua.DataValue) ua.StatusCode {
			if v == nil {
				return ua.StatusOK
			}
			return v.Status
		}),
	"Write": array(func(r *ua.WriteRequest) *[]*ua.WriteValue { return &r.NodesToWrite },
		func() *ua.WriteResponse { return &ua.WriteResponse{} },
		func(r *ua.WriteResponse) *[]ua.StatusCode { return &r.Results },
		func(r *ua.WriteResponse) *[]*ua.DiagnosticInfo { return &r.DiagnosticInfos },
		deniedCode, codeOf),
	"Call": array(func(r *ua.CallRequest) *[]*ua.CallMethodRequest { return &r.MethodsToCall },
		func() *ua.CallResponse { return &ua.CallResponse{} },
		func(r *ua.CallResponse) *[]*ua.CallMethodResult { return &r.Results },
		func(r *ua.CallResponse) *[]*ua.DiagnosticInfo { return &r.DiagnosticInfos },
		func() *ua.CallMethodResult { return &ua.CallMethodResult{StatusCode: ua.StatusBadUserAccessDenied} },
		func(v *ua.CallMethodResult) ua.StatusCode {
			return statusOf(v, func() ua.StatusCode { return v.StatusCode })
		}),
	"Browse": array(func(r *ua.BrowseRequest) *[]*ua.BrowseDescription { return &r.NodesToBrowse },
		func() *ua.BrowseResponse { return &ua.BrowseResponse{} },
		func(r *ua.BrowseResponse) *[]*ua.BrowseResult { return &r.Results },
		func(r *ua.BrowseResponse) *[]*ua.DiagnosticInfo { return &r.DiagnosticInfos },
		func() *ua.BrowseResult { return &ua.BrowseResult{StatusCode: ua.StatusBadUserAccessDenied} },
		func(v *ua.BrowseResult) ua.StatusCode {
			return statusOf(v, func() ua.StatusCode { return v.StatusCode })
		}),
	"TranslateBrowsePathsToNodeIds": array(func(r *ua.TranslateBrowsePathsToNodeIDsRequest) *[]*ua.BrowsePath { return &r.BrowsePaths },
		func() *ua.TranslateBrowsePathsToNodeIDsResponse { return &ua.TranslateBrowsePathsToNodeIDsResponse{} },
		func(r *ua.TranslateBrowsePathsToNodeIDsResponse) *[]*ua.BrowsePathResult { return &r.Results },
		func(r *ua.TranslateBrowsePathsToNodeIDsResponse) *[]*ua.DiagnosticInfo { return &r.DiagnosticInfos },
		func() *ua.BrowsePathResult { return &ua.BrowsePathResult{StatusCode: ua.StatusBadUserAccessDenied} },
		func(v *ua.BrowsePathResult) ua.StatusCode {
			return statusOf(v, func() ua.StatusCode { return v.StatusCode })
		}),
	"HistoryRead": array(func(r *ua.HistoryReadRequest) *[]*ua.HistoryReadValueID { return &r.NodesToRead },
		func() *ua.HistoryReadResponse { return &ua.HistoryReadResponse{} },
		func(r *ua.HistoryReadResponse) *[]*ua.HistoryReadResult { return &r.Results },
		func(r *ua.HistoryReadResponse) *[]*ua.DiagnosticInfo { return &r.DiagnosticInfos },
		func() *ua.HistoryReadResult {
			return &ua.HistoryReadResult{StatusCode: ua.StatusBadUserAccessDenied, HistoryData: ua.NewExtensionObject(nil)}
		},
		func(v *ua.HistoryReadResult) ua.StatusCode {
			return statusOf(v, func() ua.StatusCode { return v.StatusCode })
		}),
	"HistoryUpdate": array(func(r *ua.HistoryUpdateRequest) *[]*ua.ExtensionObject { return &r.HistoryUpdateDetails },
		func() *ua.HistoryUpdateResponse { return &ua.HistoryUpdateResponse{} },
		func(r *ua.HistoryUpdateResponse) *[]*ua.HistoryUpdateResult { return &r.Results },
		func(r *ua.HistoryUpdateResponse) *[]*ua.DiagnosticInfo { return &r.DiagnosticInfos },
		func() *ua.HistoryUpdateResult {
			return &ua.HistoryUpdateResult{StatusCode: ua.StatusBadUserAccessDenied}
		},
		func(v *ua.HistoryUpdateResult) ua.StatusCode {
			return statusOf(v, func() ua.StatusCode { return v.StatusCode })
		}),
	"CreateMonitoredItems": array(func(r *ua.CreateMonitoredItemsRequest) *[]*ua.MonitoredItemCreateRequest { return &r.ItemsToCreate },
		func() *ua.CreateMonitoredItemsResponse { return &ua.CreateMonitoredItemsResponse{} },
		func(r *ua.CreateMonitoredItemsResponse) *[]*ua.MonitoredItemCreateResult { return &r.Results },
		func(r *ua.CreateMonitoredItemsResponse) *[]*ua.DiagnosticInfo { return &r.DiagnosticInfos },
		func() *ua.MonitoredItemCreateResult {
			return &ua.MonitoredItemCreateResult{StatusCode: ua.StatusBadUserAccessDenied, FilterResult: ua.NewExtensionObject(nil)}
		},
		func(v *ua.MonitoredItemCreateResult) ua.StatusCode {
			return statusOf(v, func() ua.StatusCode { return v.StatusCode })
		}),
	"ModifyMonitoredItems": array(func(r *ua.ModifyMonitoredItemsRequest) *[]*ua.MonitoredItemModifyRequest { return &r.ItemsToModify },
		func() *ua.ModifyMonitoredItemsResponse { return &ua.ModifyMonitoredItemsResponse{} },
		func(r *ua.ModifyMonitoredItemsResponse) *[]*ua.MonitoredItemModifyResult { return &r.Results },
		func(r *ua.ModifyMonitoredItemsResponse) *[]*ua.DiagnosticInfo { return &r.DiagnosticInfos },
		func() *ua.MonitoredItemModifyResult {
			return &ua.MonitoredItemModifyResult{StatusCode: ua.StatusBadUserAccessDenied, FilterResult: ua.NewExtensionObject(nil)}
		},
		func(v *ua.MonitoredItemModifyResult) ua.StatusCode {
			return statusOf(v, func() ua.StatusCode { return v.StatusCode })
		}),
	"DeleteMonitoredItems": array(func(r *ua.DeleteMonitoredItemsRequest) *[]uint32 { return &r.MonitoredItemIDs },
		func() *ua.DeleteMonitoredItemsResponse { return &ua.DeleteMonitoredItemsResponse{} },
		func(r *ua.DeleteMonitoredItemsResponse) *[]ua.StatusCode { return &r.Results },
		func(r *ua.DeleteMonitoredItemsResponse) *[]*ua.DiagnosticInfo { return &r.DiagnosticInfos },
		deniedCode, codeOf),
	"SetMonitoringMode": array(func(r *ua.SetMonitoringModeRequest) *[]uint32 { return &r.MonitoredItemIDs },
		func() *ua.SetMonitoringModeResponse { return &ua.SetMonitoringModeResponse{} },
		func(r *ua.SetMonitoringModeResponse) *[]ua.StatusCode { return &r.Results },
		func(r *ua.SetMonitoringModeResponse) *[]*ua.DiagnosticInfo { return &r.DiagnosticInfos },
		deniedCode, codeOf),
	"AddNodes": array(func(r *ua.AddNodesRequest) *[]*ua.AddNodesItem { return &r.NodesToAdd },
		func() *ua.AddNodesResponse { return &ua.AddNodesResponse{} },
		func(r *ua.AddNodesResponse) *[]*ua.AddNodesResult { return &r.Results },
		func(r *ua.AddNodesResponse) *[]*ua.DiagnosticInfo { return &r.DiagnosticInfos },
		func() *ua.AddNodesResult {
			return &ua.AddNodesResult{StatusCode: ua.StatusBadUserAccessDenied, AddedNodeID: ua.NewTwoByteNodeID(0)}
		},
		func(v *ua.AddNodesResult) ua.StatusCode {
			return statusOf(v, func() ua.StatusCode { return v.StatusCode })
		}),
	"DeleteNodes": array(func(r *ua.DeleteNodesRequest) *[]*ua.DeleteNodesItem { return &r.NodesToDelete },
		func() *ua.DeleteNodesResponse { return &ua.DeleteNodesResponse{} },
		func(r *ua.DeleteNodesResponse) *[]ua.StatusCode { return &r.Results },
		func(r *ua.DeleteNodesResponse) *[]*ua.DiagnosticInfo { return &r.DiagnosticInfos },
		deniedCode, codeOf),
	"AddReferences": array(func(r *ua.AddReferencesRequest) *[]*ua.AddReferencesItem { return &r.ReferencesToAdd },
		func() *ua.AddReferencesResponse { return &ua.AddReferencesResponse{} },
		func(r *ua.AddReferencesResponse) *[]ua.StatusCode { return &r.Results },
		func(r *ua.AddReferencesResponse) *[]*ua.DiagnosticInfo { return &r.DiagnosticInfos },
		deniedCode, codeOf),
	"DeleteReferences": array(func(r *ua.DeleteReferencesRequest) *[]*ua.DeleteReferencesItem { return &r.ReferencesToDelete },
		func() *ua.DeleteReferencesResponse { return &ua.DeleteReferencesResponse{} },
		func(r *ua.DeleteReferencesResponse) *[]ua.StatusCode { return &r.Results },
		func(r *ua.DeleteReferencesResponse) *[]*ua.DiagnosticInfo { return &r.DiagnosticInfos },
		deniedCode, codeOf),
	// RegisterNodes has no status per node: a refused node is "registered"
	// as itself, which OPC 10000-4, 5.8.5 allows, and every later use of
	// it is decided like any other NodeId.
	"RegisterNodes": array(func(r *ua.RegisterNodesRequest) *[]*ua.NodeID { return &r.NodesToRegister },
		func() *ua.RegisterNodesResponse { return &ua.RegisterNodesResponse{} },
		func(r *ua.RegisterNodesResponse) *[]*ua.NodeID { return &r.RegisteredNodeIDs },
		nil, func() *ua.NodeID { return nil }, func(*ua.NodeID) ua.StatusCode { return ua.StatusOK }),
}

func statusOf[T any](v *T, f func() ua.StatusCode) ua.StatusCode {
	if v == nil {
		return ua.StatusOK
	}
	return f()
}
