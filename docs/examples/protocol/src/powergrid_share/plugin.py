from powergrid import PluginRecord, hookimpl


@hookimpl
def powergrid_register_protocols():
    return [
        PluginRecord("proportional_share", "powergrid_share.protocols:ProportionalShare",
                     "one number: the same share of every dispatchable child's MW range"),
        PluginRecord("generation_cap", "powergrid_share.protocols:GenerationCap",
                     "caps the participants' total generator setpoint (MW)"),
    ]
