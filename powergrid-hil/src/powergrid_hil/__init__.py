"""PowerGrid hardware-in-the-loop pack: a Modbus TCP device and a Modbus TCP server for simulated devices.

pymodbus is imported only when a link or a server is created, so the registry can
list ``ModbusDevice`` without it.
"""

from powergrid_hil.registers import Reading, Register, RegisterMap

__version__ = "0.1.0"
__all__ = ["Reading", "Register", "RegisterMap", "__version__"]
