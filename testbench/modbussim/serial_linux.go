package modbussim

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// OpenSerial opens a tty device (a serial port or a pty) for [PLC.ServeRTU]
// and puts it in raw mode: 8 data bits, no parity, no echo, no line editing,
// no flow control. The baud rate is left as it is; ptys ignore it anyway.
func OpenSerial(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("modbussim: opening serial line: %w", err)
	}
	// SyscallConn keeps the file non-blocking, so read deadlines keep working
	// (File.Fd would switch it to blocking mode).
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("modbussim: serial line %s: %w", path, err)
	}
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		var t syscall.Termios
		if ioErr = ioctl(fd, syscall.TCGETS, &t); ioErr != nil {
			return
		}
		// What cfmakeraw(3) does.
		t.Iflag &^= syscall.IGNBRK | syscall.BRKINT | syscall.PARMRK | syscall.ISTRIP |
			syscall.INLCR | syscall.IGNCR | syscall.ICRNL | syscall.IXON | syscall.IXOFF
		t.Oflag &^= syscall.OPOST
		t.Lflag &^= syscall.ECHO | syscall.ECHONL | syscall.ICANON | syscall.ISIG | syscall.IEXTEN
		t.Cflag &^= syscall.CSIZE | syscall.PARENB | syscall.CSTOPB | crtscts
		t.Cflag |= syscall.CS8 | syscall.CREAD | syscall.CLOCAL
		t.Cc[syscall.VMIN], t.Cc[syscall.VTIME] = 1, 0
		ioErr = ioctl(fd, syscall.TCSETS, &t)
	})
	if err == nil {
		err = ioErr
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("modbussim: raw mode on %s: %w", path, err)
	}
	return f, nil
}

func ioctl(fd uintptr, req uintptr, t *syscall.Termios) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(unsafe.Pointer(t))); e != 0 {
		return e
	}
	return nil
}

// crtscts is missing from package syscall; same value on every Linux port.
const crtscts = 0x80000000
