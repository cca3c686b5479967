package opcua

import (
	"testing"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// hotRequests are the services a vendor session sends all the time.
var hotRequests = []ua.Request{
	&ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
		{NodeID: tank, AttributeID: ua.AttributeIDValue},
		{NodeID: num(2, 7), AttributeID: ua.AttributeIDValue, IndexRange: "1:2"},
		{NodeID: ua.NewGUIDNodeID(2, "72962B91-FA75-4AE6-8D28-B404DC7DAF63"), AttributeID: ua.AttributeIDDisplayName},
	}},
	&ua.WriteRequest{NodesToWrite: []*ua.WriteValue{
		{NodeID: tank, AttributeID: ua.AttributeIDValue},
		{NodeID: num(2, 7), AttributeID: ua.AttributeIDDescription},
	}},
	callReq(
		call(str(2, "Recipe.csv"), ns0(id.FileType_Write), b(1)),
		call(str(2, "Recipe.csv"), ns0(id.FileType_Open), b(1)),
		call(num(2, 10), num(2, 11)),
		call(num(1, 5), num(2, 265)),
	),
	&ua.BrowseRequest{NodesToBrowse: []*ua.BrowseDescription{{NodeID: ns0(id.ObjectsFolder)}}},
	&ua.CreateMonitoredItemsRequest{ItemsToCreate: []*ua.MonitoredItemCreateRequest{
		{ItemToMonitor: &ua.ReadValueID{NodeID: tank, AttributeID: ua.AttributeIDValue}},
	}},
	&ua.PublishRequest{SubscriptionAcknowledgements: []*ua.SubscriptionAcknowledgement{{SubscriptionID: 1, SequenceNumber: 2}}},
	&ua.PublishRequest{},
}

// hotClassifier is a session's classifier as the terminator sets it up: with
// a namespace map, an empty method map and one numeric RegisterNodes alias
// (ns=2;i=7 stands for ns=2;i=70), so that every numeric NodeId is looked up.
func hotClassifier(tb testing.TB) *Classifier {
	c := &Classifier{
		Aliases:    new(AliasMap),
		Methods:    new(MethodMap),
		Namespaces: NewNamespaceMap([]string{"http://opcfoundation.org/UA/", "urn:plc", DIURI}),
	}
	if err := c.Aliases.Register(num(2, 7), num(2, 70)); err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestZeroAlloc(t *testing.T) {
	c := hotClassifier(t)
	dst := make([]Element, 0, 16)
	if _, got, _ := c.Append(dst, hotRequests[0]); got[1].NodeID.String() != "ns=2;i=70" {
		t.Fatalf("alias not resolved: %v", got[1].NodeID)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		for _, r := range hotRequests {
			var err error
			if _, dst, err = c.Append(dst, r); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("Append of the hot services allocates %v times per run; want 0", allocs)
	}
}

func BenchmarkClassifyHot(b *testing.B) {
	c := hotClassifier(b)
	dst := make([]Element, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range hotRequests {
			_, dst, _ = c.Append(dst, r)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(hotRequests)), "ns/request")
}
