// Package opcuasim is a simulated OPC UA PLC for tests, labs and the demo.
//
// A [PLC] is an OPC UA server (gopcua's server package, security policy None,
// anonymous users) whose address space is a process model that behaves like
// plant equipment, updated by a ticker ([TickInterval]) or by [PLC.Step]. It
// counts what reaches it ([PLC.Counters], [PLC.WritesTo], [PLC.Calls]) and
// keeps the program clients load into its FileType object
// ([PLC.FileContents], [PLC.FileCommits]).
//
// The package is an independent oracle for brana: it imports nothing from
// brana, so a bug in brana's OPC UA handling cannot hide behind the same bug
// here. Services follow OPC 10000-4 (Read, Write, Call, Browse,
// TranslateBrowsePathsToNodeIds, subscriptions); the file object follows
// OPC 10000-5 Annex C (FileType).
//
// # What gopcua v0.8.0's server does and what this package adds
//
// gopcua's server answers Call with Bad_ServiceUnsupported and has no method
// nodes; its Write stores any value of any type in any attribute without
// range checks (and dereferences nil for an unknown namespace); it answers
// TranslateBrowsePathsToNodeIds, BrowseNext, RegisterNodes,
// ModifySubscription, SetPublishingMode, Republish, ModifyMonitoredItems and
// SetTriggering with Bad_ServiceUnsupported; its GetEndpoints returns nothing
// unless the EndpointUrl matches exactly; it cannot listen on a listener it
// is given nor report the port it bound; its Close leaves client connections
// open and waits up to 10 s for clients to hang up; it handles all requests
// of all clients on one goroutine and logs through the standard logger.
//
// This package registers its own handlers ([server.Server.RegisterHandler]
// before Start) for Read, Write, Call, Browse, TranslateBrowsePathsToNodeIds,
// GetEndpoints and FindServers, counts CreateMonitoredItems before handing it
// to gopcua, and implements the model namespace itself ([server.NameSpace]).
// The public port belongs to a small TCP relay in front of gopcua's internal
// loopback port, so Close and [PLC.DropConnections] cut connections at once.
// Subscriptions are gopcua's: the PLC announces changed values after each
// step, write and call; monitored items ignore sampling intervals, filters
// and queue sizes, and a subscription publishes the latest value of an item
// once per publishing interval.
//
// # Address space
//
// Namespace 1 is the server's own ("urn:brana:testbench:opcuasim:MODEL",
// empty); namespace 2 is the model's, "urn:brana:testbench:MODEL"
// ([PLC.NamespaceURI]). Clients should resolve the index through the
// NamespaceArray. NodeIds are strings of the browse path below Objects:
// ns=2;s=Feeder.Breaker.Closed. The model's object hangs off the Objects
// folder (i=85) by Organizes. Objects use HasComponent, folders (FolderType)
// Organizes, properties HasProperty. Measurements are Double unless noted; W
// marks a writable variable (AccessLevel CurrentRead|CurrentWrite), all others
// are read-only and a write gets Bad_NotWritable.
//
// "feeder": a 22 kV substation feeder bay; the breaker starts open.
//
//	Feeder/Breaker/Closed                     Boolean
//	Feeder/Breaker/Close()                    Bad_InvalidState while a trip is latched
//	Feeder/Breaker/Open()
//	Feeder/Measurements/CurrentL1..L3         A (load × 1.00, 0.98, 1.02)
//	Feeder/Measurements/Voltage               V line-to-line, 22000 − 2·I; 0 while open
//	Feeder/Measurements/Frequency             Hz, 50 − P/10⁶ (P in kW); 0 while open
//	Feeder/Measurements/ActivePower           kW, √3·U·I·pf/1000
//	Feeder/Protection/OvercurrentPickup   W   A, 1..2000, default 400
//	Feeder/Protection/TimeDelay           W   s, 0..60, default 0.5
//	Feeder/Protection/Tripped                 Boolean, latched
//	Feeder/Protection/TripCount               UInt32
//	Feeder/Protection/LastTripCurrent         A
//	Feeder/Protection/Reset()                 clears the latch
//	Feeder/Simulation/LoadCurrent         W   A per phase, 0..3000, default 200
//	Feeder/Simulation/PowerFactor         W   0..1, default 0.95
//
// Closed, the phase current follows the load with a 100 ms first-order lag;
// opening cuts it at once. When the highest phase current stays above the
// pickup for the time delay, the breaker trips and the trip latches.
//
// "pump": a water pumping station with a wet well (20 m², 4 m deep, starts
// at 1500 mm) and two pumps of 25 l/s at 100 % speed (2 s lag).
//
//	Pump/TankLevel                            mm
//	Pump/Inflow, Pump/Outflow                 l/s
//	Pump/DischargePressure                    mbar
//	Pump/Pump1Running, Pump2Running           Boolean
//	Pump/Pump1Fault, Pump2Fault               Boolean, dry-run trip, latched
//	Pump/Pump1Current, Pump2Current           A
//	Pump/Pump1Starts, Pump2Starts             UInt32
//	Pump/Pump1Command, Pump2Command       W   Boolean run commands
//	Pump/HighLevelAlarm, DryRunAlarm          Boolean
//	Pump/AutoMode                         W   Boolean, default true
//	Pump/SpeedSetpoint                    W   %, 0..100, default 80
//	Pump/StartLevel                       W   mm, 0..4000, default 2500
//	Pump/StopLevel                        W   mm, 0..4000, default 1000
//	Pump/HighLevel                        W   mm, 0..4000, default 3500
//	Pump/DryRunLevel                      W   mm, 0..4000, default 300
//	Pump/ResetFaults()
//	Pump/Simulation/Inflow                W   l/s, 0..100, default 15
//
// In auto mode pump 1 starts at StartLevel, pump 2 at HighLevel, both stop at
// StopLevel (the level control overwrites the commands). A running pump at or
// below DryRunLevel trips until ResetFaults.
//
// Both models also have:
//
//	MODEL/Heartbeat                           UInt32, +1 per model step
//	MODEL/Firmware                            FileType: Size (UInt64), Writable,
//	                                          UserWritable, OpenCount (UInt16)
//	MODEL/Firmware/Open(Mode Byte) → FileHandle UInt32
//	MODEL/Firmware/Close(FileHandle)
//	MODEL/Firmware/Read(FileHandle, Length Int32) → Data ByteString
//	MODEL/Firmware/Write(FileHandle, Data ByteString)
//	MODEL/Firmware/GetPosition(FileHandle) → UInt64
//	MODEL/Firmware/SetPosition(FileHandle, Position UInt64)
//
// The FileType methods may also be called by the method ids of FileType
// itself (ns=0;i=11580 Open, 11583 Close, 11585 Read, 11588 Write, 11590
// GetPosition, 11593 SetPosition) on the Firmware object. Modes: 1 read, 2
// write, 4 erase existing, 8 append. A write handle is exclusive
// (Bad_NotWritable while any handle is open); handles are shared by all
// sessions; the file holds at most [MaxFileSize] bytes.
//
// The Firmware file is the PLC's program. What a write handle writes is
// staged and replaces the contents only when that handle is closed (one
// commit); until then readers, Size and [PLC.FileContents] see the old
// program, and a transfer whose Close never arrives changes nothing.
//
// Writes take a scalar of exactly the variable's data type (else
// Bad_TypeMismatch) within its range (else Bad_OutOfRange), on the Value
// attribute only (else Bad_NotWritable), without an IndexRange. Method
// arguments are checked the same way (Bad_ArgumentsMissing,
// Bad_TooManyArguments, Bad_InvalidArgument with Bad_TypeMismatch per
// argument).
package opcuasim
