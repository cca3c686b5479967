package opcua

import "github.com/gopcua/opcua/ua"

// Denials holds policy's verdict on each element of one request, in the
// elements' order: true means refused. The terminator builds it from the
// elements Classify returned and then does one of three things:
//
//   - None: forward the request unchanged.
//   - All, or a refused request-level element (Index -1): forward nothing;
//     answer every entry with Bad_UserAccessDenied (Statuses, or Merge with
//     an empty forwarded slice), or fault the service with it.
//   - Some: forward only Keep(d, entries), then answer with Merge(d, results,
//     ...), which puts the server's results back in their slots and
//     Bad_UserAccessDenied in the refused ones, keeping the request's order.
//
// DiagnosticInfos arrays are usually empty; merge one only when the server
// returned one entry per forwarded element.
type Denials []bool

// Count returns the number of refused elements.
func (d Denials) Count() int {
	n := 0
	for _, x := range d {
		if x {
			n++
		}
	}
	return n
}

// None reports whether no element was refused.
func (d Denials) None() bool { return d.Count() == 0 }

// All reports whether every element was refused (and there is one at least).
func (d Denials) All() bool { return len(d) > 0 && d.Count() == len(d) }

// Statuses returns one status per element: Bad_UserAccessDenied for the
// refused ones and Good for the others. It is the Results of a Write (or of
// any service answering with a StatusCode per entry) in which nothing was
// forwarded, and the template that Merge fills otherwise.
func (d Denials) Statuses() []ua.StatusCode {
	s := make([]ua.StatusCode, len(d))
	for i, x := range d {
		if x {
			s[i] = ua.StatusBadUserAccessDenied
		}
	}
	return s
}

// Keep returns the entries of a request array that policy allowed, in order:
// the array of the request the terminator forwards. It fails with ErrDenials
// if entries and d differ in length.
func Keep[T any](d Denials, entries []T) ([]T, error) {
	if len(entries) != len(d) {
		return nil, ErrDenials
	}
	kept := make([]T, 0, len(d)-d.Count())
	for i, x := range d {
		if !x {
			kept = append(kept, entries[i])
		}
	}
	return kept, nil
}

// Merge rebuilds a full result array from the results of the forwarded
// entries (one per allowed element, in order) and denied(i), the result for
// refused element i (for example a fresh Bad_UserAccessDenied result). It
// fails with ErrResultCount if forwarded does not hold one result per
// allowed element: a server that answers with the wrong count must not shift
// results into other entries' slots.
func Merge[T any](d Denials, forwarded []T, denied func(i int) T) ([]T, error) {
	if len(forwarded) != len(d)-d.Count() {
		return nil, ErrResultCount
	}
	out := make([]T, len(d))
	j := 0
	for i, x := range d {
		if x {
			out[i] = denied(i)
			continue
		}
		out[i] = forwarded[j]
		j++
	}
	return out, nil
}

// DeniedDataValue returns the result of a refused Read entry: a DataValue
// carrying only the status Bad_UserAccessDenied.
func DeniedDataValue() *ua.DataValue {
	return &ua.DataValue{EncodingMask: ua.DataValueStatusCode, Status: ua.StatusBadUserAccessDenied}
}

// DeniedStatus returns Bad_UserAccessDenied for any element; it is the
// denied function of Merge for StatusCode results (Write, DeleteNodes, ...).
func DeniedStatus(int) ua.StatusCode { return ua.StatusBadUserAccessDenied }
