package secconv

import (
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/binary"

	"github.com/gopcua/opcua/uapolicy"
)

// The secured chunks (OPC 10000-6, 6.7.2 and 6.7.6). An OpenSecureChannel
// chunk of a Sign or SignAndEncrypt channel is always signed with the
// sender's private key and encrypted to the receiver's public key; after it,
// MSG and CLO chunks are signed with HMAC keys derived from both nonces,
// and in SignAndEncrypt also encrypted with AES-CBC. Signatures cover the
// chunk from its first byte to the end of the padding, with the final
// message size in the header. The algorithms are gopcua's uapolicy; the
// layout (headers, padding, sizes, where the signature sits) is written
// here, to Part 6, for the server side.

// Security modes, as OPC UA numbers them.
const (
	ModeNone           = 1
	ModeSign           = 2
	ModeSignAndEncrypt = 3
)

// Status codes of the secured layer.
const (
	BadSecurityChecksFailed     uint32 = 0x80130000
	BadCertificateInvalid       uint32 = 0x80120000
	BadNonceInvalid             uint32 = 0x80240000
	BadCertificateUseNotAllowed uint32 = 0x80180000
)

// maxOpenBlocks bounds the encrypted part of an OPN chunk, in RSA blocks.
const maxOpenBlocks = 16

// Server is brana's side of a secured endpoint: its certificate and key.
type Server struct {
	Cert       []byte // DER
	Key        *rsa.PrivateKey
	thumbprint [20]byte
}

// NewServer prepares a server identity.
func NewServer(cert []byte, key *rsa.PrivateKey) *Server {
	return &Server{Cert: cert, Key: key, thumbprint: sha1.Sum(cert)}
}

// Thumbprint is the SHA-1 of the server certificate, as clients name it.
func (s *Server) Thumbprint() []byte { return s.thumbprint[:] }

// Asymmetric is the open-time security of a channel: the policy, and the
// client's certificate as the OPN chunk carried it.
type Asymmetric struct {
	Policy     string
	ClientCert []byte // leaf, DER
	clientKey  *rsa.PublicKey
	algo       *uapolicy.EncryptionAlgorithm
}

// asymHeaderLen is the size of header, channel id and asymmetric security header.
func asymHeaderLen(policy string, cert, thumb []byte) int {
	return HeaderSize + 4 + 4 + len(policy) + 4 + len(cert) + 4 + len(thumb)
}

// OpenSecured verifies and decrypts an OPN chunk (header included) whose
// policy is not None, with srv's key. It returns the chunk, with Body the
// decrypted request, and the channel's asymmetric security. The caller
// checks the client certificate against its trust list before it answers.
func OpenSecured(b []byte, srv *Server) (Chunk, *Asymmetric, error) {
	h, err := ParseHeader(b, ^uint32(0))
	if err != nil {
		return Chunk{}, nil, err
	}
	if h.Type != TypeOpen || h.Chunk != ChunkFinal {
		return Chunk{}, nil, errorf(BadTCPMessageTypeInvalid, "expected one final OPN chunk, got %s %q", h.Type, h.Chunk)
	}
	if int(h.Size) != len(b) {
		return Chunk{}, nil, errorf(BadDecodingError, "OPN chunk says %d bytes, has %d", h.Size, len(b))
	}
	c := Chunk{Header: h}
	r := reader{b: b, off: HeaderSize}
	c.ChannelID = r.u32()
	c.PolicyURI, _ = r.str(1024)
	c.SenderCertificate = r.bytes(maxCertificate)
	c.ReceiverThumbprint = r.bytes(64)
	if r.err != nil {
		return c, nil, errorf(BadDecodingError, "OPN security header: %v", r.err)
	}
	if c.PolicyURI == PolicyNone {
		return c, nil, errorf(BadSecurityPolicyRejected, "policy None in a secured open")
	}
	if len(c.SenderCertificate) == 0 {
		return c, nil, errorf(BadCertificateInvalid, "OPN without a sender certificate")
	}
	if string(c.ReceiverThumbprint) != string(srv.thumbprint[:]) {
		return c, nil, errorf(BadCertificateInvalid, "OPN is encrypted for another certificate (thumbprint %x, brana's is %x)", c.ReceiverThumbprint, srv.thumbprint)
	}
	certs, err := x509.ParseCertificates(c.SenderCertificate)
	if err != nil || len(certs) == 0 {
		return c, nil, errorf(BadCertificateInvalid, "sender certificate: %v", err)
	}
	leaf := certs[0]
	pub, ok := leaf.PublicKey.(*rsa.PublicKey)
	if !ok {
		return c, nil, errorf(BadCertificateInvalid, "sender certificate has a %T key, want RSA", leaf.PublicKey)
	}
	algo, err := uapolicy.Asymmetric(c.PolicyURI, srv.Key, pub)
	if err != nil {
		return c, nil, errorf(BadSecurityPolicyRejected, "policy %s: %v", c.PolicyURI, err)
	}
	// An OpenSecureChannelRequest fits a few RSA blocks; more would only
	// make an unauthenticated peer spend brana's CPU on decryption.
	if n := len(b) - r.off; n > maxOpenBlocks*srv.Key.Size() {
		return c, nil, errorf(BadTCPMessageTooLarge, "encrypted OPN body of %d bytes (at most %d RSA blocks)", n, maxOpenBlocks)
	}
	a := &Asymmetric{Policy: c.PolicyURI, ClientCert: leaf.Raw, clientKey: pub, algo: algo}
	plain, err := a.unseal(b, r.off, srv.Key.Size(), true)
	if err != nil {
		return c, a, err
	}
	rs := reader{b: plain}
	c.SequenceNumber = rs.u32()
	c.RequestID = rs.u32()
	if rs.err != nil {
		return c, a, errorf(BadDecodingError, "OPN sequence header: %v", rs.err)
	}
	c.Body = plain[8:]
	return c, a, nil
}

// unseal decrypts b[hlen:] (when encrypted), verifies the signature over
// the whole chunk and strips padding (when encrypted) and signature. It
// returns what follows the security header: sequence header and body.
func (a *Asymmetric) unseal(b []byte, hlen int, keySize int, encrypted bool) ([]byte, error) {
	extra := keySize > 256
	return unseal(a.algo, b, hlen, extra, encrypted, keySize, a.algo.RemoteSignatureLength())
}

// unseal: block is the size of the receiver's cipher blocks (brana's key
// size for an OPN, the AES block otherwise), sigLen the sender's signature.
func unseal(algo *uapolicy.EncryptionAlgorithm, b []byte, hlen int, extra, encrypted bool, block, sigLen int) ([]byte, error) {
	var plain []byte
	if encrypted {
		ct := b[hlen:]
		if bs := block; bs == 0 || len(ct) == 0 || len(ct)%bs != 0 {
			return nil, errorf(BadSecurityChecksFailed, "encrypted part of %d bytes is not whole blocks of %d", len(ct), bs)
		}
		p, err := algo.Decrypt(ct)
		if err != nil {
			return nil, errorf(BadSecurityChecksFailed, "decryption failed")
		}
		plain = p
	} else {
		plain = b[hlen:]
	}
	if len(plain) < 8+sigLen {
		return nil, errorf(BadSecurityChecksFailed, "chunk too short for its signature")
	}
	signed := make([]byte, 0, hlen+len(plain))
	signed = append(append(signed, b[:hlen]...), plain[:len(plain)-sigLen]...)
	if err := algo.VerifySignature(signed, plain[len(plain)-sigLen:]); err != nil {
		return nil, errorf(BadSecurityChecksFailed, "signature does not verify")
	}
	body := plain[:len(plain)-sigLen]
	if encrypted {
		n := len(body)
		if n < 1 {
			return nil, errorf(BadSecurityChecksFailed, "no padding")
		}
		size := int(body[n-1])
		pad := size + 1
		if extra {
			if n < 2 {
				return nil, errorf(BadSecurityChecksFailed, "no padding")
			}
			size = int(body[n-2]) | int(body[n-1])<<8
			pad = size + 2
		}
		if pad > n-8 {
			return nil, errorf(BadSecurityChecksFailed, "padding of %d bytes is longer than the chunk", pad)
		}
		low := byte(size)
		for _, x := range body[n-pad : n-pad+size+1] {
			if x != low {
				return nil, errorf(BadSecurityChecksFailed, "padding bytes do not match their size")
			}
		}
		body = body[:n-pad]
	}
	return body, nil
}

// seal appends the padding (when encrypting), sets the chunk size, signs,
// and encrypts. msg is the whole plaintext chunk; hlen its unencrypted
// header; extra whether the receiver's key needs two padding size bytes.
func seal(algo *uapolicy.EncryptionAlgorithm, msg []byte, hlen int, extra, encrypt bool) ([]byte, error) {
	sigLen := algo.SignatureLength()
	if encrypt {
		pb := algo.PlaintextBlockSize()
		sizeBytes := 1
		if extra {
			sizeBytes = 2
		}
		padding := pb - (len(msg)-hlen+sigLen+sizeBytes)%pb
		if padding == pb {
			padding = 0
		}
		for i := 0; i <= padding; i++ {
			msg = append(msg, byte(padding))
		}
		if extra {
			msg = append(msg, byte(padding>>8))
		}
		blocks := (len(msg) - hlen + sigLen) / pb
		binary.LittleEndian.PutUint32(msg[4:], uint32(hlen+blocks*algo.BlockSize()))
	} else {
		binary.LittleEndian.PutUint32(msg[4:], uint32(len(msg)+sigLen))
	}
	sig, err := algo.Signature(msg)
	if err != nil {
		return nil, errorf(BadSecurityChecksFailed, "signing: %v", err)
	}
	msg = append(msg, sig...)
	if !encrypt {
		return msg, nil
	}
	ct, err := algo.Encrypt(msg[hlen:])
	if err != nil {
		return nil, errorf(BadSecurityChecksFailed, "encrypting: %v", err)
	}
	out := make([]byte, 0, hlen+len(ct))
	return append(append(out, msg[:hlen]...), ct...), nil
}

// AppendOpenResponseSecured appends the OPN chunk answering a secured open:
// signed with srv's key and encrypted to the client's.
func (a *Asymmetric) AppendOpenResponse(dst []byte, srv *Server, channelID uint32, seq *uint32, requestID uint32, body []byte) ([]byte, error) {
	thumb := sha1.Sum(a.ClientCert)
	hlen := asymHeaderLen(a.Policy, srv.Cert, thumb[:])
	msg := make([]byte, 0, hlen+8+len(body)+512)
	msg = append(msg, TypeOpen...)
	msg = append(msg, ChunkFinal, 0, 0, 0, 0)
	msg = binary.LittleEndian.AppendUint32(msg, channelID)
	msg = binary.LittleEndian.AppendUint32(msg, uint32(len(a.Policy)))
	msg = append(msg, a.Policy...)
	msg = binary.LittleEndian.AppendUint32(msg, uint32(len(srv.Cert)))
	msg = append(msg, srv.Cert...)
	msg = binary.LittleEndian.AppendUint32(msg, uint32(len(thumb)))
	msg = append(msg, thumb[:]...)
	next := NextSequence(*seq)
	msg = binary.LittleEndian.AppendUint32(msg, next)
	msg = binary.LittleEndian.AppendUint32(msg, requestID)
	msg = append(msg, body...)
	out, err := seal(a.algo, msg, hlen, a.clientKey.Size() > 256, true)
	if err != nil {
		return dst, err
	}
	*seq = next
	return append(dst, out...), nil
}

// NonceLength is the length of the nonces of the channel's policy.
func (a *Asymmetric) NonceLength() int { return a.algo.NonceLength() }

// Symmetric is the security of a channel's MSG and CLO chunks under one
// token: keys derived from both nonces.
type Symmetric struct {
	Mode int // ModeSign or ModeSignAndEncrypt
	algo *uapolicy.EncryptionAlgorithm
}

// NewSymmetric derives the keys of one token (OPC 10000-6, 6.7.5): the
// server's from (client nonce, server nonce), the client's the other way.
func NewSymmetric(policy string, mode int, serverNonce, clientNonce []byte) (*Symmetric, error) {
	if mode != ModeSign && mode != ModeSignAndEncrypt {
		return nil, errorf(BadSecurityPolicyRejected, "security mode %d", mode)
	}
	algo, err := uapolicy.Symmetric(policy, serverNonce, clientNonce)
	if err != nil {
		return nil, errorf(BadSecurityPolicyRejected, "policy %s: %v", policy, err)
	}
	return &Symmetric{Mode: mode, algo: algo}, nil
}

// symHeaderLen is header, channel id and token id.
const symHeaderLen = HeaderSize + 8

// UnsealChunk verifies (and decrypts) a MSG or CLO chunk (header included)
// whose token id the caller has matched to s. It returns the chunk with
// Body the plaintext body.
func (s *Symmetric) UnsealChunk(b []byte) (Chunk, error) {
	h, err := ParseHeader(b, ^uint32(0))
	if err != nil {
		return Chunk{}, err
	}
	if h.Type != TypeMessage && h.Type != TypeClose {
		return Chunk{}, errorf(BadTCPMessageTypeInvalid, "%s is not a symmetric chunk", h.Type)
	}
	if int(h.Size) != len(b) || len(b) < symHeaderLen {
		return Chunk{}, errorf(BadDecodingError, "%s chunk says %d bytes, has %d", h.Type, h.Size, len(b))
	}
	c := Chunk{Header: h, ChannelID: binary.LittleEndian.Uint32(b[8:]), TokenID: binary.LittleEndian.Uint32(b[12:])}
	plain, err := unseal(s.algo, b, symHeaderLen, false, s.Mode == ModeSignAndEncrypt, s.algo.BlockSize(), s.algo.RemoteSignatureLength())
	if err != nil {
		return c, err
	}
	c.SequenceNumber = binary.LittleEndian.Uint32(plain)
	c.RequestID = binary.LittleEndian.Uint32(plain[4:])
	c.Body = plain[8:]
	return c, nil
}

// Overhead is the most a chunk adds to its body: header, token,
// sequence header, signature and padding.
func (s *Symmetric) Overhead() int {
	return symHeaderLen + 8 + s.algo.SignatureLength() + s.algo.BlockSize() + 1
}

// AppendMessage is AppendMessage for a secured channel: body is split into
// chunks of at most maxChunk bytes once secured.
func (s *Symmetric) AppendMessage(dst []byte, typ string, channelID, tokenID uint32, seq *uint32, requestID uint32, body []byte, maxChunk, maxChunks uint32) ([]byte, error) {
	// Largest body per chunk: what fits once padded to whole blocks and signed.
	room := int(maxChunk) - symHeaderLen - 8 - s.algo.SignatureLength()
	if s.Mode == ModeSignAndEncrypt {
		bs := s.algo.BlockSize()
		room = (int(maxChunk)-symHeaderLen)/bs*bs - 8 - s.algo.SignatureLength() - 1
	}
	if room <= 0 {
		return dst, errorf(BadTCPInternalError, "send buffer of %d bytes is too small", maxChunk)
	}
	n := max((len(body)+room-1)/room, 1)
	if typ != TypeMessage && n > 1 {
		return dst, errorf(BadTCPMessageTooLarge, "%s of %d bytes does not fit one chunk", typ, len(body))
	}
	if maxChunks != 0 && uint32(n) > maxChunks {
		return dst, errorf(BadTCPMessageTooLarge, "response of %d bytes needs %d chunks, the client takes %d", len(body), n, maxChunks)
	}
	next := *seq
	out := dst
	for i := 0; i < n; i++ {
		part := body[min(i*room, len(body)):min((i+1)*room, len(body))]
		ct := byte(ChunkIntermediate)
		if i == n-1 {
			ct = ChunkFinal
		}
		msg := make([]byte, 0, symHeaderLen+8+len(part)+64)
		msg = append(msg, typ...)
		msg = append(msg, ct, 0, 0, 0, 0)
		msg = binary.LittleEndian.AppendUint32(msg, channelID)
		msg = binary.LittleEndian.AppendUint32(msg, tokenID)
		next = NextSequence(next)
		msg = binary.LittleEndian.AppendUint32(msg, next)
		msg = binary.LittleEndian.AppendUint32(msg, requestID)
		msg = append(msg, part...)
		sealed, err := seal(s.algo, msg, symHeaderLen, false, s.Mode == ModeSignAndEncrypt)
		if err != nil {
			return dst, err
		}
		out = append(out, sealed...)
	}
	*seq = next
	return out, nil
}

// OpenPolicy returns the security policy URI an OPN chunk names, or "" if
// the chunk is too short to say.
func OpenPolicy(b []byte) string {
	r := reader{b: b, off: HeaderSize + 4}
	uri, _ := r.str(1024)
	if r.err != nil {
		return ""
	}
	return uri
}
