// Package lab starts a set of simulated PLCs on consecutive loopback ports,
// for `brana testbench`, `brana demo` and tests that want a small plant.
package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/brana-ot/brana/testbench/modbussim"
)

// Sim is one running simulated PLC.
type Sim struct {
	Model string
	Addr  string // host:port it serves Modbus TCP on
	PLC   *modbussim.PLC
}

// Lab is a running set of simulated PLCs.
type Lab struct {
	Sims []*Sim
	wg   sync.WaitGroup
}

// Start serves one PLC per model (each as unit 1) from listen's port upwards;
// with port 0 every PLC gets a free port. It stops when ctx is done.
func Start(ctx context.Context, listen string, models []string) (*Lab, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("lab: %q is not host:port: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("lab: port %q: %w", portStr, err)
	}
	l := &Lab{}
	var lns []net.Listener
	fail := func(err error) (*Lab, error) {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, err
	}
	for i, m := range models {
		m = strings.TrimSpace(m)
		plc, err := modbussim.New(map[byte]string{1: m})
		if err != nil {
			return fail(fmt.Errorf("lab: %w", err))
		}
		p := 0
		if port != 0 {
			p = port + i
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			return fail(fmt.Errorf("lab: simulated %s PLC: %w", m, err))
		}
		lns = append(lns, ln)
		l.Sims = append(l.Sims, &Sim{Model: m, Addr: ln.Addr().String(), PLC: plc})
	}
	for i, s := range l.Sims {
		s.PLC.Start(ctx)
		ln := lns[i]
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			s.PLC.ServeTCP(ctx, ln)
		}()
	}
	return l, nil
}

// Wait blocks until every PLC has stopped.
func (l *Lab) Wait() { l.wg.Wait() }

// Describe writes one line per PLC.
func (l *Lab) Describe(w io.Writer) {
	for _, s := range l.Sims {
		fmt.Fprintf(w, "  simulated %-8s PLC  modbus tcp %s  unit 1\n", s.Model, s.Addr)
	}
}

// Run starts the lab, describes it on w and serves until ctx is done.
func Run(ctx context.Context, listen string, models []string, w io.Writer) error {
	l, err := Start(ctx, listen, models)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "brana testbench: simulated PLCs running (Ctrl-C stops them)")
	l.Describe(w)
	l.Wait()
	return ctx.Err()
}
