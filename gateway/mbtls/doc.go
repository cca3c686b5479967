// Package mbtls is brana's Modbus/TCP Security listener: Modbus/TCP inside
// TLS with mutual authentication, as the Modbus Organization specifies it in
// the "MODBUS/TCP Security Protocol Specification"
// (MB-TCP-Security-v21_2018-07-24, https://modbus.org/docs/MB-TCP-Security-v21_2018-07-24.pdf):
//
//   - TLS 1.2 or later (min_version may raise it to 1.3); nothing older is
//     negotiated;
//   - mutual authentication: the client must present an X.509v3 certificate
//     that chains to one of the listener's client CAs and is valid now
//     (Go's verification: a wrong CA, an expired certificate or none at all
//     fails the handshake); every connection is a full handshake, because
//     session tickets are off;
//   - the registered port is 802 (IANA "mbap-s");
//   - the client's role is carried in the X.509v3 extension with OID
//     1.3.6.1.4.1.50316.802.1 (the Modbus Organization's private enterprise
//     number 50316) as an ASN.1 UTF8String; [Role] reads it. An absent
//     extension is no role; a malformed one refuses the connection. The
//     extension must not be marked critical: Go's verifier refuses
//     certificates with critical extensions it does not know.
//
// After the handshake the certificate is bound to a party (the fingerprint
// or the subject CN and the role, see policy.Policy.PartyByTLS) through
// [Backend.Identify], and the connection is handed to [Backend.Serve], which
// runs the Modbus relay over it: the decrypted stream is never forwarded as
// raw bytes. The subject country (C=) goes with it as the certificate's
// jurisdiction signal. Refusals, failed handshakes included, go to
// [Backend.Refused] with the source address and the whole cause. A session
// ends when the client certificate or its CA expires.
package mbtls
