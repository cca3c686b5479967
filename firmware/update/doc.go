// Package update verifies and installs signed release bundles of brana
// itself. Nothing is downloaded: the operator brings the bundle as a file.
//
// # Key chain
//
// Three levels, as in tailscale's clientupdate/distsign: root keys
// (ed25519) are compiled into the binary ([CompiledRoots]), stay offline
// and sign only signing-key certificates; a signing key, certified by a
// root for a limited time, signs the manifest of each bundle. A
// certificate ([Certify]) is the text
//
//	brana update signing key v1
//	key <base64 ed25519 public key>
//	name <name>
//	not-after <RFC 3339 time, UTC>
//	root-signature <base64 ed25519 signature of the four lines above>
//
// # Bundle
//
// A bundle is a ustar archive of four regular files, in this order
// (`tar tvf` lists them):
//
//	manifest          the signed text below
//	signing-key.cert  the certificate of the key that signed the manifest
//	manifest.sig      base64 ed25519 signature of manifest by that key, one line
//	brana             the executable
//
// The manifest is, byte for byte:
//
//	brana update manifest v1
//	version 1.4.0
//	os linux
//	arch arm64
//	sha256 <64 lower-case hex digits of the executable>
//	size <bytes of the executable>
//	created <RFC 3339 time, UTC>
//	expires <RFC 3339 time, UTC>
//
// Versions are semantic versions (MAJOR.MINOR.PATCH with an optional
// pre-release; an optional leading "v"; no build metadata, which semver
// leaves out of the ordering and so could not be told apart by rollback
// protection).
//
// [Verify] checks, in this order, and stops at the first failure, each with
// its own error: the archive's shape ([ErrMalformed]), the certificate's
// root signature ([ErrUntrustedKey]), the certificate's expiry
// ([ErrKeyExpired]), the manifest signature ([ErrSignature]), the bundle's
// expiry ([ErrExpired]), the platform ([ErrPlatform]), the version against
// the running one and the recorded floor ([ErrRollback]), and the
// executable's size and hash ([ErrHash]).
//
// [Apply] verifies, writes the new executable beside the current one,
// switches with rename(2), runs a health check and switches back if it
// fails. The highest version that passed its health check is recorded in a
// state file, so an older bundle is refused even if the executable was put
// back by hand.
package update
