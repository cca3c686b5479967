package opcua

import (
	"strings"

	"github.com/brana-ot/brana/protocols/opclass"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// methodRule says how a Call of a recognised method is classified.
type methodRule uint8

const (
	ruleControl methodRule = iota // an ordinary method: control
	ruleProgram                   // changes files, software or the trust list: program
	ruleOpen                      // FileType Open: program unless the mode is plain Read
)

// DIURI is the namespace URI of OPC 10000-100 (Devices), where the Software
// Update methods live.
const DIURI = "http://opcfoundation.org/UA/DI/"

// ns0Rules classifies the methods of the OPC UA namespace by the last element
// of their symbolic name in gopcua's id package (id.Name): the type-level
// methods (FileType_Write, i=11588) and the standard instances that the
// namespace itself defines (the TrustLists under ServerConfiguration, the
// namespace metadata files, the PubSubConfiguration file). In the id tables of
// gopcua v0.8.0 only Methods carry these suffixes, and every method with the
// FileType suffixes belongs to FileType or one of its subtypes (TrustListType,
// AddressSpaceFileType, PubSubConfigurationType); methods_test.go pins that.
var ns0Rules = map[string]methodRule{
	// FileType (OPC 10000-5, C.2). Read and GetPosition are control.
	"Open":        ruleOpen,
	"Write":       ruleProgram,
	"Close":       ruleProgram, // the handle may have been opened for writing
	"SetPosition": ruleProgram, // likewise
	// TrustListType and PubSubConfigurationType commit a written file.
	"CloseAndUpdate": ruleProgram,
	// TemporaryFileTransferType (OPC 10000-5, C.4). GenerateFileForRead is control.
	"GenerateFileForWrite": ruleProgram,
	"CloseAndCommit":       ruleProgram,
	// FileDirectoryType (OPC 10000-5, C.3): changes the server's file system.
	"CreateFile":             ruleProgram,
	"CreateDirectory":        ruleProgram,
	"DeleteFileSystemObject": ruleProgram,
	"MoveOrCopy":             ruleProgram,
}

// diMethod is a method of the DI namespace (OPC 10000-100), with its numeric
// id from the OPC Foundation's Opc.Ua.Di.NodeIds.csv.
type diMethod struct {
	name string
	rule methodRule
}

// diMethods lists the Software Update methods of OPC 10000-100 (all program:
// they prepare, load, install and confirm device software) and the FileType
// methods of the DI documentation files, which follow FileType's rules.
var diMethods = map[uint32]diMethod{
	19:  {"DI:SoftwareUpdateType_PrepareForUpdate_Prepare", ruleProgram},
	20:  {"DI:SoftwareUpdateType_PrepareForUpdate_Abort", ruleProgram},
	61:  {"DI:SoftwareUpdateType_Installation_Resume", ruleProgram},
	112: {"DI:SoftwareUpdateType_Confirmation_Confirm", ruleProgram},
	124: {"DI:SoftwareUpdateType_Parameters_GenerateFileForRead", ruleProgram},
	127: {"DI:SoftwareUpdateType_Parameters_GenerateFileForWrite", ruleProgram},
	130: {"DI:SoftwareUpdateType_Parameters_CloseAndCommit", ruleProgram},
	142: {"DI:PackageLoadingType_FileTransfer_GenerateFileForRead", ruleProgram},
	145: {"DI:PackageLoadingType_FileTransfer_GenerateFileForWrite", ruleProgram},
	148: {"DI:PackageLoadingType_FileTransfer_CloseAndCommit", ruleProgram},
	189: {"DI:CachedLoadingType_GetUpdateBehavior", ruleProgram},
	195: {"DI:FileSystemLoadingType_FileSystem_CreateDirectory", ruleProgram},
	198: {"DI:FileSystemLoadingType_FileSystem_CreateFile", ruleProgram},
	201: {"DI:FileSystemLoadingType_FileSystem_DeleteFileSystemObject", ruleProgram},
	203: {"DI:FileSystemLoadingType_FileSystem_MoveOrCopy", ruleProgram},
	206: {"DI:FileSystemLoadingType_GetUpdateBehavior", ruleProgram},
	209: {"DI:FileSystemLoadingType_ValidateFiles", ruleProgram},
	228: {"DI:PrepareForUpdateStateMachineType_Prepare", ruleProgram},
	229: {"DI:PrepareForUpdateStateMachineType_Abort", ruleProgram},
	230: {"DI:PrepareForUpdateStateMachineType_Resume", ruleProgram},
	265: {"DI:InstallationStateMachineType_InstallSoftwarePackage", ruleProgram},
	268: {"DI:InstallationStateMachineType_InstallFiles", ruleProgram},
	270: {"DI:InstallationStateMachineType_Resume", ruleProgram},
	321: {"DI:ConfirmationStateMachineType_Confirm", ruleProgram},

	36: {"DI:ISupportInfoType_DocumentationFiles_DocumentFileId_Open", ruleOpen},
	39: {"DI:ISupportInfoType_DocumentationFiles_DocumentFileId_Close", ruleProgram},
	63: {"DI:ISupportInfoType_DocumentationFiles_DocumentFileId_Read", ruleControl},
	66: {"DI:ISupportInfoType_DocumentationFiles_DocumentFileId_Write", ruleProgram},
	68: {"DI:ISupportInfoType_DocumentationFiles_DocumentFileId_GetPosition", ruleControl},
	71: {"DI:ISupportInfoType_DocumentationFiles_DocumentFileId_SetPosition", ruleProgram},
}

// lookupMethod recognises a (type-level or learned) method id. It returns the
// method's symbolic name, or "" for a method it does not know.
func (c *Classifier) lookupMethod(m *ua.NodeID) (methodRule, string) {
	if m == nil {
		return ruleControl, ""
	}
	switch m.Type() {
	case ua.NodeIDTypeTwoByte, ua.NodeIDTypeFourByte, ua.NodeIDTypeNumeric:
	default:
		return ruleControl, "" // standard methods all have numeric ids
	}
	if m.Namespace() == 0 {
		name := id.Name(m.IntID())
		i := strings.LastIndexByte(name, '_')
		if i < 0 {
			return ruleControl, ""
		}
		if r, ok := ns0Rules[name[i+1:]]; ok {
			return r, name
		}
		return ruleControl, name
	}
	if c != nil {
		if di, ok := c.Namespaces.Index(DIURI); ok && di == m.Namespace() {
			if d, ok := diMethods[m.IntID()]; ok {
				return d.rule, d.name
			}
		}
	}
	return ruleControl, ""
}

// classifyCall classifies one CallMethodRequest whose MethodId is already
// alias-resolved: by the method itself, or by the type method it was learned
// to instantiate.
func (c *Classifier) classifyCall(method *ua.NodeID, args []*ua.Variant) (opclass.Class, string) {
	if c != nil {
		if t := c.Methods.TypeMethod(method); t != nil {
			method = t
		}
	}
	rule, name := c.lookupMethod(method)
	switch rule {
	case ruleProgram:
		return opclass.Program, name
	case ruleOpen:
		if openMode(args) == ua.OpenFileModeRead {
			return opclass.Control, name
		}
		return opclass.Program, name
	}
	return opclass.Control, name
}

// openMode returns FileType Open's mode argument, or 0xff if it is missing or
// not a Byte (which the server would refuse, but which must not pass as a
// read). Any bit besides Read (Write, EraseExisting, Append, or a reserved
// one) makes the Open a program operation.
func openMode(args []*ua.Variant) ua.OpenFileMode {
	if len(args) == 0 || args[0] == nil {
		return 0xff
	}
	if b, ok := args[0].Value().(byte); ok {
		return ua.OpenFileMode(b)
	}
	return 0xff
}
