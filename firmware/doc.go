// Package firmware owns program and firmware transfers to PLCs: detecting
// them, hashing the images that pass through brana, checking them against
// signed manifests, and verifying brana's own signed update bundles.
//
// Detection of Modbus program transfers (FC 21, FC 90 UMAS downloads,
// vendor function codes) is done by the codec's classification into
// opclass.Program; this package will hold image identity and signatures.
package firmware
