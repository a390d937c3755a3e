"""PowerGrid hardware-in-the-loop pack: Modbus and SunSpec devices, and a safe Modbus server for scenarios.

pymodbus and pysunspec2 are imported only when a link or a server is created, so the
registry can list ``ModbusDevice`` and ``SunSpecDevice`` without them.
"""

from powergrid_hil.registers import Reading, Register, RegisterMap

__version__ = "0.1.0"
__all__ = ["Reading", "Register", "RegisterMap", "__version__"]
