from powergrid import PluginRecord, hookimpl


@hookimpl
def powergrid_register_policies():
    return [PluginRecord("evening_peak", "powergrid_peakshave.policy:EveningPeak",
                         "charge at midday, discharge 17-21 h, idle otherwise")]
