// Package firmware owns program and firmware transfers to PLCs: the signed
// manifest of approved images, and the identity (SHA-256 and size) of the
// images that pass through brana on their way to a PLC.
//
// Detection is not here: the codecs classify every program transfer as
// opclass.Program (Modbus FC 21, FC 90 UMAS downloads, vendor function
// codes; OPC UA FileType, TemporaryFileTransferType and Software Update
// methods), and the policy demands a grant that names program.
//
// What this package adds is the check at commit. A [Tracker], one per
// session, reassembles the image from the requests the relay has allowed
// (FC 21 file records, writes into a register window, OPC UA FileType
// writes), hashes it as contiguous data arrives ([Hasher]), and at the
// commit step answers whether the image is complete and listed in a
// [Manifest] that the operator signed ([ParseManifest]). The package does no
// I/O besides reading key and manifest files and never imports the gateway.
//
// The manifest format is described at [ParseManifest] and in
// docs/FIRMWARE.md.
package firmware
