//go:build unix

package browser

import (
	"os/exec"
	"syscall"
)

// setProcessGroup makes cancelling the script kill chromium with it.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
