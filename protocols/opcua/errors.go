package opcua

import "errors"

// Classification and mapping errors are these sentinels, unwrapped; compare
// with errors.Is. Decoding and encoding errors are *CodecError, which wraps
// the OPC UA status code to answer with.
var (
	// ErrNilRequest: Classify was given no request (or a nil pointer).
	ErrNilRequest = errors.New("opcua: nil request")
	// ErrNilNodeID: an alias or method mapping names a nil NodeId.
	ErrNilNodeID = errors.New("opcua: nil NodeId")
	// ErrMapFull: a session registered MaxRegistered aliases or methods.
	ErrMapFull = errors.New("opcua: too many registered NodeIds in one session")
	// ErrDenials: Keep was given an array that does not match the denials.
	ErrDenials = errors.New("opcua: denials do not match the request's array")
	// ErrResultCount: the server answered with a result count that does not
	// match the forwarded elements.
	ErrResultCount = errors.New("opcua: result count does not match the forwarded elements")
)
