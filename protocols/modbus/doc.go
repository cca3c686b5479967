// Package modbus is brana's pure Modbus TCP codec: bytes in, views and errors
// out. It does no I/O, no logging and no policy; the relay that reads sockets,
// asks policy and forwards frames lives elsewhere and uses this package to
// decide what a frame is before any byte of it reaches a PLC.
//
// Specifications:
//   - MODBUS Application Protocol Specification V1.1b3 (function codes, PDU
//     layouts, quantity limits, exception codes).
//   - MODBUS Messaging on TCP/IP Implementation Guide V1.0b (MBAP header).
//
// The rules from brana's PROTOCOLS.md that this package enforces, in brief:
//   - The MBAP header is checked before the body: protocol id must be 0 and
//     length 2..254, otherwise the stream cannot be trusted and the caller
//     closes it ([IsFraming]). Frames are never "fixed" or resynchronised.
//   - One read is not one frame: [SplitFrame] handles partial and pipelined
//     frames.
//   - Each request PDU length must match its function code exactly; quantities
//     use both bytes and are limited per function code; start+quantity-1 is
//     computed wide so a range cannot wrap around an allow-list.
//   - FC 5 carries only 0x0000 or 0xFF00; FC 22 is marked Masked because its
//     result depends on the current value; FC 23 has a read and a write part.
//   - Requests with the exception bit are invalid; exception responses carry
//     only the known codes and are exactly 2 bytes.
//   - Responses are checked against the request that caused them (function
//     code, byte count, echo). Transaction ids are the relay's job.
//   - Every request is sorted into an [opclass.Class] by a documented table
//     ([Classify]).
//
// Decoding does not allocate: a [Request] holds views into the frame it came
// from and is valid only as long as that frame's bytes are.
package modbus
