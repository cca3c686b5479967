// Package modbussim is a simulated Modbus PLC for tests, labs and the demo.
//
// A [PLC] holds one or more units (Modbus unit ids 1..247), each a [Device]
// running a process model that behaves like plant equipment. The PLC serves
// Modbus TCP ([PLC.ServeTCP]) and Modbus RTU on a serial line or pty
// ([PLC.ServeRTU]). It counts what reaches it ([PLC.Counters],
// [PLC.Recent]) and can misbehave on purpose ([PLC.SetFault]).
//
// The package is an independent oracle for brana: it imports nothing from
// brana and frames Modbus itself with the standard library only, so a bug in
// brana's codec cannot hide behind the same bug here. Specifications followed:
// MODBUS Application Protocol Specification V1.1b3, MODBUS Messaging on TCP/IP
// Implementation Guide V1.0b, MODBUS over Serial Line V1.02.
//
// Function codes: 1, 2, 3, 4, 5, 6, 8 (diagnostics), 15, 16, 17 (report
// server id), 20 and 21 (file records), 22, 23 and 43/14 (device
// identification). Anything else is answered with exception 01, an address
// outside the model's tables with 02, a bad quantity, length or value with 03.
//
// # Models
//
// Addresses are 0-based protocol addresses. "sim" registers are knobs for the
// simulated plant (what a real relay or PLC would measure); clients may write
// them to drive a scenario.
//
// "feeder": a 22 kV substation feeder bay with breaker, earth switch and
// overcurrent/earth-fault protection. Starts with the breaker open.
//
//	coils       0  breaker: write 1 to close, 0 to trip; reads the breaker state
//	            1  earth switch: 1 close, 0 open (refused while breaker closed)
//	            2  protection reset: write 1 to clear a latched trip (reads 0)
//	discrete    0  breaker closed      1  breaker open
//	            2  earth switch closed 3  protection trip (latched)
//	            4  overcurrent started 5  earth-fault trip (latched)
//	input       0..2  phase current L1, L2, L3 (A×10)
//	            3..5  line voltage L1-L2, L2-L3, L3-L1 (V/10, 2200 = 22 kV)
//	            6  active power (kW)   7  reactive power (kvar)
//	            8  frequency (mHz)     9  residual current (A×10)
//	            10 trip count          11 current at last trip (A×10)
//	holding     0  overcurrent pickup (A, 1..2000, default 400)
//	            1  overcurrent delay (ms, 0..60000, default 500)
//	            2  earth-fault pickup (A, 1..500, default 20)
//	            3  earth-fault delay (ms, 0..60000, default 300)
//	            10 sim load current per phase (A, 0..3000, default 200)
//	            11 sim power factor (×1000, 0..1000, default 950)
//	            12 sim earth-fault current (A×10, 0..5000, default 0)
//	            100..119 free setpoint window
//	sizes       coils 16, discrete 16, input 32, holding 128
//
// Closing the breaker is refused (coil 0 stays 0) while the earth switch is
// closed or a trip is latched. Phase current follows the load with a 100 ms
// first-order lag; opening the breaker cuts it at once. When the highest
// phase current exceeds the pickup for the delay, the breaker trips.
//
// "pump": a water pumping station with a wet well and two pumps.
//
//	coils       0  pump 1 run command  1  pump 2 run command
//	            2  auto mode (level control drives coils 0 and 1; default on)
//	            3  fault reset (write 1; reads 0)
//	discrete    0  pump 1 running      1  pump 2 running
//	            2  pump 1 fault        3  pump 2 fault
//	            4  high level alarm    5  low level (dry-run) alarm
//	input       0  tank level (mm)     1  outflow (l/s×10)
//	            2  discharge pressure (mbar)
//	            3  pump 1 motor current (A×10)  4  pump 2 motor current (A×10)
//	            5  inflow (l/s×10)     6  pump 1 starts  7  pump 2 starts
//	holding     0  start level (mm, default 2500)
//	            1  stop level (mm, default 1000)
//	            2  speed setpoint (%, 0..100, default 80)
//	            3  high alarm level (mm, default 3500)
//	            4  dry-run level (mm, default 300)
//	            10 sim inflow (l/s×10, 0..1000, default 150)
//	            100..119 free setpoint window
//	sizes       coils 16, discrete 16, input 32, holding 128
//
// The well has 20 m² area and 4 m depth and starts at 1500 mm. Each pump
// delivers 25 l/s at 100 % speed (2 s lag). In auto mode pump 1 starts at the
// start level, pump 2 at the high alarm level, both stop at the stop level. A
// running pump below the dry-run level trips with a fault until reset.
//
// "points": a railway point machine.
//
//	coils       0  throw to normal     1  throw to reverse
//	            (commands; they read 1 while the throw runs)
//	discrete    0  detected normal     1  detected reverse
//	            2  moving              3  failed to detect (timeout)
//	            4  command rejected (both directions commanded at once)
//	input       0  last throw time (ms) 1  motor current (A×10)
//	            2  throw count          3  position (0 none, 1 normal, 2 reverse)
//	holding     0  sim throw time (ms, 100..20000, default 3000)
//	            1  sim obstruction (0/1)
//	            2  throw timeout (ms, 500..60000, default 8000)
//	            100..119 free setpoint window
//	sizes       coils 16, discrete 16, input 32, holding 128
//
// Holding registers of a model outside the ranges named above accept any
// value; a value outside a named range is answered with exception 03 and
// nothing is written.
//
// # Program area
//
// Every unit holds a program and takes a new one the way many PLCs take a
// download: FC 21 records written into file [ProgramFile] (1) are staged, and
// writing [ProgramCommitValue] (0xC0DE) to holding register
// [ProgramCommitRegister] (9000, outside the model's table, FC 6 or FC 16
// with one register) commits them. The image is the staged records from
// record 0 up to the highest record written since the last commit, two bytes
// per record, big-endian. A commit replaces the program
// ([Device.Program], [Device.ProgramCommits]) and empties file 1. Until then
// the old program stays; before the first commit it is a short factory
// program. Another value in register 9000, or a commit with nothing staged, is
// answered with exception 03 and changes nothing.
package modbussim
