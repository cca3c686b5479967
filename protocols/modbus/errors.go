package modbus

import (
	"errors"
	"fmt"
)

// Errors are returned as these sentinels, unwrapped, so that the failure path
// of a hot loop does not allocate either; compare with errors.Is.
var (
	// Framing: the TCP stream can no longer be trusted (IsFraming).
	ErrShortFrame = errors.New("modbus: frame shorter than its MBAP header and length")
	ErrLongFrame  = errors.New("modbus: frame longer than its MBAP length")
	ErrProtocolID = errors.New("modbus: MBAP protocol id is not 0")
	ErrLength     = errors.New("modbus: MBAP length not in 2..254")

	// Requests: answered with an exception (ExceptionFor).
	ErrExceptionBit    = errors.New("modbus: request function code has the exception bit set")
	ErrIllegalFunction = errors.New("modbus: illegal function code 0")
	ErrPDULength       = errors.New("modbus: PDU length does not match the function code")
	ErrQuantity        = errors.New("modbus: quantity out of range for the function code")
	ErrAddressOverflow = errors.New("modbus: start address + quantity - 1 passes 0xFFFF")
	ErrByteCount       = errors.New("modbus: byte count does not match the quantity or PDU length")
	ErrCoilValue       = errors.New("modbus: single coil value is not 0x0000 or 0xFF00")
	ErrDataValue       = errors.New("modbus: illegal data value")
	ErrFileReference   = errors.New("modbus: file record reference type or record number out of range")

	// Responses: the target's answer does not fit the request that caused it.
	ErrResponseFunc      = errors.New("modbus: response function code does not match the request")
	ErrResponseLength    = errors.New("modbus: response PDU length is wrong for the function code")
	ErrResponseByteCount = errors.New("modbus: response byte count does not match the request")
	ErrResponseEcho      = errors.New("modbus: response echo does not match the request")
	ErrExceptionCode     = errors.New("modbus: exception response with an unknown code or length")
)

// IsFraming reports whether err means the byte stream can no longer be
// trusted: the frame boundaries themselves are in doubt, so no answer is
// possible and the caller closes the connection. Errors about a well-delimited
// PDU (wrong length for its function code, bad quantity) are not framing
// errors: the next frame still starts where the MBAP length says.
func IsFraming(err error) bool {
	return errors.Is(err, ErrProtocolID) || errors.Is(err, ErrLength) ||
		errors.Is(err, ErrShortFrame) || errors.Is(err, ErrLongFrame)
}

// ExceptionFor returns the exception code a server answers for err, following
// the request-processing order of the application protocol spec (function
// code: 01, address: 02, quantity/byte count/value/length: 03). Response
// errors map to 0x0B (the gateway got no valid answer from its target). Any
// other error maps to 0x04; framing errors get no answer at all (IsFraming).
// ExceptionFor(nil) is 0.
func ExceptionFor(err error) byte {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrIllegalFunction), errors.Is(err, ErrExceptionBit):
		return ExIllegalFunction
	case errors.Is(err, ErrAddressOverflow), errors.Is(err, ErrFileReference):
		return ExIllegalDataAddress
	case errors.Is(err, ErrPDULength), errors.Is(err, ErrQuantity), errors.Is(err, ErrByteCount),
		errors.Is(err, ErrCoilValue), errors.Is(err, ErrDataValue):
		return ExIllegalDataValue
	case errors.Is(err, ErrResponseFunc), errors.Is(err, ErrResponseLength),
		errors.Is(err, ErrResponseByteCount), errors.Is(err, ErrResponseEcho),
		errors.Is(err, ErrExceptionCode):
		return ExGatewayTargetFailed
	}
	return ExServerFailure
}

// Exception codes (application protocol spec, section 7).
const (
	ExIllegalFunction     byte = 0x01
	ExIllegalDataAddress  byte = 0x02
	ExIllegalDataValue    byte = 0x03
	ExServerFailure       byte = 0x04
	ExAcknowledge         byte = 0x05
	ExServerBusy          byte = 0x06
	ExMemoryParity        byte = 0x08
	ExGatewayPath         byte = 0x0A
	ExGatewayTargetFailed byte = 0x0B
)

var exceptionNames = [...]string{
	ExIllegalFunction:     "illegal function",
	ExIllegalDataAddress:  "illegal data address",
	ExIllegalDataValue:    "illegal data value",
	ExServerFailure:       "server device failure",
	ExAcknowledge:         "acknowledge",
	ExServerBusy:          "server device busy",
	ExMemoryParity:        "memory parity error",
	ExGatewayPath:         "gateway path unavailable",
	ExGatewayTargetFailed: "gateway target device failed to respond",
}

// knownException reports whether code is one the spec defines; 0x07 and 0x09
// are unassigned, so they are not.
func knownException(code byte) bool {
	return int(code) < len(exceptionNames) && exceptionNames[code] != ""
}

// ExceptionName returns the spec's name for an exception code, e.g.
// "illegal data address", or "exception 0x07" for an unknown code.
func ExceptionName(code byte) string {
	if knownException(code) {
		return exceptionNames[code]
	}
	return fmt.Sprintf("exception 0x%02X", code)
}

// ExceptionOf reports whether pdu is a well-formed exception response: a
// function code 0x81..0xFF and one known exception code, exactly 2 bytes.
// code is 0 when ok is false.
func ExceptionOf(pdu []byte) (code byte, ok bool) {
	if len(pdu) != 2 || pdu[0] <= 0x80 || !knownException(pdu[1]) {
		return 0, false
	}
	return pdu[1], true
}
