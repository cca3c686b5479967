// Package sshlink is brana's SSH vendor endpoint. A vendor technician uses a
// stock OpenSSH client; every byte still goes through a protocol terminator,
// the policy and the audit log, because this package never relays raw TCP.
//
// What it accepts (see /work/shared/PROTOCOLS.md, "SSH vendor link", and
// RFC 4252, RFC 4254 and OpenSSH's PROTOCOL.certkeys for the wire formats):
//
//   - authentication by public key or by an OpenSSH user certificate signed by
//     a CA the operator trusts (principal = SSH user name, validity window
//     checked, and a certificate that expires mid-session ends the session);
//     never passwords or keyboard-interactive;
//   - "direct-tcpip" channels (ssh -L) whose destination host is the name of a
//     configured target and whose port is that target's protocol port; the
//     channel is handed to the target's in-process terminator via
//     [Backend.Serve], so no address a vendor chose is ever dialled;
//   - "session" channels that carry one "exec" command from a fixed
//     vocabulary: request, status, help.
//
// Everything else (tcpip-forward, agent and X11 forwarding, shells, PTYs,
// subsystems, other channel types, IP destinations) is refused with a short
// message for the vendor and a [Backend.Refused] audit record that carries the
// source address and the whole cause.
//
// Protocol logic, policy and approvals stay behind the [Backend] interface.
package sshlink
