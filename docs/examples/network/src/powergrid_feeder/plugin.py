from powergrid import PluginRecord, hookimpl


@hookimpl
def powergrid_register_networks():
    return [PluginRecord("radial_feeder", "powergrid_feeder.feeder:radial_feeder",
                         "n buses in a row with one load each; a microgrid zone at the far end")]
