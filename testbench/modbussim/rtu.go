package modbussim

import (
	"context"
	"fmt"
	"io"
	"time"
)

const (
	maxRTU     = 256 // address + PDU + CRC
	minGap     = 2 * time.Millisecond
	partialMax = 50 * time.Millisecond
)

// RTUOptions configure a serial line.
type RTUOptions struct {
	// Baud sets the character time for the inter-frame gap (default 19200).
	Baud int
	// Gap overrides the silence that ends a frame. By default it is 3.5
	// characters (1.75 ms above 19200 baud), at least 2 ms because ptys
	// are not timed like a UART.
	Gap time.Duration
}

func (o RTUOptions) gap() time.Duration {
	if o.Gap > 0 {
		return o.Gap
	}
	baud := o.Baud
	if baud <= 0 {
		baud = 19200
	}
	g := 1750 * time.Microsecond
	if baud <= 19200 {
		// 11 bits per character: start, 8 data, parity or second stop, stop.
		g = time.Duration(float64(time.Second) * 3.5 * 11 / float64(baud))
	}
	return max(g, minGap)
}

// crc16 is CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF); the low byte
// goes first on the wire.
func crc16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

func crcOK(frame []byte) bool {
	n := len(frame)
	return n >= 4 && crc16(frame[:n-2]) == uint16(frame[n-2])|uint16(frame[n-1])<<8
}

// requestLen returns the length of the RTU request frame that starts b,
// including address and CRC, or 0 if it cannot tell (yet, or ever: then
// silence ends the frame).
func requestLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case 1, 2, 3, 4, 5, 6:
		return 8
	case 7, 11, 12, 17:
		return 4
	case 8:
		// Sub-function 0 echoes any amount of data; the others carry 2 bytes.
		if len(b) >= 4 && (b[2] != 0 || b[3] != 0) {
			return 8
		}
	case 15, 16:
		if len(b) >= 7 {
			return 9 + int(b[6])
		}
	case 20, 21:
		if len(b) >= 3 {
			return 5 + int(b[2])
		}
	case 22:
		return 10
	case 23:
		if len(b) >= 11 {
			return 13 + int(b[10])
		}
	case 24:
		return 6
	case 43:
		if len(b) >= 3 && b[2] == 0x0E {
			return 7
		}
	}
	return 0
}

type chunk struct {
	buf *[maxRTU]byte
	n   int
	at  time.Time
	err error
}

// ServeRTU is a Modbus RTU slave on a serial line until ctx is done or rw
// fails. A frame ends at its expected length (known from the function code)
// or at a silence of the inter-frame gap. Frames with a bad CRC are dropped
// unanswered and counted like on a real slave; so are frames for unit ids
// this PLC does not have. Broadcasts (unit 0) are writes to every unit and
// get no reply.
//
// If rw has SetReadDeadline (an *os.File from [OpenSerial] does), ServeRTU
// uses it to stop its reader on return; otherwise the reader stops when the
// caller closes rw.
func (p *PLC) ServeRTU(ctx context.Context, rw io.ReadWriter, opts RTUOptions) error {
	type deadliner interface{ SetReadDeadline(time.Time) error }
	dl, _ := rw.(deadliner)
	if dl != nil {
		_ = dl.SetReadDeadline(time.Time{}) // undo an earlier ServeRTU's stop
	}

	const nbuf = 4
	free := make(chan *[maxRTU]byte, nbuf)
	for range nbuf {
		free <- new([maxRTU]byte)
	}
	chunks := make(chan chunk, nbuf)
	done := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			var buf *[maxRTU]byte
			select {
			case buf = <-free:
			case <-done:
				return
			}
			n, err := rw.Read(buf[:])
			select {
			case chunks <- chunk{buf: buf, n: n, at: time.Now(), err: err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		close(done)
		if dl != nil {
			_ = dl.SetReadDeadline(time.Now())
			<-readerDone
		}
	}()

	l := rtuLine{p: p, ctx: ctx, w: rw, gap: opts.gap()}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var expire <-chan time.Time
		if l.n > 0 || l.discard {
			timer.Reset(time.Until(l.last.Add(l.wait())))
			expire = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-expire:
			if err := l.silence(); err != nil {
				return err
			}
		case c := <-chunks:
			if (l.n > 0 || l.discard) && c.at.Sub(l.last) >= l.wait() {
				// The silence passed while we were busy (a delayed reply).
				if err := l.silence(); err != nil {
					return err
				}
			}
			err := l.input(c.buf[:c.n], c.at)
			free <- c.buf
			if err != nil {
				return err
			}
			if c.err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("modbussim: reading serial line: %w", c.err)
			}
		}
	}
}

// rtuLine is the framing state of one serial line.
type rtuLine struct {
	p       *PLC
	ctx     context.Context
	w       io.Writer
	gap     time.Duration
	buf     [2 * maxRTU]byte
	n       int
	last    time.Time // arrival of the last byte
	discard bool      // drop everything until the line is silent
	resp    [maxRTU]byte
}

// wait is how long the line must be silent to end the current frame: the
// gap, or longer when the frame's length is known but not reached yet, since
// a pty may deliver a frame in pieces with pauses that a UART would not have.
func (l *rtuLine) wait() time.Duration {
	if !l.discard && requestLen(l.buf[:l.n]) > l.n {
		return max(l.gap, partialMax)
	}
	return l.gap
}

func (l *rtuLine) input(b []byte, at time.Time) error {
	l.last = at
	if l.discard {
		return nil
	}
	if l.n+len(b) > len(l.buf) {
		l.p.bus.commErrors.Add(1)
		l.discard, l.n = true, 0
		return nil
	}
	l.n += copy(l.buf[l.n:], b)
	// Frames of known length may arrive back to back without a gap.
	for l.n > 0 {
		want := requestLen(l.buf[:l.n])
		if want == 0 || l.n < want {
			if l.n > maxRTU {
				l.p.bus.commErrors.Add(1)
				l.discard, l.n = true, 0
			}
			return nil
		}
		if want > maxRTU || !crcOK(l.buf[:want]) {
			// A real slave cannot resynchronise inside a stream: wait for silence.
			l.p.bus.commErrors.Add(1)
			l.discard, l.n = true, 0
			return nil
		}
		err := l.frame(l.buf[:want])
		l.n = copy(l.buf[:], l.buf[want:l.n])
		if err != nil {
			return err
		}
	}
	return nil
}

// silence ends whatever frame is buffered.
func (l *rtuLine) silence() error {
	if l.discard {
		l.discard = false
		return nil
	}
	if l.n == 0 {
		return nil
	}
	frame := l.buf[:l.n]
	l.n = 0
	if len(frame) > maxRTU || !crcOK(frame) {
		l.p.bus.commErrors.Add(1)
		return nil
	}
	return l.frame(frame)
}

// frame handles one complete frame with a good CRC.
func (l *rtuLine) frame(f []byte) error {
	unit := f[0]
	if unit != 0 && l.p.units[unit] == nil {
		// Not ours; a slave on a shared bus only listens.
		l.p.bus.messages.Add(1)
		return nil
	}
	out := l.p.request(l.ctx, unit, f[1:len(f)-2], l.resp[1:], viaRTU)
	if !out.reply {
		return nil
	}
	l.resp[0] = unit
	n := 1 + out.n
	crc := crc16(l.resp[:n])
	l.resp[n], l.resp[n+1] = byte(crc), byte(crc>>8)
	n += 2
	switch {
	case out.garbage:
		// Random bytes; a CRC that happens to match is broken on purpose.
		n = 5 + int(f[len(f)-1])%4
		noise(l.resp[:n], f)
		if crcOK(l.resp[:n]) {
			l.resp[n-1] ^= 0xFF
		}
	case out.badCRC:
		l.resp[n-1] ^= 0x5A
		l.resp[n-2] ^= 0xA5
	}
	if _, err := l.w.Write(l.resp[:n]); err != nil {
		return fmt.Errorf("modbussim: writing serial line: %w", err)
	}
	return nil
}
