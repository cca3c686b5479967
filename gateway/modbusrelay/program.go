package modbusrelay

import (
	"strconv"
	"strings"

	"github.com/brana-ot/brana/firmware"
	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/protocols/modbus"
	"github.com/brana-ot/brana/protocols/opclass"
)

// Audit reasons of refused program transfers. Both are answered with
// exception 04 (server device failure): to the engineering tool the
// download failed on the device's side, which is what it must report, and
// not a malformed request (03) that it might retry in another shape.
const (
	reasonImageNotApproved = "image-not-approved" // the commit, when the image is not on the manifest
	reasonImageData        = "image-data-refused" // a write of image data brana could not follow
	exImageRefused         = modbus.ExServerFailure
)

// program is a target's program profile as the relay uses it: which
// writes carry image data and which write commits the image.
type program struct {
	file    uint16       // FC 21 file number of the image; 0: none
	window  modbus.Range // registers that carry the image; Count 0: none
	commit  modbus.Range // the address whose write commits
	windows []firmware.Window
}

// newProgram compiles a validated profile; nil stays nil.
func newProgram(p *config.Program) *program {
	if p == nil || p.Commit == nil || p.Commit.Address == nil {
		return nil
	}
	g := &program{file: uint16(p.File)}
	tab := modbus.HoldingRegisters
	if p.Commit.Table == "coils" {
		tab = modbus.Coils
	}
	g.commit = modbus.Range{Table: tab, Start: uint16(*p.Commit.Address), Count: 1}
	if w := p.Window; w != nil {
		g.window = modbus.Range{Table: modbus.HoldingRegisters, Start: uint16(w.Start), Count: uint16(w.Count)}
		g.windows = []firmware.Window{{Table: modbus.HoldingRegisters, Start: g.window.Start, Count: g.window.Count}}
	}
	return g
}

// classify makes writes into the image window and onto the commit address
// class program, like FC 21, so that they need a grant naming program; it
// reports whether req is the commit.
func (p *program) classify(req *modbus.Request) (commit bool) {
	if req.Write.Count == 0 {
		return false
	}
	commit = p.commit.Overlaps(req.Write)
	if commit || p.window.Overlaps(req.Write) {
		req.Class = opclass.Program
	}
	return commit
}

// carries reports whether a transfer went where this device takes its
// image: another file or unit is not what the commit loads.
func (p *program) carries(k firmware.Key, unit byte) bool {
	if k.Unit != unit {
		return false
	}
	switch k.Kind {
	case firmware.KindFileRecords:
		return p.file != 0 && k.File == p.file
	case firmware.KindWindow:
		return p.window.Count != 0 && k.File == p.window.Start
	}
	return false
}

// image is one session's program transfer to one target.
type image struct {
	tr *firmware.Tracker
	// tainted says why brana no longer knows what the PLC holds (an image
	// write that was not confirmed); every commit is refused until the
	// session ends.
	tainted string
}

// image returns the session's transfer state for the route's target.
func (c *conn) image(rt *route) (*image, error) {
	if im := c.images[rt.name]; im != nil {
		return im, nil
	}
	tr, err := firmware.NewTracker(firmware.Config{MaxImage: c.s.d.MaxImage, Windows: rt.prog.windows})
	if err != nil {
		return nil, err
	}
	if c.images == nil {
		c.images = make(map[string]*image)
	}
	im := &image{tr: tr}
	c.images[rt.name] = im
	return im, nil
}

// gateImage follows a program-class request to a target with a program
// profile before it is forwarded: image data feeds the session's tracker,
// and the commit passes only when the image is complete and approved. It
// fills the record and returns 0 to forward, or the exception to refuse
// with.
func (c *conn) gateImage(rt *route, commit bool) (*image, byte) {
	r := &c.rec
	refuse := func(reason, detail string) (*image, byte) {
		r.Decision, r.Reason, r.Detail = "deny", reason, detail
		return nil, exImageRefused
	}
	im, err := c.image(rt)
	if err != nil {
		return refuse(reasonImageData, "program profile of target "+rt.name+": "+err.Error())
	}
	switch c.req.Func {
	case 21:
		if err := im.tr.WriteFileRecords(&c.req); err != nil {
			return refuse(reasonImageData, "image data refused: "+err.Error())
		}
	case 6, 16, 22, 23:
		if _, err := im.tr.WriteRegisters(&c.req); err != nil {
			return refuse(reasonImageData, "image data refused: "+err.Error())
		}
	}
	if !commit {
		return im, 0
	}
	if im.tainted != "" {
		return refuse(reasonImageNotApproved, "commit refused: "+im.tainted)
	}
	for _, st := range im.tr.Transfers() {
		if !rt.prog.carries(st.Key, c.req.Unit) {
			return refuse(reasonImageNotApproved, "commit refused: data was written to "+st.Key.String()+
				", which is not where target "+rt.name+" takes its program image"+imageSum(st.SHA256, st.Size))
		}
	}
	var m *firmware.Manifest
	if c.s.d.Manifest != nil {
		m = c.s.d.Manifest.Load()
	}
	approved, sum, size, err := im.tr.Check(m)
	if err != nil {
		return refuse(reasonImageNotApproved, "commit refused"+imageSum(sum, size)+": "+err.Error())
	}
	r.Detail = "commit of image sha256:" + sum + " (" + strconv.FormatInt(size, 10) + " bytes), approved: " +
		approved.Vendor + " " + approved.Product + " " + approved.Version + "; origin " + approved.Origin +
		"; approved by " + strings.Join(approved.ApprovedBy, ", ") + "; manifest serial " + strconv.FormatUint(m.Serial, 10)
	c.resultNote = "image sha256:" + sum + " committed"
	return im, 0
}

// imageSum names an image's hash for a refusal, when it is known.
func imageSum(sum string, size int64) string {
	if sum == "" {
		return ""
	}
	return ": image sha256:" + sum + " (" + strconv.FormatInt(size, 10) + " bytes)"
}

// done updates the transfer after the request went (or did not go) to the
// PLC: an answered commit starts the next transfer afresh; image data that
// the PLC did not confirm leaves its contents unknown.
func (im *image) done(commit, ok bool, why string) {
	switch {
	case commit && ok:
		im.tr.Reset()
		im.tainted = ""
	case !commit && !ok:
		im.tainted = "an earlier write of image data was not confirmed by the PLC (" + why + "); what it holds is unknown"
	}
}
