"""pymodbus as an independent Modbus TCP client of a brana gateway.

Usage: /usr/bin/python3 pymodbus_client.py HOST PORT

Reads as the read-only party (source 127.0.0.1), tries a write that policy
refuses, then writes as the engineering party (source 127.0.0.2): one value
inside the allowed bounds and one outside. Prints one JSON object on stdout;
the Go test asserts on it and on the PLC's counters. Written for the pymodbus
3.0 API (ModbusTcpClient, slave=, source_address=).
"""

import json
import sys

from pymodbus.client import ModbusTcpClient


def outcome(resp):
    """Describe a response: registers, an exception code, or an error."""
    if resp is None:
        return {"error": "no response"}
    code = getattr(resp, "exception_code", None)
    if code is not None:
        return {"exception": int(code), "function_code": int(resp.function_code)}
    if resp.isError():
        return {"error": str(resp)}
    out = {"ok": True}
    if hasattr(resp, "registers"):
        out["registers"] = list(resp.registers)
    return out


def client(host, port, source):
    c = ModbusTcpClient(host, port=port, timeout=3, retries=0, source_address=(source, 0))
    if not c.connect():
        raise SystemExit(f"cannot connect to {host}:{port} from {source}")
    return c


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    result = {"version": __import__("pymodbus").__version__}

    mon = client(host, port, "127.0.0.1")
    result["read_setpoints"] = outcome(mon.read_holding_registers(0, 4, slave=1))
    result["read_window"] = outcome(mon.read_holding_registers(100, 3, slave=1))
    result["refused_write"] = outcome(mon.write_register(100, 500, slave=1))
    result["read_after_refusal"] = outcome(mon.read_holding_registers(100, 1, slave=1))
    mon.close()

    eng = client(host, port, "127.0.0.2")
    result["allowed_write"] = outcome(eng.write_register(101, 777, slave=1))
    result["out_of_bounds_write"] = outcome(eng.write_register(102, 6000, slave=1))
    result["read_back"] = outcome(eng.read_holding_registers(100, 3, slave=1))
    eng.close()

    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
