#!/usr/bin/python3
"""A Modbus server on python3-pymodbus 3.0.0 for tests and benchmarks (modbustest embeds it).

Usage:
  pyserver.py tcp  CONFIG.json            Modbus TCP on 127.0.0.1, a free port
  pyserver.py rtu+tcp CONFIG.json         RTU frames over TCP on 127.0.0.1, a free port
  pyserver.py rtu  CONFIG.json /dev/pts/N  RTU on a serial port (9600 8N1)

CONFIG.json maps unit ids to tables, each a list of values from address 0:
  {"units": {"1": {"hr": [1, 2], "ir": [3], "co": [1, 0], "di": [0]}},
   "log": "/path/requests.log"}
With "log", every answered request is appended as "<unix time> <unit> <function>".

Prints "ready <port>" (0 for rtu) on stdout once it serves, and runs until
stdin closes or it is killed.
"""
import asyncio
import json
import sys
import time

from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                ModbusSlaveContext)
from pymodbus.server.async_io import ModbusSerialServer, ModbusTcpServer
from pymodbus.transaction import ModbusRtuFramer, ModbusSocketFramer


def block(values):
    # A data block always holds at least one value; reads past its end
    # answer exception 2 (illegal data address), which tests rely on.
    return ModbusSequentialDataBlock(0, list(values) or [0])


def build_context(cfg):
    slaves = {}
    for unit, tables in cfg["units"].items():
        slaves[int(unit)] = ModbusSlaveContext(
            hr=block(tables.get("hr", [])),
            ir=block(tables.get("ir", [])),
            co=block(tables.get("co", [])),
            di=block(tables.get("di", [])),
            zero_mode=True,
        )
    return ModbusServerContext(slaves=slaves, single=False)


def manipulator(log):
    if not log:
        return None
    out = open(log, "a", buffering=1)

    def record(response):
        out.write("%.6f %d %d\n" % (time.time(), response.unit_id, response.function_code))
        return response, False

    return record


async def wait_stdin_closed():
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


async def main():
    mode, cfg_path = sys.argv[1], sys.argv[2]
    with open(cfg_path) as f:
        cfg = json.load(f)
    context = build_context(cfg)
    manip = manipulator(cfg.get("log"))
    if mode in ("tcp", "rtu+tcp"):
        framer = ModbusSocketFramer if mode == "tcp" else ModbusRtuFramer
        server = ModbusTcpServer(context, framer=framer, address=("127.0.0.1", 0),
                                 response_manipulator=manip)
        task = asyncio.create_task(server.serve_forever())
        await server.serving
        port = server.server.sockets[0].getsockname()[1]
    elif mode == "rtu":
        server = ModbusSerialServer(context, framer=ModbusRtuFramer, port=sys.argv[3],
                                    baudrate=9600, parity="N", bytesize=8, stopbits=1,
                                    response_manipulator=manip)
        await server.start()
        task = asyncio.create_task(server.serve_forever())
        port = 0
    else:
        sys.exit("unknown mode " + mode)
    print("ready", port, flush=True)
    await wait_stdin_closed()
    task.cancel()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
