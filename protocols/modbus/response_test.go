package modbus

import (
	"errors"
	"testing"
)

// deviceIDResponse builds an FC 43/14 response carrying objects 0, 1, 2 as in
// the spec's example.
func deviceIDResponse(count byte, objs ...string) []byte {
	b := []byte{0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, count}
	for i, o := range objs {
		b = append(b, byte(i), byte(len(o)))
		b = append(b, o...)
	}
	return b
}

// Response PDUs from the examples of the application protocol spec, section 6.
var (
	respReadCoils    = h("01 03 CD 6B 05")
	respReadDiscrete = h("02 03 AC DB 35")
	respReadHolding  = h("03 06 02 2B 00 00 00 64")
	respReadInput    = h("04 02 00 0A")
	respReadWrite    = h("17 0C 00 FE 0A CD 00 01 00 03 00 0D 00 FF")
	respReadFile     = h("14 0C 05 06 0D FE 00 20 05 06 33 CD 00 40")
	respReadFIFO     = h("18 00 06 00 02 01 B8 12 84")
	respDeviceID     = deviceIDResponse(3, "Company identification", "Product code XX", "V2.11")
)

func TestCheckResponse(t *testing.T) {
	tests := []struct {
		name string
		req  []byte
		resp []byte
		err  error
	}{
		{"ok/read-coils", pduReadCoils, respReadCoils, nil},
		{"ok/read-discrete", pduReadDiscrete, respReadDiscrete, nil},
		{"ok/read-holding", pduReadHolding, respReadHolding, nil},
		{"ok/read-input", pduReadInput, respReadInput, nil},
		{"ok/write-single-coil", pduWriteCoil, pduWriteCoil, nil},
		{"ok/write-single-register", pduWriteRegister, pduWriteRegister, nil},
		{"ok/read-exception-status", pduExceptionStatus, h("07 6D"), nil},
		{"ok/diagnostics-echo", pduDiagEcho, pduDiagEcho, nil},
		{"ok/diagnostics-counter", h("08 00 0B 00 00"), h("08 00 0B 01 02"), nil},
		{"ok/comm-event-counter", pduCommEventCounter, h("0B FF FF 01 08"), nil},
		{"ok/comm-event-log", pduCommEventLog, h("0C 08 00 00 01 08 01 21 20 00"), nil},
		{"ok/write-multiple-coils", pduWriteCoils, h("0F 00 13 00 0A"), nil},
		{"ok/write-multiple-registers", pduWriteRegisters, h("10 00 01 00 02"), nil},
		{"ok/report-server-id", pduReportServerID, h("11 03 01 FF 00"), nil},
		{"ok/read-file-record", pduReadFile, respReadFile, nil},
		{"ok/write-file-record", pduWriteFile, pduWriteFile, nil},
		{"ok/mask-write", pduMaskWrite, pduMaskWrite, nil},
		{"ok/read-write-multiple", pduReadWrite, respReadWrite, nil},
		{"ok/read-fifo", pduReadFIFO, respReadFIFO, nil},
		{"ok/read-fifo-empty", pduReadFIFO, h("18 00 02 00 00"), nil},
		{"ok/read-device-id", pduReadDeviceID, respDeviceID, nil},
		{"ok/mei-canopen", h("2B 0D 00 01"), h("2B 0D 00 01 02"), nil},
		{"ok/umas", pduUMASInfo, h("5A 00 FE 01 02 03"), nil},
		{"ok/unknown-fc", h("41 01"), h("41 01 02 03"), nil},
		{"ok/exception-illegal-data-address", pduReadHolding, h("83 02"), nil},
		{"ok/exception-gateway-target", pduWriteRegisters, h("90 0B"), nil},
		{"ok/exception-memory-parity", pduReadFile, h("94 08"), nil},

		// Function code.
		{"fail/function-mismatch", pduReadHolding, respReadInput, ErrResponseFunc},
		{"fail/exception-for-other-function", pduReadHolding, h("84 02"), ErrResponseFunc},
		{"fail/exception-unknown-code-07", pduReadHolding, h("83 07"), ErrExceptionCode},
		{"fail/exception-unknown-code-00", pduReadHolding, h("83 00"), ErrExceptionCode},
		{"fail/exception-unknown-code-0c", pduReadHolding, h("83 0C"), ErrExceptionCode},
		{"fail/exception-length-long", pduReadHolding, h("83 02 00"), ErrExceptionCode},
		{"fail/exception-length-short", pduReadHolding, h("83"), ErrExceptionCode},
		{"fail/empty", pduReadHolding, nil, ErrResponseLength},
		{"fail/too-long", h("41 01"), repeat(0x41, MaxPDULen+1), ErrResponseLength},

		// Byte counts against the request.
		{"fail/read-coils-byte-count", pduReadCoils, h("01 02 CD 6B"), ErrResponseByteCount},
		{"fail/read-discrete-byte-count", pduReadDiscrete, h("02 04 AC DB 35 00"), ErrResponseByteCount},
		{"fail/read-holding-byte-count", pduReadHolding, h("03 04 02 2B 00 00"), ErrResponseByteCount},
		{"fail/read-holding-length", pduReadHolding, h("03 06 02 2B 00 00 00"), ErrResponseLength},
		{"fail/read-holding-length-long", pduReadHolding, h("03 06 02 2B 00 00 00 64 00"), ErrResponseLength},
		{"fail/read-holding-no-byte-count", pduReadHolding, h("03"), ErrResponseLength},
		{"fail/read-input-byte-count", pduReadInput, h("04 04 00 0A 00 0B"), ErrResponseByteCount},
		{"fail/read-write-byte-count-of-write-part", pduReadWrite, h("17 06 00 FE 0A CD 00 01"), ErrResponseByteCount},

		// Echoes.
		{"fail/write-single-coil-echo-value", pduWriteCoil, h("05 00 AC 00 00"), ErrResponseEcho},
		{"fail/write-single-register-echo-address", pduWriteRegister, h("06 00 02 00 03"), ErrResponseEcho},
		{"fail/write-single-register-length", pduWriteRegister, h("06 00 01 00 03 00"), ErrResponseLength},
		{"fail/write-multiple-coils-echo-address", pduWriteCoils, h("0F 00 14 00 0A"), ErrResponseEcho},
		{"fail/write-multiple-coils-length", pduWriteCoils, h("0F 00 13 00 0A 00"), ErrResponseLength},
		{"fail/write-multiple-registers-echo-quantity", pduWriteRegisters, h("10 00 01 00 01"), ErrResponseEcho},
		{"fail/mask-write-echo", pduMaskWrite, h("16 00 04 00 F2 00 24"), ErrResponseEcho},
		{"fail/write-file-record-echo", pduWriteFile, h("15 0D 06 00 04 00 07 00 03 06 AF 04 BE 10 0E"), ErrResponseEcho},
		{"fail/diagnostics-sub-mismatch", h("08 00 0B 00 00"), h("08 00 0C 01 02"), ErrResponseEcho},
		{"fail/diagnostics-echo-data", pduDiagEcho, h("08 00 00 A5 38"), ErrResponseEcho},
		{"fail/diagnostics-short", pduDiagEcho, h("08 00"), ErrResponseLength},
		{"fail/mei-type-mismatch", pduReadDeviceID, h("2B 0D 01"), ErrResponseEcho},
		{"fail/read-device-id-code-mismatch", pduReadDeviceID, append(deviceIDResponse(0)[:2:2], 0x02, 0x01, 0x00, 0x00, 0x00), ErrResponseEcho},

		// Self-described lengths.
		{"fail/read-exception-status-length", pduExceptionStatus, h("07 6D 00"), ErrResponseLength},
		{"fail/comm-event-counter-length", pduCommEventCounter, h("0B FF FF 01"), ErrResponseLength},
		{"fail/comm-event-log-byte-count", pduCommEventLog, h("0C 09 00 00 01 08 01 21 20 00"), ErrResponseLength},
		{"fail/comm-event-log-too-short", pduCommEventLog, h("0C 02 00 00"), ErrResponseByteCount},
		{"fail/report-server-id-byte-count", pduReportServerID, h("11 04 01 FF 00"), ErrResponseLength},
		{"fail/read-file-record-length", pduReadFile, h("14 0D 05 06 0D FE 00 20 05 06 33 CD 00 40"), ErrResponseLength},
		{"fail/read-file-record-sub-response", pduReadFile, h("14 0C 05 06 0D FE 00 20 06 06 33 CD 00 40"), ErrResponseByteCount},
		{"fail/read-file-record-reference-type", pduReadFile, h("14 0C 05 07 0D FE 00 20 05 06 33 CD 00 40"), ErrResponseByteCount},
		{"fail/read-fifo-count", pduReadFIFO, h("18 00 06 00 03 01 B8 12 84"), ErrResponseByteCount},
		{"fail/read-fifo-byte-count", pduReadFIFO, h("18 00 07 00 02 01 B8 12 84"), ErrResponseLength},
		{"fail/read-fifo-over-31", pduReadFIFO, cat(h("18 00 42 00 20"), repeat(0, 64)), ErrResponseByteCount},
		{"fail/read-device-id-object-overrun", pduReadDeviceID, deviceIDResponse(4, "Company identification", "Product code XX", "V2.11"), ErrResponseLength},
		{"fail/read-device-id-trailing", pduReadDeviceID, deviceIDResponse(2, "Company identification", "Product code XX", "V2.11"), ErrResponseLength},
		{"fail/read-device-id-short", pduReadDeviceID, h("2B 0E 01 01 00 00"), ErrResponseLength},
		{"fail/umas-short", pduUMASInfo, h("5A 00"), ErrResponseLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req Request
			if err := ParseRequest(1, tt.req, &req); err != nil {
				t.Fatalf("ParseRequest(%x) = %v", tt.req, err)
			}
			err := CheckResponse(&req, tt.resp)
			if !errors.Is(err, tt.err) {
				t.Fatalf("CheckResponse(%x) = %v; want %v", tt.resp, err, tt.err)
			}
			if err != nil {
				if IsFraming(err) {
					t.Errorf("IsFraming(%v) = true", err)
				}
				if ExceptionFor(err) != ExGatewayTargetFailed {
					t.Errorf("ExceptionFor(%v) = %#x; want 0x0B", err, ExceptionFor(err))
				}
			}
		})
	}
}

func TestExceptionOf(t *testing.T) {
	tests := []struct {
		name string
		pdu  []byte
		code byte
		ok   bool
	}{
		{"ok/illegal-function", h("81 01"), ExIllegalFunction, true},
		{"ok/illegal-data-address", h("83 02"), ExIllegalDataAddress, true},
		{"ok/illegal-data-value", h("83 03"), ExIllegalDataValue, true},
		{"ok/server-failure", h("90 04"), ExServerFailure, true},
		{"ok/acknowledge", h("90 05"), ExAcknowledge, true},
		{"ok/server-busy", h("90 06"), ExServerBusy, true},
		{"ok/memory-parity", h("94 08"), ExMemoryParity, true},
		{"ok/gateway-path", h("83 0A"), ExGatewayPath, true},
		{"ok/gateway-target", h("83 0B"), ExGatewayTargetFailed, true},
		{"ok/fc-127", h("FF 01"), ExIllegalFunction, true},
		{"fail/code-00", h("83 00"), 0, false},
		{"fail/code-07", h("83 07"), 0, false},
		{"fail/code-09", h("83 09"), 0, false},
		{"fail/code-0c", h("83 0C"), 0, false},
		{"fail/code-ff", h("83 FF"), 0, false},
		{"fail/no-exception-bit", h("03 02"), 0, false},
		{"fail/fc-zero", h("80 01"), 0, false},
		{"fail/length-1", h("83"), 0, false},
		{"fail/length-3", h("83 02 00"), 0, false},
		{"fail/empty", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, ok := ExceptionOf(tt.pdu)
			if code != tt.code || ok != tt.ok {
				t.Fatalf("ExceptionOf(%x) = %#x, %v; want %#x, %v", tt.pdu, code, ok, tt.code, tt.ok)
			}
		})
	}
}
