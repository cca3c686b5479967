// Package opcua sorts decoded OPC UA service requests into brana's operation
// classes ([opclass.Class]), one decision unit ([Element]) per array entry, so
// that the OPC UA terminator can ask policy about every node a request touches
// and answer Bad_UserAccessDenied for exactly the refused entries. It does no
// I/O, no logging and no policy: the terminator owns the secure channels and
// sessions (it hands each message body to [DecodeRequest] and the request to
// [Classifier.Classify]), the policy engine decides, and this package only
// describes.
//
// Untrusted bytes reach gopcua's ua package only through [DecodeRequest] and
// [DecodeResponse]. gopcua v0.8.0's ua.Decode allocates an array before it
// reads an element (a forged count of 2^31 costs gigabytes), panics on a
// Variant array length below -1 and recurses without limit, so these walk
// the body first, mirroring the decoder, and refuse it ([CodecError],
// Bad_DecodingError) unless every count is backed by elements that are
// present, the nesting stays within a fixed limit and gopcua can encode the
// result again as it was sent (they also refuse ExtensionObjects of types
// gopcua does not know, Bad_DataTypeIdUnknown, whose bodies it would drop).
// [EncodeRequest] and [EncodeResponse] likewise refuse values gopcua would
// encode wrongly, such as a nil header, instead of sending a corrupt message.
//
// Specifications:
//   - OPC 10000-4 (Services): the service sets and their request parameters
//     (View, Query, Attribute, Method, MonitoredItem, Subscription,
//     NodeManagement, Discovery, Session); RegisterNodes (5.8.5) aliases; Call
//     (5.11.2), where MethodId may name the ObjectType's Method.
//   - OPC 10000-5 (Information Model), Annex C: FileType (Open modes,
//     Write, Close, SetPosition), FileDirectoryType, TemporaryFileTransferType.
//   - OPC 10000-6 (Mappings): the binary encoding of NodeId (two-byte,
//     four-byte and numeric forms name the same node) and ExpandedNodeId
//     (a namespace URI replaces the index; a server index names another server).
//   - OPC 10000-100 (Devices), Software Update: the DI methods listed in
//     methods.go, recognised in the server's DI namespace.
//
// The rules from brana's PROTOCOLS.md that this package carries out, in brief:
//   - read: Browse, BrowseNext, TranslateBrowsePathsToNodeIds, RegisterNodes,
//     UnregisterNodes, Read, HistoryRead, the Subscription services except
//     TransferSubscriptions, and the MonitoredItem services.
//   - write: Write of the Value attribute. An IndexRange is still a write; it
//     is carried in [Element.IndexRange] so that rules can refuse it.
//   - control: Call of any method that is not program, Write of any attribute
//     other than Value.
//   - program: Call of FileType Open with a mode other than plain Read, and of
//     Write, Close and SetPosition (a stateless classifier cannot tell which
//     handle was opened for writing, so Close and SetPosition are program
//     always); TrustList and PubSubConfiguration CloseAndUpdate;
//     TemporaryFileTransferType GenerateFileForWrite and CloseAndCommit;
//     FileDirectoryType CreateFile, CreateDirectory, DeleteFileSystemObject
//     and MoveOrCopy; every Software Update method of OPC 10000-100;
//     NodeManagement (AddNodes, DeleteNodes, AddReferences, DeleteReferences)
//     and HistoryUpdate.
//   - unknown, denied unless a rule names it: TransferSubscriptions,
//     QueryFirst, QueryNext, RegisterServer, RegisterServer2, the session and
//     discovery services (the terminator answers those itself and never
//     forwards them) and any request type this package does not know.
//   - Side doors: CreateMonitoredItems elements carry the NodeId they read;
//     RegisterNodes aliases are mapped back to the real NodeId ([AliasMap])
//     before any element is built; a Call element carries its ObjectId and
//     MethodId and is classified by the MethodId, including the type-level
//     method ids (FileType Write on an instance object is program) and, once
//     the terminator has learned them, a server's own instance method ids
//     ([MethodMap]); ExpandedNodeIds with a namespace URI are resolved against
//     the server's NamespaceArray ([NamespaceMap]).
//   - Arrays are decided per element and answered in order ([Denials], [Keep],
//     [Merge]): a denied element gets Bad_UserAccessDenied in its own slot.
//
// Every request yields at least one Element, so that no request can pass
// policy vacuously: a service without a per-item array (CreateSubscription,
// Republish, ...) or with an empty one yields a single request-level Element
// with Index -1, whose refusal refuses the whole service.
//
// Classification of the hot services (Read, Write, Call, Browse,
// CreateMonitoredItems, Publish) does not allocate when the caller reuses the
// element slice ([Classifier.Append]), as long as the session's aliases and
// learned methods are numeric NodeIds (looking up a string or GUID NodeId
// builds a key once such keys are stored).
package opcua
